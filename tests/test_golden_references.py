"""The agents against the reference code: same parameters, batches and keys give the same numbers.

The fixtures in tests/fixtures/ were made by running the official FQL code (seohongpark/fql:
FQL and its baselines IQL, IFQL, ReBRAC, SAC) and the DROL authors' code (muzhancun/DROL) with
`scripts/make_golden_fixtures.py`; only their numbers are stored. Each case loads the reference's
parameters (every target deliberately different from its source) into this project's agent with
the same random key, then compares the loss, every metric both sides log, the gradients, the
parameters after 1 and 10 updates, and the actions at inference. Every case runs whatever its
agent: the agent is the fixture's `ref_config/agent_name`, and only DROL and FQL need the name
mappings below.
"""

import glob
import math
import os

import jax
import numpy as np
import pytest

from agents import AGENTS

FIXTURES = sorted(glob.glob(os.path.join(os.path.dirname(__file__), 'fixtures', 'golden_*.npz')))
CASES = [os.path.basename(path)[len('golden_') : -len('.npz')] for path in FIXTURES]

# Reference config key -> this project's key (same meaning).
CONFIG_NAMES = {
    'inference_best_of_n': 'best_of_n',
    'inference_num_samples': 'best_of_n_candidates',
    'inference_use_density_filter': 'density_filter',
    'inference_dense_topk': 'density_keep',
    'inference_q_agg': 'best_of_n_q_agg',
}
MODULE_NAMES = {'modules_actor_onestep_flow': 'modules_actor'}
LOSS_TOLERANCE = dict(rtol=2e-5, atol=2e-6)
PARAM_TOLERANCE = dict(rtol=1e-4, atol=2e-6)


def load(case):
    with np.load(FIXTURES[CASES.index(case)]) as data:
        return {key: data[key] for key in data.files}


def tree(fixture, prefix):
    """The nested parameter dict stored under `prefix/...`, with module names mapped to the project's."""
    out = {}
    for key, value in fixture.items():
        if key.startswith(prefix + '/'):
            path = key[len(prefix) + 1 :].split('/')
            path[0] = MODULE_NAMES.get(path[0], path[0])
            node = out
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = value
    return out


def project_agent(fixture):
    """This project's agent with the reference's settings, parameters and key."""
    reference = {key[len('ref_config/') :]: value for key, value in fixture.items() if key.startswith('ref_config/')}
    name = str(reference.pop('agent_name'))
    config = AGENTS[name].default_config()
    for key, value in reference.items():
        key = CONFIG_NAMES.get(key, key)
        assert key in config, f'reference setting {key} has no counterpart here'
        config[key] = tuple(int(v) for v in value) if value.ndim else value.item()
    batches = fixture['batches/observations'], fixture['batches/actions']
    agent = AGENTS[name].create(0, batches[0][0, :1], batches[1][0, :1], config)
    params = tree(fixture, 'params0')
    assert jax.tree_util.tree_structure(params) == jax.tree_util.tree_structure(
        jax.tree_util.tree_map(np.asarray, agent.network.params)
    )
    network = agent.network.replace(params=params, opt_state=agent.network.tx.init(params))
    return agent.replace(network=network, rng=fixture['rng'])


def agent_name(fixture):
    return str(fixture['ref_config/agent_name'])


def batch(fixture, index):
    """Batch `index` with every field the case stored (ReBRAC's cases also have next_actions)."""
    return {key[len('batches/') :]: value[index] for key, value in fixture.items() if key.startswith('batches/')}


def assert_trees_close(actual, expected, **tolerance):
    actual_leaves = jax.tree_util.tree_leaves_with_path(actual)
    expected_leaves = jax.tree_util.tree_leaves_with_path(expected)
    for (path, a), (_, e) in zip(actual_leaves, expected_leaves, strict=True):
        np.testing.assert_allclose(a, e, err_msg=jax.tree_util.keystr(path), **tolerance)


def training_cases():
    return [case for case in CASES if not bool(load(case)['meta/inference_only'])]


def test_every_agent_has_a_fixture_case():
    covered = {agent_name(load(case)) for case in CASES}
    assert set(AGENTS) <= covered, sorted(set(AGENTS) - covered)


@pytest.mark.parametrize('case', training_cases())
def test_first_loss_metrics_and_gradients(case):
    fixture = load(case)
    agent = project_agent(fixture)
    _, rng = jax.random.split(agent.rng)  # The key `update` passes to the loss.
    np.testing.assert_array_equal(np.asarray(jax.random.key_data(rng)), fixture['rng_loss0'])
    (loss, info), grads = jax.value_and_grad(
        lambda params: agent.total_loss(batch(fixture, 0), params, rng=rng), has_aux=True
    )(agent.network.params)
    np.testing.assert_allclose(loss, fixture['loss0'], **LOSS_TOLERANCE)
    expected = {key[len('info0/') :]: value for key, value in fixture.items() if key.startswith('info0/')}
    assert set(expected) <= set(info), sorted(set(expected) - set(info))
    for key, value in expected.items():
        np.testing.assert_allclose(info[key], value, err_msg=key, **LOSS_TOLERANCE)
    assert_trees_close(grads, tree(fixture, 'grads0'), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('case', training_cases())
def test_parameters_and_metrics_after_1_and_10_updates(case):
    """ReBRAC's reference was updated with `full_update = (i % actor_freq == 0)` at update i = 1..10
    (`meta/full_update`); this project's ReBRAC follows that schedule by itself."""
    fixture = load(case)
    agent = project_agent(fixture)
    infos = []
    for index in range(10):
        agent, info = agent.update(batch(fixture, index))
        infos.append(info)
        if index == 0:
            assert_trees_close(agent.network.params, tree(fixture, 'params1'), **PARAM_TOLERANCE)
            np.testing.assert_array_equal(np.asarray(agent.rng), fixture['rng1'])
    assert_trees_close(agent.network.params, tree(fixture, 'params10'), **PARAM_TOLERANCE)
    np.testing.assert_array_equal(np.asarray(agent.rng), fixture['rng10'])
    for key in (k for k in fixture if k.startswith('update_info/')):
        name = key[len('update_info/') :]
        # NaN marks updates where the reference did not log the metric (ReBRAC's critic-only steps).
        logged = np.isfinite(fixture[key])
        actual = np.array([float(info.get(name, math.nan)) for info in infos])
        np.testing.assert_allclose(actual[logged], fixture[key][logged], err_msg=name, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('case', CASES)
def test_inference_actions(case):
    """`sample_actions` at temperature 1 (stochastic actors: the same key gives the same sample).
    IFQL's reference acts on one observation only, so its cases store no batched actions."""
    fixture = load(case)
    agent = project_agent(fixture)
    seed = jax.random.PRNGKey(7)
    observations = fixture['batches/observations'][0]
    if 'actions/batched' in fixture:
        batched = agent.sample_actions(observations[:8], seed=seed)
        np.testing.assert_allclose(batched, fixture['actions/batched'], atol=1e-6)
    np.testing.assert_allclose(agent.sample_actions(observations[0], seed=seed), fixture['actions/single'], atol=1e-6)
