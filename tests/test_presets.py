"""Per-environment presets, checked against tables transcribed here independently of `utils/presets.py`.

Sources, as recorded in the project's algorithm notes (docs/algorithm.md):
- DROL: the DROL paper's per-environment table (OGBench: bc_coef, other flags, tuned K), and the DROL
  authors' production script for D4RL: its fixed-K section (preset 'paper', K = 16 everywhere) and its
  "tuned supporting reruns" section (preset 'drol_star', the DROL* rows with their tuned K).
- FQL: the exact commands in the FQL README (github.com/seohongpark/fql); FQL's presets 'paper' and
  'drol_star' are the same.
- IQL, ReBRAC, IFQL: the FQL paper (Park, Li, Levine, ICML 2025), Appendix E.2: Table 6 (offline) and
  Table 7 (offline-to-online), one row per OGBench family for its five tasks, and its method notes (IQL
  uses [256] * 4 MLPs on the state-based manipulation families); plus the discount 0.995 of the FQL
  README's baseline commands on the long-horizon families. Where a table has no value, the agent's
  default stays and `preset_note` says so. Table 6 also has one row per pixel-based family (visual-*), for
  FQL too; the DROL paper ran no pixel-based tasks, so DROL takes the state family's row and says so.

A preset returns exactly the agent config keys it sets: a flag left at its default (e.g. FQL's discount
0.99 on antmaze-large-navigate, DROL's K = 16 under 'paper') must be absent.
"""

import json
import subprocess
import sys

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
VISUAL_FAMILIES = tuple(f'visual-{family}' for family in OGBENCH_FAMILIES[5:])
ALL_ENVS = OGBENCH_FAMILIES + D4RL_ANTMAZE + D4RL_ADROIT + VISUAL_FAMILIES

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
    # The FQL paper's Table 6 (the README has no pixel-based commands).
    'visual-cube-single-play': {'alpha': 300.0},
    'visual-cube-double-play': {'alpha': 100.0},
    'visual-scene-play': {'alpha': 100.0},
    'visual-puzzle-3x3-play': {'alpha': 300.0},
    'visual-puzzle-4x4-play': {'alpha': 300.0},
}


# FQL paper, Table 6: environment -> (IQL alpha, ReBRAC (alpha1, alpha2), IFQL N); None: no value given
# (antsoccer is missing from the table; IQL's and ReBRAC's D4RL numbers are prior work's).
FQL_PAPER_TABLE_6 = {
    'antmaze-large-navigate': (10, (0.003, 0.01), 32),
    'antmaze-giant-navigate': (10, (0.003, 0.01), 32),
    'humanoidmaze-medium-navigate': (10, (0.01, 0.01), 32),
    'humanoidmaze-large-navigate': (10, (0.01, 0.01), 32),
    'antsoccer-arena-navigate': (None, None, None),
    'cube-single-play': (1, (1, 0), 32),
    'cube-double-play': (0.3, (0.1, 0), 32),
    'scene-play': (10, (0.1, 0.01), 32),
    'puzzle-3x3-play': (10, (0.3, 0.01), 32),
    'puzzle-4x4-play': (3, (0.3, 0.01), 32),
    'antmaze-umaze-v2': (None, None, 32),
    'antmaze-umaze-diverse-v2': (None, None, 32),
    'antmaze-medium-play-v2': (None, None, 32),
    'antmaze-medium-diverse-v2': (None, None, 32),
    'antmaze-large-play-v2': (None, None, 32),
    'antmaze-large-diverse-v2': (None, None, 32),
    'pen-human-v1': (None, None, 32),
    'pen-cloned-v1': (None, None, 32),
    'pen-expert-v1': (None, None, 32),
    'door-human-v1': (None, None, 32),
    'door-cloned-v1': (None, None, 128),
    'door-expert-v1': (None, None, 32),
    'hammer-human-v1': (None, None, 32),
    'hammer-cloned-v1': (None, None, 32),
    'hammer-expert-v1': (None, None, 32),
    'relocate-human-v1': (None, None, 128),
    'relocate-cloned-v1': (None, None, 32),
    'relocate-expert-v1': (None, None, 32),
    'visual-cube-single-play': (1, (1, 0), 32),
    'visual-cube-double-play': (0.3, (0.1, 0), 32),
    'visual-scene-play': (10, (0.1, 0.01), 32),
    'visual-puzzle-3x3-play': (10, (0.3, 0.01), 32),
    'visual-puzzle-4x4-play': (3, (0.3, 0.01), 32),
}
# FQL paper, Table 7 (offline-to-online), in the same shape; environments it lacks add nothing online.
FQL_PAPER_TABLE_7 = {
    'humanoidmaze-medium-navigate': (10, (0.01, 0.01), 32),
    'antsoccer-arena-navigate': (1, (0.01, 0.01), 64),
    'cube-double-play': (0.3, (0.1, 0), 32),
    'scene-play': (10, (0.1, 0.01), 32),
    'puzzle-4x4-play': (3, (0.3, 0.01), 32),
    'antmaze-umaze-v2': (None, None, 32),
    'antmaze-umaze-diverse-v2': (None, None, 32),
    'antmaze-medium-play-v2': (None, None, 32),
    'antmaze-medium-diverse-v2': (None, None, 32),
    'antmaze-large-play-v2': (None, None, 32),
    'antmaze-large-diverse-v2': (None, None, 32),
    'pen-cloned-v1': (None, None, 128),
    'door-cloned-v1': (None, None, 128),
    'hammer-cloned-v1': (None, None, 128),
    'relocate-cloned-v1': (None, None, 128),
}
# The FQL README's baseline commands' discount on the long-horizon families (the FQL paper: antmaze-giant,
# humanoidmaze, antsoccer), and IQL's smaller MLPs on the state-based manipulation families.
LONG_HORIZON = ('antmaze-giant-navigate', 'humanoidmaze-medium-navigate', 'humanoidmaze-large-navigate',
                'antsoccer-arena-navigate')  # fmt: skip
MANIPULATION = ('cube-single-play', 'cube-double-play', 'scene-play', 'puzzle-3x3-play', 'puzzle-4x4-play')
BASELINE_COLUMNS = {'iql': 0, 'rebrac': 1, 'ifql': 2}


def _baseline_settings(agent, cell):
    """The config keys a table cell sets for `agent` (nothing for None)."""
    if cell is None:
        return {}
    if agent == 'iql':
        return {'alpha': float(cell)}
    if agent == 'rebrac':
        return {'alpha_actor': float(cell[0]), 'alpha_critic': float(cell[1])}
    return {'num_samples': int(cell)}


def _baseline_expected(agent, preset, env):
    if preset == 'none':
        return {}
    expected = {'discount': 0.995} if env in LONG_HORIZON else {}
    expected.update(_baseline_settings(agent, FQL_PAPER_TABLE_6[env][BASELINE_COLUMNS[agent]]))
    if agent == 'iql' and env in MANIPULATION:
        expected.update(actor_hidden_dims=(256,) * 4, value_hidden_dims=(256,) * 4)
    return expected


def _drol_expected(preset, env):
    if preset == 'none':
        return {}
    state_env = env.removeprefix('visual-')
    if state_env in DROL_OGBENCH:
        bc_coef, flags, tuned_k = DROL_OGBENCH[state_env]
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
EXPECTED.update(
    {
        agent: {preset: {env: _baseline_expected(agent, preset, env) for env in ALL_ENVS} for preset in PRESETS}
        for agent in BASELINE_COLUMNS
    }
)
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
    assert len(VISUAL_FAMILIES) == 5 and len(set(ALL_ENVS)) == 33
    for preset in PRESETS:
        assert set(EXPECTED[agent][preset]) == set(ALL_ENVS)
    assert set(DROL_OGBENCH) == set(OGBENCH_FAMILIES)
    assert set(DROL_D4RL_PAPER_BC) == set(DROL_D4RL_STAR) == set(D4RL_ANTMAZE + D4RL_ADROIT)
    assert set(FQL_TABLE) == set(ALL_ENVS) == set(FQL_PAPER_TABLE_6)
    assert set(FQL_PAPER_TABLE_7) < set(ALL_ENVS) and len(FQL_PAPER_TABLE_7) == 15
    # Every known environment gets a non-empty preset except under 'none', and except IQL and ReBRAC on
    # D4RL, where the FQL paper's table gives nothing.
    assert all(
        EXPECTED[agent][preset][env] or (agent in ('iql', 'rebrac') and env in D4RL_ANTMAZE + D4RL_ADROIT)
        for preset in ('paper', 'drol_star')
        for env in ALL_ENVS
    )


BASELINE_CASES = [(agent, env) for agent in BASELINE_COLUMNS for env in ALL_ENVS]


@pytest.mark.parametrize(('agent', 'env'), BASELINE_CASES, ids=[f'{a}-{e}' for a, e in BASELINE_CASES])
def test_baseline_online_presets_are_table_7(agent, env):
    """An offline-to-online run gets Table 7's values on top of the offline preset; elsewhere nothing more."""
    row = FQL_PAPER_TABLE_7.get(env, (None, None, None))
    expected = _baseline_settings(agent, row[BASELINE_COLUMNS[agent]])
    assert AGENTS[agent].online_preset_overrides('paper', env) == expected
    assert AGENTS[agent].online_preset_overrides('none', env) == {}


@pytest.mark.parametrize(('agent', 'env'), BASELINE_CASES, ids=[f'{a}-{e}' for a, e in BASELINE_CASES])
@pytest.mark.parametrize('online', [False, True])
def test_baseline_preset_note_names_what_the_paper_does_not_give(agent, env, online):
    """The printed note names exactly the table's keys left at their defaults, and nothing when the
    table gives them (or under 'none', or when the user set them)."""
    cell = FQL_PAPER_TABLE_6[env][BASELINE_COLUMNS[agent]]
    if online and env in FQL_PAPER_TABLE_7:
        cell = FQL_PAPER_TABLE_7[env][BASELINE_COLUMNS[agent]]
    keys = {'iql': ['alpha'], 'rebrac': ['alpha_actor', 'alpha_critic'], 'ifql': ['num_samples']}[agent]
    note = AGENTS[agent].preset_note('paper', env, online=online)
    if cell is not None:
        assert note == ''
    else:
        defaults = AGENTS[agent].default_config()
        assert note.startswith("The FQL paper's Tables 6 and 7 give ") and f' for {env} ' in note
        assert all(f'{key}={defaults[key]}' in note for key in keys), note
    assert AGENTS[agent].preset_note('none', env, online=online) == ''
    assert AGENTS[agent].preset_note('paper', env, online=online, explicit_keys=set(keys)) == ''


@pytest.mark.parametrize('agent', ['drol', 'fql', 'sac'])
def test_agents_without_a_paper_table_print_no_note(agent):
    state_envs = [env for env in ALL_ENVS if env not in VISUAL_FAMILIES]
    assert all(AGENTS[agent].preset_note('paper', env) == '' for env in state_envs)
    if agent != 'drol':
        assert all(AGENTS[agent].preset_note('paper', env) == '' for env in VISUAL_FAMILIES)


@pytest.mark.parametrize('env', VISUAL_FAMILIES)
def test_drol_on_pixels_says_its_bc_coef_is_the_state_familys(env):
    state_env = env.removeprefix('visual-')
    note = AGENTS['drol'].preset_note('paper', env)
    assert 'publishes no bc_coef' in note and f"state family {state_env}'s bc_coef={DROL_OGBENCH[state_env][0]}" in note
    assert AGENTS['drol'].preset_note('drol_star', env) == note
    assert AGENTS['drol'].preset_note('none', env) == ''
    assert AGENTS['drol'].preset_note('paper', env, explicit_keys={'bc_coef'}) == ''


BUDGET_CASES = [
    ('visual-cube-single-play', 'paper', [], 500_000),
    ('visual-scene-play-task2', 'drol_star', [], 500_000),
    ('antmaze-large-play-v2', 'paper', [], 500_000),
    ('pen-human-v1', 'paper', [], 500_000),
    ('cube-single-play', 'paper', [], 1_000_000),  # OGBench state tasks: the flag's default.
    ('visual-cube-single-play', 'none', [], 1_000_000),
    ('visual-cube-single-play', 'paper', ['--offline_steps=1000000'], 1_000_000),  # Given: kept.
    ('antmaze-large-play-v2', 'paper', ['--offline_steps=300'], 300),
]
# main.py's flags live in absl's global registry, where other scripts' flags of the same name would clash:
# the cases run in a process of their own.
BUDGET_SCRIPT = """
import json, sys
from absl import flags
import main
for env, preset, argv, steps in json.loads(sys.argv[1]):
    values = flags.FlagValues()
    flags.DEFINE_string('env_name', env, '', flag_values=values)
    flags.DEFINE_string('preset', preset, '', flag_values=values)
    flags.DEFINE_integer('offline_steps', 1_000_000, '', flag_values=values)
    values(['main.py', *argv])
    main.apply_step_preset(values)
    print(json.dumps([env, values.offline_steps]))
"""


def test_paper_budget_on_d4rl_and_pixels():
    """The FQL paper's 500K steps on D4RL and pixel-based tasks unless --offline_steps is given, printed."""
    result = subprocess.run(
        [sys.executable, '-c', BUDGET_SCRIPT, json.dumps(BUDGET_CASES)], capture_output=True, text=True, check=True
    )
    lines = result.stdout.splitlines()
    results = [json.loads(line) for line in lines if line.startswith('[')]
    assert results == [[env, steps] for env, _, _, steps in BUDGET_CASES]
    printed = [line for line in lines if '--offline_steps=500000' in line]
    assert len(printed) == sum(not argv and steps == 500_000 for _, _, argv, steps in BUDGET_CASES) == 4
