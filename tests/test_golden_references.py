"""The agents against the reference code: same parameters, batches and keys give the same numbers.

The fixtures in tests/fixtures/ were made by running the official FQL code (seohongpark/fql:
FQL and its baselines IQL, IFQL, ReBRAC, SAC) and the DROL authors' code (muzhancun/DROL) with
`scripts/make_golden_fixtures.py`; only their numbers are stored. Each case loads the reference's
parameters (every target deliberately different from its source) into this project's agent with
the same random key, then compares the loss, every metric both sides log, the gradients, the
parameters after 1 and 10 updates, and the actions at inference. Every case runs whatever its
agent: the agent is the fixture's `ref_config/agent_name`, and only DROL and FQL need the name
mappings below.

Tolerances. The reference code itself does not give the same last bits on every machine: XLA's
CPU kernels differ with the processor and the jaxlib build, so rerunning the references moves the
fixtures' numbers a little (IQL's by up to 8.4e-5 on one machine), while a real bug moves
them by orders of magnitude more. So every array is compared at its own scale: |actual - expected|
<= TOLERANCE[kind] * scale, where scale is the array's largest |expected| value, and for the
parameters after 1 and 10 updates the largest change those updates made (the weights are about
100 times larger than ten Adam steps, so a bound relative to them could not see a wrong update).
Each number may also differ by ROUNDING times itself (its own last bits). TOLERANCE is SAFETY times
the largest drift measured per kind over all twelve cases (DRIFT), at least FLOOR, between the
stored fixtures and (a) the references rerun from scratch on a 2-core AMD EPYC (AVX-512; jax 0.10.2,
numpy 2.4.6, the stored fixtures were made by earlier sessions), (b) the same with XLA's CPU code
limited to AVX2 (`--xla_cpu_max_isa=AVX2`: other instructions, other rounding, as on another
processor), (c) this project's agents on that machine, and (d) the references rerun and (e) this
project's agents on a 2-core Intel Xeon (Sapphire Rapids: AVX-512 FP16, AMX).
`scripts/make_golden_fixtures.py --drift=FOLDER` prints (a), (b) and (d) for a new regeneration.
Measured, as fractions of the scale:

| kind | numbers | (a) rerun | (b) AVX2 | (c) project | (d) Xeon rerun | (e) Xeon project | tolerance |
| --- | --- | --- | --- | --- | --- | --- | --- |
| loss | first loss and its metrics (scalars) | 0 | 1.5e-5 | 4.1e-5 | 2.2e-5 | 2.2e-5 | 4.1e-4 |
| gradients | gradients of the first loss | 9.0e-8 | 9.0e-8 | 1.1e-6 | 5.2e-7 | 3.6e-6 | 3.6e-5 |
| parameters | after 1 and 10 updates | 2.3e-7 | 2.3e-7 | 3.9e-7 | 6.3e-4 | 6.3e-4 | 6.3e-3 |
| metrics | the 10 updates' metrics | 1.3e-7 | 2.1e-7 | 1.9e-7 | 1.4e-6 | 1.5e-6 | 1.5e-5 |
| actions | `sample_actions` | 0 | 0 | 0 | 0 | 0 | 1e-6 (FLOOR) |

The parameters' 6.3e-4 is one weight of ReBRAC's critic on the Xeon, in the reference and the
project alike (there the project equals the rerun reference: drift 0 after one update, 9e-7 after
ten): its gradient is 4e-7 of the gradient's scale, a sum of terms that cancel, so its last bits
move by 10% between processors, and Adam's first step, lr * g / (|g| + eps) with eps = 1e-8, turns
that into 0.4% of a step (the pixel cases see the same, tests/test_golden_pixels.py). A 1% error in
the learning rate still moves drol_default's parameters by 1.0e-2 of their scale and its metrics by
3.9e-3, over these tolerances.

The loss drifts are all in one metric, `critic/q_mean` of DROL and FQL (2e-3, a mean of values of
either sign). A real bug moves the numbers far more (the smallest seen: DROL's bc_coef times 1.01
moves drol_default's gradients by 4.1e-3 of their scale and its loss by 2.7e-3; a missing
stop-gradient or a flipped sign by 1 or more), so each fails every case it touches.
"""

import glob
import math
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from agents import AGENTS
from tests.compile_flags import FAST_COMPILE, RUNS_COMPILE
from tests.helpers import ROOT, program_env

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
# Fixture key prefix -> kind of number, for the tolerances.
KINDS = {
    'loss0': 'loss',
    'info0': 'loss',
    'grads0': 'gradients',
    'params1': 'parameters',
    'params10': 'parameters',
    'update_info': 'metrics',
    'actions': 'actions',
}
# Largest drift measured per kind (table above); TOLERANCE leaves SAFETY times that for other
# processors and builds, and FLOOR where nothing moved (about the float32 error of a 100-term sum).
DRIFT = dict(loss=4.1e-5, gradients=3.6e-6, parameters=6.3e-4, metrics=1.5e-6, actions=0.0)
SAFETY = 10
FLOOR = 1e-6
TOLERANCE = {kind: max(SAFETY * drift, FLOOR) for kind, drift in DRIFT.items()}
# The last bits of each number itself, allowed whatever its array's scale: one step of Adam changes
# a weight of 1 by about 3e-4, where float32 spacing alone (1.2e-7) is already 4e-4 of the change.
ROUNDING = 4 * float(np.finfo(np.float32).eps)


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


def as_runs_compile(function, **jit_options):
    """`function` jitted as a run compiles it, with XLA's default optimisation: the tests themselves compile with
    cheap passes, which move last bits (tests/compile_flags.py)."""
    return jax.jit(function, compiler_options=RUNS_COMPILE, **jit_options)


def update_as_runs_compile(agent):
    """`agent.update` (which donates its agent), compiled as a run compiles it: `update(agent, batch)`."""
    return as_runs_compile(type(agent).update.__wrapped__, donate_argnums=0)


def actions_as_runs_compile(agent, observations, seed):
    return as_runs_compile(type(agent).sample_actions.__wrapped__)(agent, observations, seed=seed)


def agent_name(fixture):
    return str(fixture['ref_config/agent_name'])


def batch(fixture, index):
    """Batch `index` with every field the case stored (ReBRAC's cases also have next_actions)."""
    return {key[len('batches/') :]: value[index] for key, value in fixture.items() if key.startswith('batches/')}


def scale(fixture, key):
    """The size the drift of fixture[key] is measured against: its largest |value| (NaN, an unlogged
    metric, left out), or for parameters after updates the largest change the updates made."""
    expected = fixture[key].astype(np.float64)
    if KINDS[key.split('/')[0]] == 'parameters':
        expected = expected - fixture['params0/' + key.split('/', 1)[1]]
    return float(np.max(np.abs(expected[np.isfinite(expected)]), initial=0.0))


def drift(actual, fixture, key):
    """How far actual is from fixture[key] beyond ROUNDING, as a fraction of the key's scale (0 when
    within, inf when the scale is 0 and they differ); NaN entries of the fixture are left out."""
    expected = fixture[key].astype(np.float64)
    logged = np.isfinite(expected)
    difference = np.abs(np.asarray(actual, np.float64)[logged] - expected[logged])
    excess = np.max(difference - ROUNDING * np.abs(expected[logged]), initial=0.0)
    if not excess > 0:
        return 0.0 if excess == 0 else math.inf  # NaN (an actual NaN) counts as infinitely far.
    size = scale(fixture, key)
    return excess / size if size else math.inf


def assert_matches(actual, fixture, key):
    """actual equals fixture[key] up to TOLERANCE[kind] * scale."""
    kind = KINDS[key.split('/')[0]]
    assert np.shape(actual) == fixture[key].shape, key
    moved = drift(actual, fixture, key)
    assert moved <= TOLERANCE[kind], (
        f'{key}: moved {moved:.2e} of its scale, over the {kind} tolerance {TOLERANCE[kind]:.0e}'
    )


def flat(tree, fixture, prefix):
    """{'prefix/module/.../leaf': array} with the module names of the fixture's reference: its keys."""
    out = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        names = [str(entry.key) for entry in path]
        for theirs, ours in MODULE_NAMES.items():
            if names[0] == ours and any(key.startswith(f'{prefix}/{theirs}/') for key in fixture):
                names[0] = theirs
        out['/'.join([prefix, *names])] = np.asarray(leaf)
    return out


def assert_tree_matches(actual, fixture, prefix):
    actual = flat(actual, fixture, prefix)
    assert set(actual) == {key for key in fixture if key.startswith(prefix + '/')}, prefix
    for key, value in actual.items():
        assert_matches(value, fixture, key)


def training_cases():
    return [case for case in CASES if not bool(load(case)['meta/inference_only'])]


def test_golden_programs_undo_every_fast_compile_option():
    """Each option the tests' cheap compile sets in XLA_FLAGS is set back to XLA's default for the golden programs,
    so none of them reaches the numbers compared with the references."""
    fast = {flag[2:].split('=')[0] for flag in FAST_COMPILE.split()}
    assert fast == set(RUNS_COMPILE), sorted(fast ^ set(RUNS_COMPILE))


def test_every_agent_has_a_fixture_case():
    covered = {agent_name(load(case)) for case in CASES}
    assert set(AGENTS) <= covered, sorted(set(AGENTS) - covered)


@pytest.mark.parametrize('case', training_cases())
def test_first_loss_metrics_and_gradients(case):
    fixture = load(case)
    agent = project_agent(fixture)
    _, rng = jax.random.split(agent.rng)  # The key `update` passes to the loss.
    np.testing.assert_array_equal(np.asarray(jax.random.key_data(rng)), fixture['rng_loss0'])
    # Jitted: one compile instead of hundreds of eager ops. The fixture's numbers were computed eagerly by the
    # reference; fusion moves only last bits, well inside the tolerances.
    (loss, info), grads = as_runs_compile(
        jax.value_and_grad(lambda params: agent.total_loss(batch(fixture, 0), params, rng=rng), has_aux=True)
    )(agent.network.params)
    assert_matches(loss, fixture, 'loss0')
    expected = [key[len('info0/') :] for key in fixture if key.startswith('info0/')]
    assert set(expected) <= set(info), sorted(set(expected) - set(info))
    for name in expected:
        assert_matches(info[name], fixture, f'info0/{name}')
    assert_tree_matches(grads, fixture, 'grads0')


@pytest.mark.parametrize('case', training_cases())
def test_parameters_and_metrics_after_1_and_10_updates(case):
    """ReBRAC's reference was updated with `full_update = (i % actor_freq == 0)` at update i = 1..10
    (`meta/full_update`); this project's ReBRAC follows that schedule by itself."""
    fixture = load(case)
    agent = project_agent(fixture)
    update = update_as_runs_compile(agent)
    infos = []
    for index in range(10):
        agent, info = update(agent, batch(fixture, index))
        infos.append(info)
        if index == 0:
            assert_tree_matches(agent.network.params, fixture, 'params1')
            np.testing.assert_array_equal(np.asarray(agent.rng), fixture['rng1'])
    assert_tree_matches(agent.network.params, fixture, 'params10')
    np.testing.assert_array_equal(np.asarray(agent.rng), fixture['rng10'])
    for key in (k for k in fixture if k.startswith('update_info/')):
        name = key[len('update_info/') :]
        # NaN marks updates where the reference did not log the metric (ReBRAC's critic-only steps):
        # `drift` leaves those out.
        actual = np.array([float(info.get(name, math.nan)) for info in infos])
        assert_matches(actual, fixture, key)


@pytest.mark.parametrize('case', CASES)
def test_inference_actions(case):
    """`sample_actions` at temperature 1 (stochastic actors: the same key gives the same sample).
    IFQL's reference acts on one observation only, so its cases store no batched actions."""
    fixture = load(case)
    agent = project_agent(fixture)
    seed = jax.random.PRNGKey(7)
    observations = fixture['batches/observations'][0]
    if 'actions/batched' in fixture:
        assert_matches(actions_as_runs_compile(agent, observations[:8], seed), fixture, 'actions/batched')
    assert_matches(actions_as_runs_compile(agent, observations[0], seed), fixture, 'actions/single')


# One update of a case in a program of its own, under XLA_FLAGS without the tests' cheap passes: as a run computes it.
RUN_UPDATE = """import sys, numpy as np, jax
from tests.test_golden_references import batch, load, project_agent
fixture = load(sys.argv[1])
agent, _ = project_agent(fixture).update(batch(fixture, 0))
np.savez(sys.argv[2], *jax.tree_util.tree_leaves(agent.network.params))
"""


@pytest.mark.slow
def test_the_numbers_compared_are_those_a_run_computes(tmp_path):
    """The tests compile with cheap passes, which move last bits (tests/compile_flags.py); the golden numbers are
    compiled as a run compiles them: bit for bit those of a program under XLA's default optimisation."""
    case, path = 'sac_default', tmp_path / 'params.npz'
    env = {**program_env(), 'XLA_FLAGS': ''}
    result = subprocess.run([sys.executable, '-c', RUN_UPDATE, case, path], cwd=ROOT, env=env, capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
    fixture = load(case)
    agent = project_agent(fixture)
    agent, _ = update_as_runs_compile(agent)(agent, batch(fixture, 0))
    with np.load(path) as expected:
        ours = jax.tree_util.tree_leaves(agent.network.params)
        assert all(np.array_equal(leaf, expected[f'arr_{i}']) for i, leaf in enumerate(ours))
