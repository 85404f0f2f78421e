"""Pixel-based agents, frame stacking and the random crop against the FQL codebase.

The fixtures were made by `scripts/make_golden_fixtures.py` from the FQL code: `pixels_<agent>.npz`
(FQL, IQL, IFQL, ReBRAC with the impala_debug encoder on uint8 7x7x6 images, batch 16) and
`frames_reference.npz` (its `Dataset.sample` frame stacks of every row of a small dataset, and its
`batched_random_crop` at fixed offsets). The agents are compared as tests/test_golden_references.py
compares them (its helpers, same scales), with tolerances of their own: on images a few encoder
weights get gradients near Adam's epsilon (1e-8), where the step g / (|g| + eps) turns rounding of g
into visible changes. Rerunning the reference itself with XLA's CPU code limited to AVX2 moved FQL's
parameters after one update by 6.4e-4 of their scale (the BC flow encoder's MLP kernel), against
2.3e-7 on states; its losses, gradients, metrics and actions stayed as close as on states. DRIFT holds
the largest drift measured per kind over the four cases between the stored fixtures and (b) the
reference rerun with AVX2, (c) this project (2-core AMD EPYC, jax 0.10.2); the tolerance is SAFETY
times that, at least FLOOR:

| kind | (b) AVX2 | (c) project | tolerance |
| --- | --- | --- | --- |
| loss | 0 | 0 | 1e-6 (FLOOR) |
| gradients | 6.6e-7 | 5.4e-7 | 6.6e-6 |
| parameters | 6.4e-4 | 1.1e-5 | 6.4e-3 |
| metrics | 4.8e-8 | 1.6e-7 | 1.6e-6 |
| actions | 0 | 0 | 1e-6 (FLOOR) |

The gradients stay as tight as on states: a wrong encoder wiring (a shared encoder, a missing one,
unscaled images) moves them by orders of magnitude more. DROL has no pixel reference: its encoders
are checked to mirror FQL's one-step actor and critic.
"""

import glob
import os

import jax
import numpy as np
import pytest

from agents import AGENTS
from tests.test_golden_references import (
    FLOOR,
    KINDS,
    SAFETY,
    actions_as_runs_compile,
    as_runs_compile,
    batch,
    drift,
    flat,
    project_agent,
    update_as_runs_compile,
)
from utils.augmentations import random_crop
from utils.datasets import stacked_images, to_device

stack = jax.jit(stacked_images, static_argnums=2)

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures')
CASES = sorted(os.path.basename(path)[: -len('.npz')] for path in glob.glob(os.path.join(FIXTURES, 'pixels_*.npz')))
DRIFT = dict(loss=0.0, gradients=6.6e-7, parameters=6.4e-4, metrics=1.6e-7, actions=0.0)
TOLERANCE = {kind: max(SAFETY * value, FLOOR) for kind, value in DRIFT.items()}


def load(name):
    with np.load(os.path.join(FIXTURES, f'{name}.npz')) as data:
        return {key: data[key] for key in data.files}


def assert_matches(actual, fixture, key):
    kind = KINDS[key.split('/')[0]]
    assert np.shape(actual) == fixture[key].shape, key
    moved = drift(actual, fixture, key)
    assert moved <= TOLERANCE[kind], f'{key}: moved {moved:.2e} of its scale, over the {kind} tolerance'


def assert_tree_matches(tree, fixture, prefix):
    actual = flat(tree, fixture, prefix)
    assert set(actual) == {key for key in fixture if key.startswith(prefix + '/')}, prefix
    for key, value in actual.items():
        assert_matches(value, fixture, key)


def test_every_reference_agent_with_an_encoder_has_a_case():
    assert CASES == ['pixels_fql', 'pixels_ifql', 'pixels_iql', 'pixels_rebrac']


@pytest.mark.parametrize('case', CASES)
def test_pixel_agent_matches_reference(case):
    """First loss, metrics and gradients; actions; parameters after 1 and 10 updates and the metrics
    of all ten (one test per case, so each agent's functions compile once)."""
    fixture = load(case)
    agent = project_agent(fixture)
    assert str(fixture['ref_config/encoder']) == agent.config['encoder'] == 'impala_debug'
    _, rng = jax.random.split(agent.rng)
    loss_and_grad = as_runs_compile(
        jax.value_and_grad(lambda params, b: agent.total_loss(b, params, rng=rng), has_aux=True)
    )
    (loss, info), grads = loss_and_grad(agent.network.params, batch(fixture, 0))
    assert_matches(loss, fixture, 'loss0')
    for key in (k for k in fixture if k.startswith('info0/')):
        assert_matches(info[key[len('info0/') :]], fixture, key)
    assert_tree_matches(grads, fixture, 'grads0')

    seed, observations = jax.random.PRNGKey(7), fixture['batches/observations'][0]
    if 'actions/batched' in fixture:
        assert_matches(actions_as_runs_compile(agent, observations[:8], seed), fixture, 'actions/batched')
    assert_matches(actions_as_runs_compile(agent, observations[0], seed), fixture, 'actions/single')

    update, infos = update_as_runs_compile(agent), []
    for index in range(10):
        agent, update_info = update(agent, batch(fixture, index))
        infos.append(update_info)
        if index == 0:
            assert_tree_matches(agent.network.params, fixture, 'params1')
    assert_tree_matches(agent.network.params, fixture, 'params10')
    for key in (k for k in fixture if k.startswith('update_info/')):
        assert_matches(np.array([float(i.get(key[len('update_info/') :], np.nan)) for i in infos]), fixture, key)


def parameter_shapes(agent_name):
    config = AGENTS[agent_name].default_config()
    config.update(encoder='impala_debug', actor_hidden_dims=(8,), value_hidden_dims=(8,))
    agent = AGENTS[agent_name].create(0, np.zeros((1, 7, 7, 6), np.uint8), np.zeros((1, 3), np.float32), config)
    return {
        '/'.join(str(entry.key) for entry in path): leaf.shape
        for path, leaf in jax.tree_util.tree_leaves_with_path(agent.network.params)
    }


def test_drol_encoders_mirror_fql_one_step_actor_and_critic():
    """DROL's actor, critic and target critic own encoders exactly as FQL's one-step actor, critic and
    target critic do (the FQL-reference-checked wiring); only FQL's BC flow and its encoder differ."""
    drol, fql = parameter_shapes('drol'), parameter_shapes('fql')
    shared = {path: shape for path, shape in fql.items() if not path.startswith('modules_actor_bc_flow')}
    assert drol == shared
    for module in ('modules_actor', 'modules_critic', 'modules_target_critic'):
        assert any(path.startswith(f'{module}/encoder/stack_blocks_0/Conv_0') for path in drol), module


@pytest.mark.parametrize('frame_stack', [1, 2, 3, 4])
def test_frame_stacks_match_reference(frame_stack):
    """Every row's stacked observation and next observation, gathered by index on the device, equals
    the FQL codebase's `Dataset.sample` (episode starts repeated, channels oldest first)."""
    fixture = load('frames_reference')
    dataset = {key[len('dataset/') :]: value for key, value in fixture.items() if key.startswith('dataset/')}
    size = len(dataset['observations'])
    dataset.update(actions=np.zeros((size, 2)), rewards=np.zeros(size), masks=np.ones(size))
    rows = np.arange(size)
    observations, next_observations = stack(to_device(dataset), rows, frame_stack)
    np.testing.assert_array_equal(observations, fixture[f'stack{frame_stack}/observations'])
    np.testing.assert_array_equal(next_observations, fixture[f'stack{frame_stack}/next_observations'])


def test_random_crop_matches_reference():
    """Edge padding by 3 and the crop at given offsets equal the FQL codebase's `batched_random_crop`."""
    fixture = load('frames_reference')
    cropped = random_crop(fixture['crop/images'], fixture['crop/offsets'])
    assert cropped.dtype == np.uint8
    np.testing.assert_array_equal(cropped, fixture['crop/cropped'])
