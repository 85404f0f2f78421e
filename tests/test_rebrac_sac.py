"""ReBRAC and SAC behaviour beyond the golden numbers: ReBRAC's delayed actor and target updates (also
fused and vmapped), SAC's temperature, acting, the `next_actions` of sampled batches, and the presets.

The delayed-update schedule follows the reference (seohongpark/fql): main.py passes
`full_update = (i % actor_freq == 0)` for the 1-based update i; a critic-only update leaves the actor
loss out (zero actor gradient, though Adam's momentum from earlier full updates still moves the actor)
and moves neither target.
"""

import jax
import numpy as np
import optax
import pytest

from agents import AGENTS
from tests.helpers import random_batch, tiny_agent
from utils.datasets import sample_batch, sample_batch_numpy, to_device
from utils.fused_updates import data_key, make_train_fn, stack_seeds, unstack_seed


def leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(leaves(a), leaves(b), strict=True))


def assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
    for x, y in zip(leaves(a), leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


def test_rebrac_actor_and_targets_move_only_on_full_updates():
    batch = random_batch()
    agent = tiny_agent('rebrac', batch, actor_freq=2, alpha_actor=0.1, alpha_critic=0.1)
    for step in range(1, 5):
        before = jax.tree_util.tree_map(np.array, agent.network)  # A copy: update() donates the agent.
        assert int(before.step) == step
        full = step % 2 == 0
        # What Adam alone does to the actor with a zero gradient (its momentum from earlier full updates).
        zero_grads = jax.tree_util.tree_map(np.zeros_like, before.params)
        momentum_only, _ = before.tx.update(zero_grads, before.opt_state, before.params)
        coasted = optax.apply_updates(before.params, momentum_only)['modules_actor']

        agent, info = agent.update(random_batch(seed=step))
        after = agent.network.params
        assert not same(after['modules_critic'], before.params['modules_critic'])
        assert same(after['modules_target_actor'], before.params['modules_target_actor']) != full, step
        assert same(after['modules_target_critic'], before.params['modules_target_critic']) != full, step
        if full:
            assert not same(after['modules_actor'], coasted), step  # A real actor gradient was applied.
            expected = optax.incremental_update(
                before.params['modules_actor'], before.params['modules_target_actor'], agent.config['tau']
            )
            assert_trees_close(after['modules_target_actor'], expected)
        else:
            assert_trees_close(after['modules_actor'], coasted, rtol=0, atol=1e-7)  # Zero actor gradient.
        if step == 1:
            assert same(after['modules_actor'], before.params['modules_actor'])  # No momentum yet.
        assert all(np.isfinite(float(v)) for v in info.values())


def test_rebrac_full_update_schedule_follows_the_step_counter():
    batch = random_batch()
    agent = tiny_agent('rebrac', batch, actor_freq=3)
    flags = []
    for step in range(1, 7):
        flags.append(bool(agent.is_full_update()))
        agent, _ = agent.update(random_batch(seed=step))
    assert flags == [i % 3 == 0 for i in range(1, 7)]


def test_rebrac_fused_and_vmapped_updates_equal_single_updates():
    data = to_device(random_batch(batch_size=200, seed=9))
    seeds = (0, 1)
    agents = [tiny_agent('rebrac', random_batch(), seed=s, alpha_actor=0.1, alpha_critic=0.1) for s in seeds]
    fused, _, _, _ = make_train_fn(16, 5, num_seeds=2)(
        stack_seeds(agents), stack_seeds([data_key(s) for s in seeds]), data
    )
    for index, seed in enumerate(seeds):
        single, key = agents[index], data_key(seed)
        for _ in range(5):
            key, batch_key = jax.random.split(key)
            single, _ = single.update(sample_batch(data, batch_key, 16))
        assert_trees_close(unstack_seed(fused, index).network.params, single.network.params)
        assert int(unstack_seed(fused, index).network.step) == 6


@pytest.mark.parametrize(('target_entropy', 'rises'), [(100.0, True), (-100.0, False)])
def test_sac_temperature_rises_below_target_entropy_and_falls_above(target_entropy, rises):
    batch = random_batch()
    agent = tiny_agent('sac', batch, target_entropy=target_entropy)
    _, info = agent.total_loss(batch, agent.network.params)
    entropy = float(info['actor/entropy'])
    assert (entropy < target_entropy) == rises  # The policy's entropy is far from either target.
    log_alpha = float(agent.network.params['modules_alpha']['log_value'])
    for step in range(3):
        agent, info = agent.update(random_batch(seed=step))
        new_log_alpha = float(agent.network.params['modules_alpha']['log_value'])
        assert (new_log_alpha > log_alpha) == rises, (step, log_alpha, new_log_alpha)
        log_alpha = new_log_alpha
    # Adam's steps have size ~lr while the sign of the gradient stays the same.
    np.testing.assert_allclose(abs(log_alpha), 3 * agent.config['lr'], rtol=1e-3)


def test_sac_target_entropy_default_and_config_left_alone():
    batch = random_batch(action_dim=4)
    config = AGENTS['sac'].default_config()
    config.update(dict(actor_hidden_dims=(8,), value_hidden_dims=(8,)))
    agent = AGENTS['sac'].create(0, batch['observations'][:1], batch['actions'][:1], config)
    assert agent.config['target_entropy'] == -0.5 * 4
    assert config.target_entropy is None
    config.target_entropy = -1.5
    agent = AGENTS['sac'].create(0, batch['observations'][:1], batch['actions'][:1], config)
    assert agent.config['target_entropy'] == -1.5


@pytest.mark.parametrize('agent_name', ['rebrac', 'sac'])
def test_actions_in_bounds_and_temperature_zero_is_the_tanh_mean(agent_name):
    batch = random_batch()
    agent = tiny_agent(agent_name, batch)
    observations = batch['observations'] * 100
    single = np.asarray(agent.sample_actions(batch['observations'][0], seed=jax.random.PRNGKey(0)))
    many = np.asarray(agent.sample_actions(observations, seed=jax.random.PRNGKey(1)))
    assert single.shape == (3,) and many.shape == (16, 3)
    assert np.all(np.abs(single) <= 1) and np.all(np.abs(many) <= 1)
    mode = np.asarray(agent.network.select('actor')(observations).mode())
    for seed in (2, 3):
        deterministic = agent.sample_actions(observations, seed=jax.random.PRNGKey(seed), temperature=0.0)
        np.testing.assert_allclose(deterministic, np.clip(mode, -1, 1), atol=1e-6)
    noisy = agent.sample_actions(batch['observations'], seed=jax.random.PRNGKey(2))
    assert not np.allclose(noisy, np.asarray(agent.network.select('actor')(batch['observations']).mode()))


def test_sampled_batches_carry_the_next_rows_action():
    dataset = random_batch(batch_size=50, seed=3)
    dataset['actions'] = np.tile(np.arange(50, dtype=np.float32)[:, None], (1, 3))  # Action = row index.
    batch = sample_batch(to_device(dataset), jax.random.PRNGKey(0), 400)
    rows = np.asarray(batch['actions'])[:, 0]
    np.testing.assert_array_equal(np.asarray(batch['next_actions'])[:, 0], np.minimum(rows + 1, 49))
    assert rows.max() == 49  # The last row (which repeats its own action) was drawn.
    host = sample_batch_numpy(dataset, np.random.default_rng(0), 400)
    np.testing.assert_array_equal(host['next_actions'][:, 0], np.minimum(host['actions'][:, 0] + 1, 49))


@pytest.mark.parametrize(
    ('agent_name', 'overrides', 'named'),
    [
        ('rebrac', dict(actor_freq=0), 'actor_freq'),
        ('rebrac', dict(alpha_actor=-1.0), 'alpha_actor'),
        ('rebrac', dict(actor_noise_clip=-0.1), 'actor_noise_clip'),
        ('sac', dict(q_agg='max'), 'q_agg'),
        ('sac', dict(target_entropy_multiplier=-1.0), 'target_entropy_multiplier'),
    ],
)
def test_config_problems_name_the_bad_setting(agent_name, overrides, named):
    config = AGENTS[agent_name].default_config()
    assert AGENTS[agent_name].config_problems(config) == []
    config.update(overrides)
    problems = AGENTS[agent_name].config_problems(config)
    assert len(problems) == 1 and named in problems[0], problems


# SAC's presets, transcribed independently from the FQL README (github.com/seohongpark/fql): RLPD gets
# only the discount 0.995 of its commands on antmaze-giant, humanoidmaze-medium/large and antsoccer-arena.
# ReBRAC's (the FQL paper's Tables 6 and 7) are held in tests/test_presets.py.
LONG_HORIZON = ('antmaze-giant-navigate', 'humanoidmaze-medium-navigate', 'humanoidmaze-large-navigate')
README_PRESETS = {
    'sac': {env: {'discount': 0.995} for env in (*LONG_HORIZON, 'antsoccer-arena-navigate')},
}
OTHER_ENVS = (
    'antmaze-large-navigate',
    'cube-single-play',
    'cube-double-play',
    'scene-play',
    'puzzle-3x3-play',
    'puzzle-4x4-play',
    'antmaze-umaze-v2',
    'antmaze-large-diverse-v2',
    'pen-human-v1',
    'relocate-expert-v1',
    'no-such-env',
)


@pytest.mark.parametrize('agent_name', ['sac'])
@pytest.mark.parametrize('preset', ['paper', 'drol_star', 'none'])
def test_presets(agent_name, preset):
    agent_class = AGENTS[agent_name]
    config = agent_class.default_config()
    for env, expected in README_PRESETS[agent_name].items():
        actual = agent_class.preset_overrides(preset, env)
        assert actual == (expected if preset != 'none' else {}), env
        assert all(key in config and type(value) is type(config[key]) for key, value in actual.items())
    for env in OTHER_ENVS:
        assert agent_class.preset_overrides(preset, env) == {}, env
