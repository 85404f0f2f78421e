"""Fused, multi-seed and sharded training compute the same thing as the plain loop."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents import AGENTS
from tests.compile_flags import RUNS_COMPILE, with_fast_compile
from tests.helpers import ROOT, random_batch, tiny_agent
from utils.datasets import sample_batch, to_device
from utils.fused_updates import data_key, make_train_fn, stack_seeds, unstack_seed


def assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def dataset():
    return to_device(random_batch(batch_size=200, seed=9))


@pytest.mark.parametrize('agent_name', ['drol', 'fql'])
def test_fused_updates_equal_single_updates(agent_name):
    """Three fused updates, as in the seed and task tests below: the same jitted program, compiled once."""
    data = dataset()
    agent = tiny_agent(agent_name, random_batch())
    key = data_key(0)

    single, single_key = jax.tree_util.tree_map(jnp.copy, agent), key  # update() donates (deletes) its agent.
    for _ in range(3):
        single_key, batch_key = jax.random.split(single_key)
        single, _ = single.update(sample_batch(data, batch_key, 16))

    fused, fused_key, info, _ = make_train_fn(16, 3, num_seeds=1)(stack_seeds([agent]), stack_seeds([key]), data)
    assert_trees_close(unstack_seed(fused, 0).network.params, single.network.params)
    np.testing.assert_array_equal(unstack_seed(fused_key, 0), single_key)
    assert not np.allclose(
        jax.tree_util.tree_leaves(single.network.params)[0], jax.tree_util.tree_leaves(agent.network.params)[0]
    )


@pytest.mark.parametrize('agent_name', list(AGENTS))
def test_update_donates_the_agent_and_changes_no_number(agent_name):
    """`agent.update` donates its agent, as the fused call does: the old agent's arrays are deleted (so a caller
    that reuses one fails here on the CPU too, not only on an accelerator), and the new agent and its metrics equal
    `update_step` jitted without donation, bit for bit, both compiled with XLA's fusion emitters as runs are (the
    older emitters of the tests' cheap compile fuse a donated program otherwise, and last bits move)."""
    batch = random_batch()
    agent = tiny_agent(agent_name, batch)
    agent.update(batch)
    assert all(leaf.is_deleted() for leaf in jax.tree_util.tree_leaves(agent))
    agent = tiny_agent(agent_name, batch)
    emitters = {'xla_cpu_use_fusion_emitters': RUNS_COMPILE['xla_cpu_use_fusion_emitters']}
    undonated = jax.jit(lambda a, b: a.update_step(b), compiler_options=emitters)
    expected = undonated(jax.tree_util.tree_map(jnp.copy, agent), batch)
    updated = jax.jit(type(agent).update.__wrapped__, donate_argnums=0, compiler_options=emitters)(agent, batch)
    for got, want in zip(jax.tree_util.tree_leaves(updated), jax.tree_util.tree_leaves(expected), strict=True):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


@pytest.mark.parametrize('agent_name', ['drol', 'fql'])
def test_vmapped_seed_matches_single_seed_run(agent_name):
    data = dataset()
    seeds = [3, 4, 5]
    agents = [tiny_agent(agent_name, random_batch(), seed=s) for s in seeds]
    train_fn = make_train_fn(16, 3, num_seeds=3)
    stacked, keys = stack_seeds(agents), stack_seeds([data_key(s) for s in seeds])
    for _ in range(2):
        stacked, keys, _, _ = train_fn(stacked, keys, data)

    single_fn = make_train_fn(16, 3, num_seeds=1)
    alone, alone_key = stack_seeds([agents[1]]), stack_seeds([data_key(seeds[1])])
    for _ in range(2):
        alone, alone_key, _, _ = single_fn(alone, alone_key, data)
    assert_trees_close(unstack_seed(stacked, 1).network.params, unstack_seed(alone, 0).network.params)
    first, second = (unstack_seed(stacked, i).network.params['modules_actor'] for i in (0, 1))
    assert not np.allclose(jax.tree_util.tree_leaves(first)[0], jax.tree_util.tree_leaves(second)[0])


# Its programs (two host devices) are compiled for it alone, so its agents are as small as they go.
SHARDED_SCRIPT = """
import jax, numpy as np
assert len(jax.devices()) == 2, jax.devices()
from tests.helpers import random_batch, tiny_agent
from utils.datasets import to_device
from utils.fused_updates import data_key, make_train_fn, shard_seeds, stack_seeds
data = to_device(random_batch(batch_size=200, seed=9))
small = dict(actor_hidden_dims=(8,), value_hidden_dims=(8,))
agents = stack_seeds([tiny_agent('drol', random_batch(), seed=s, **small) for s in range(4)])
keys = stack_seeds([data_key(s) for s in range(4)])
train_fn = make_train_fn(16, 3, num_seeds=4)
plain, _, _, _ = train_fn(agents, keys, data)
sharded_agents, sharded_keys = shard_seeds(agents, 4), shard_seeds(keys, 4)
assert len(sharded_agents.network.params['modules_actor']['mlp']['Dense_0']['kernel'].sharding.device_set) == 2
sharded, _, _, _ = train_fn(sharded_agents, sharded_keys, data)
plain_leaves = jax.tree_util.tree_leaves(plain.network.params)
for a, b in zip(plain_leaves, jax.tree_util.tree_leaves(sharded.network.params), strict=True):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)

# Agents of two tasks (--tasks): the task ids are sharded with them.
import jax.numpy as jnp
rewards, masks = jnp.stack([data['rewards'], -data['rewards']]), jnp.stack([data['masks']] * 2)
tasks_data = {**data, 'rewards': rewards, 'masks': masks}
task_ids = jnp.array([0, 0, 1, 1])
tasks_fn = make_train_fn(16, 3, num_seeds=4, tasks=True)
plain, _, _, _ = tasks_fn(agents, keys, tasks_data, task_ids)
sharded, _, _, _ = tasks_fn(sharded_agents, sharded_keys, tasks_data, shard_seeds(task_ids, 4))
plain_leaves, sharded_leaves = (jax.tree_util.tree_leaves(t.network.params) for t in (plain, sharded))
for a, b in zip(plain_leaves, sharded_leaves, strict=True):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
print('SHARDED_OK')
"""


def test_sharded_multi_seed_matches_unsharded():
    env = {
        **os.environ,
        'XLA_FLAGS': with_fast_compile('--xla_force_host_platform_device_count=2'),
        'JAX_PLATFORMS': 'cpu',
        'PYTHONPATH': ROOT,
    }
    result = subprocess.run(
        [sys.executable, '-c', SHARDED_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert 'SHARDED_OK' in result.stdout, result.stdout + result.stderr


def test_agents_of_different_tasks_train_on_their_own_rewards():
    """With --tasks the data holds one row of rewards and masks per task; an agent of task t trains
    exactly as it would on task t's data alone."""
    data = dataset()
    rewards = jnp.stack([data['rewards'], -1.0 - data['rewards']])
    masks = jnp.stack([data['masks'], jnp.zeros_like(data['masks'])])
    tasks_data = {**data, 'rewards': rewards, 'masks': masks}
    agents = [tiny_agent('drol', random_batch(), seed=s) for s in (0, 1, 0)]
    task_ids = jnp.array([0, 1, 1])
    together, _, _, _ = make_train_fn(16, 3, num_seeds=3, tasks=True)(
        stack_seeds(agents), stack_seeds([data_key(s) for s in (0, 1, 0)]), tasks_data, task_ids
    )
    single_fn = make_train_fn(16, 3, num_seeds=1)
    for i, (agent, seed, task) in enumerate(zip(agents, (0, 1, 0), (0, 1, 1), strict=True)):
        task_data = {**data, 'rewards': rewards[task], 'masks': masks[task]}
        alone, _, _, _ = single_fn(stack_seeds([agent]), stack_seeds([data_key(seed)]), task_data)
        assert_trees_close(unstack_seed(together, i).network.params, unstack_seed(alone, 0).network.params)
    first, third = (unstack_seed(together, i).network.params['modules_critic'] for i in (0, 2))
    assert not np.allclose(jax.tree_util.tree_leaves(first)[0], jax.tree_util.tree_leaves(third)[0])
