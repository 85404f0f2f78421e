"""Per-environment presets, checked against tables transcribed here independently of `utils/presets.py`.

Sources, as recorded in the project's algorithm notes (docs/algorithm.md):
- DROL: the DROL paper's per-environment table (OGBench: bc_coef, other flags, tuned K), and the DROL
  authors' production script for D4RL: its fixed-K section (preset 'paper', K = 16 everywhere) and its
  "tuned supporting reruns" section (preset 'drol_star', the DROL* rows with their tuned K).
- FQL: the exact commands in the FQL README (github.com/seohongpark/fql); FQL's presets 'paper' and
  'drol_star' are the same.

A preset returns exactly the agent config keys it sets: a flag left at its default (e.g. FQL's discount
0.99 on antmaze-large-navigate, DROL's K = 16 under 'paper') must be absent.
"""

import pytest

from agents import AGENTS

PRESETS = ('paper', 'drol_star', 'none')

OGBENCH_FAMILIES = (
    'antmaze-large-navigate',
    'antmaze-giant-navigate',
    'humanoidmaze-medium-navigate',
    'humanoidmaze-large-navigate',
    'antsoccer-arena-navigate',
    'cube-single-play',
    'cube-double-play',
    'scene-play',
    'puzzle-3x3-play',
    'puzzle-4x4-play',
)
D4RL_ANTMAZE = (
    'antmaze-umaze-v2',
    'antmaze-umaze-diverse-v2',
    'antmaze-medium-play-v2',
    'antmaze-medium-diverse-v2',
    'antmaze-large-play-v2',
    'antmaze-large-diverse-v2',
)
ADROIT_TASKS = ('pen', 'door', 'hammer', 'relocate')
D4RL_ADROIT = tuple(f'{task}-{kind}-v1' for task in ADROIT_TASKS for kind in ('human', 'cloned', 'expert'))
ALL_ENVS = OGBENCH_FAMILIES + D4RL_ANTMAZE + D4RL_ADROIT

# DROL paper, OGBench: family -> (bc_coef, other flags, tuned K). K is 16 in the fixed-K setting ('paper').
DROL_OGBENCH = {
    'antmaze-large-navigate': (0.03, {'discount': 0.995, 'q_agg': 'min'}, 16),
    'antmaze-giant-navigate': (0.03, {'discount': 0.995, 'q_agg': 'min'}, 1),
    'humanoidmaze-medium-navigate': (0.3, {'discount': 0.995}, 16),
    'humanoidmaze-large-navigate': (0.3, {'discount': 0.995}, 4),
    'antsoccer-arena-navigate': (0.1, {'discount': 0.995}, 4),
    'cube-single-play': (10.0, {}, 16),
    'cube-double-play': (3.0, {}, 64),
    'scene-play': (3.0, {}, 64),
    'puzzle-3x3-play': (0.3, {}, 32),
    'puzzle-4x4-play': (10.0, {}, 64),
}

# DROL production script, D4RL fixed-K section ('paper'): dataset -> bc_coef. Adroit adds q_agg 'min'.
DROL_D4RL_PAPER_BC = {
    'antmaze-umaze-v2': 0.3,
    'antmaze-umaze-diverse-v2': 0.1,
    'antmaze-medium-play-v2': 0.1,
    'antmaze-medium-diverse-v2': 0.1,
    'antmaze-large-play-v2': 0.1,
    'antmaze-large-diverse-v2': 0.1,
    **{f'pen-{kind}-v1': 1.0 for kind in ('human', 'cloned', 'expert')},
    **{f'door-{kind}-v1': 10.0 for kind in ('human', 'cloned', 'expert')},
    **{f'hammer-{kind}-v1': 3.0 for kind in ('human', 'cloned', 'expert')},
    **{f'relocate-{kind}-v1': 10.0 for kind in ('human', 'cloned', 'expert')},
}

# DROL production script, "tuned supporting reruns" (DROL*, 'drol_star'): dataset -> (bc_coef, K).
DROL_D4RL_STAR = {
    'antmaze-umaze-v2': (0.3, 2),
    'antmaze-umaze-diverse-v2': (0.1, 16),
    'antmaze-medium-play-v2': (0.1, 32),
    'antmaze-medium-diverse-v2': (0.1, 16),
    'antmaze-large-play-v2': (0.03, 16),
    'antmaze-large-diverse-v2': (0.03, 16),
    **{f'pen-{kind}-v1': (1.0, 16) for kind in ('human', 'cloned', 'expert')},
    **{f'door-{kind}-v1': (10.0, 8) for kind in ('human', 'cloned', 'expert')},
    **{f'hammer-{kind}-v1': (3.0, 8) for kind in ('human', 'cloned', 'expert')},
    **{f'relocate-{kind}-v1': (10.0, 32) for kind in ('human', 'cloned', 'expert')},
}

# FQL README's exact commands: environment -> the config keys they set.
FQL_TABLE = {
    'antmaze-large-navigate': {'q_agg': 'min', 'alpha': 10.0},  # discount stays at the default 0.99.
    'antmaze-giant-navigate': {'discount': 0.995, 'q_agg': 'min', 'alpha': 10.0},
    'humanoidmaze-medium-navigate': {'discount': 0.995, 'alpha': 30.0},
    'humanoidmaze-large-navigate': {'discount': 0.995, 'alpha': 30.0},
    'antsoccer-arena-navigate': {'discount': 0.995, 'alpha': 10.0},
    'cube-single-play': {'alpha': 300.0},
    'cube-double-play': {'alpha': 300.0},
    'scene-play': {'alpha': 300.0},
    'puzzle-3x3-play': {'alpha': 1000.0},
    'puzzle-4x4-play': {'alpha': 1000.0},
    'antmaze-umaze-v2': {'alpha': 10.0},
    'antmaze-umaze-diverse-v2': {'alpha': 10.0},
    'antmaze-medium-play-v2': {'alpha': 10.0},
    'antmaze-medium-diverse-v2': {'alpha': 10.0},
    'antmaze-large-play-v2': {'alpha': 3.0},
    'antmaze-large-diverse-v2': {'alpha': 3.0},
    'pen-human-v1': {'q_agg': 'min', 'alpha': 10000.0},
    'pen-cloned-v1': {'q_agg': 'min', 'alpha': 10000.0},
    'pen-expert-v1': {'q_agg': 'min', 'alpha': 3000.0},
    'door-human-v1': {'q_agg': 'min', 'alpha': 30000.0},
    'door-cloned-v1': {'q_agg': 'min', 'alpha': 30000.0},
    'door-expert-v1': {'q_agg': 'min', 'alpha': 30000.0},
    'hammer-human-v1': {'q_agg': 'min', 'alpha': 30000.0},
    'hammer-cloned-v1': {'q_agg': 'min', 'alpha': 10000.0},
    'hammer-expert-v1': {'q_agg': 'min', 'alpha': 30000.0},
    'relocate-human-v1': {'q_agg': 'min', 'alpha': 10000.0},
    'relocate-cloned-v1': {'q_agg': 'min', 'alpha': 30000.0},
    'relocate-expert-v1': {'q_agg': 'min', 'alpha': 30000.0},
}


def _drol_expected(preset, env):
    if preset == 'none':
        return {}
    if env in DROL_OGBENCH:
        bc_coef, flags, tuned_k = DROL_OGBENCH[env]
        expected = {'bc_coef': bc_coef, **flags}
        if preset == 'drol_star':
            expected['num_candidates'] = tuned_k
        return expected
    if preset == 'paper':
        expected = {'bc_coef': DROL_D4RL_PAPER_BC[env]}
    else:
        bc_coef, tuned_k = DROL_D4RL_STAR[env]
        expected = {'bc_coef': bc_coef, 'num_candidates': tuned_k}
    if env in D4RL_ADROIT:
        expected['q_agg'] = 'min'
    return expected


def _fql_expected(preset, env):
    return {} if preset == 'none' else dict(FQL_TABLE[env])


EXPECTED = {
    agent: {preset: {env: expected_fn(preset, env) for env in ALL_ENVS} for preset in PRESETS}
    for agent, expected_fn in (('drol', _drol_expected), ('fql', _fql_expected))
}
CASES = [(agent, preset, env) for agent in EXPECTED for preset in PRESETS for env in ALL_ENVS]


@pytest.mark.parametrize(('agent', 'preset', 'env'), CASES, ids=[f'{a}-{p}-{e}' for a, p, e in CASES])
def test_preset_overrides(agent, preset, env):
    expected = EXPECTED[agent][preset][env]
    actual = AGENTS[agent].preset_overrides(preset, env)
    assert actual == expected
    for key, value in expected.items():
        assert type(actual[key]) is type(value), (key, actual[key])


@pytest.mark.parametrize('preset', PRESETS)
@pytest.mark.parametrize('agent', sorted(AGENTS))
def test_unknown_env_is_empty(agent, preset):
    assert AGENTS[agent].preset_overrides(preset, 'no-such-env') == {}


@pytest.mark.parametrize('agent', sorted(EXPECTED))
def test_table_covers_every_environment(agent):
    assert len(OGBENCH_FAMILIES) == 10 and len(D4RL_ANTMAZE) == 6 and len(D4RL_ADROIT) == 12
    assert len(set(ALL_ENVS)) == 28
    for preset in PRESETS:
        assert set(EXPECTED[agent][preset]) == set(ALL_ENVS)
    assert set(DROL_OGBENCH) == set(OGBENCH_FAMILIES)
    assert set(DROL_D4RL_PAPER_BC) == set(DROL_D4RL_STAR) == set(D4RL_ANTMAZE + D4RL_ADROIT)
    assert set(FQL_TABLE) == set(ALL_ENVS)
    # Every known environment gets a non-empty preset except under 'none'.
    assert all(EXPECTED[agent][preset][env] for preset in ('paper', 'drol_star') for env in ALL_ENVS)


def test_apply_preset_keeps_explicit_key():
    from agents.drol import get_config
    from utils.presets import apply_preset

    config = get_config()
    config.bc_coef = 7.0  # Set explicitly, e.g. on the command line.
    overrides = {'bc_coef': 0.03, 'discount': 0.995, 'q_agg': 'min'}
    applied = apply_preset(config, overrides, explicit_keys={'bc_coef'})
    assert applied == {'discount': 0.995, 'q_agg': 'min'}
    assert config.bc_coef == 7.0
    assert config.discount == 0.995
    assert config.q_agg == 'min'
