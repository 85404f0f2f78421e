"""Sweep expansion and the report's protocol scores, plots and missing-run flags."""

import json
import os

import numpy as np
import pytest

from scripts import report
from scripts.report import write_report
from scripts.sweep import expand, is_finished
from tests.helpers import run_python
from utils.errors import UserError
from utils.ranges import parse_ints


@pytest.mark.parametrize(
    'suite, environments',
    [('ogbench-default', 10), ('ogbench-all', 50), ('d4rl-antmaze', 6), ('d4rl-adroit', 12), ('ogbench-visual', 5)],
)
def test_suites_expand_to_one_command_per_env_agent_seed(suite, environments):
    runs = expand(suite, ['drol', 'fql'], parse_ints('0-7', '--seeds'), 'sweep')
    assert len(runs) == environments * 2 * 8
    assert len({run_dir for run_dir, _ in runs}) == len(runs)


def test_commands_carry_the_paper_settings():
    commands = [' '.join(c) for _, c in expand('ogbench-all', ['drol', 'fql'], [0], 'sweep')]
    cube_double_drol = [c for c in commands if '--env_name=cube-double-play-task2 ' in c and '--agent=drol' in c]
    assert len(cube_double_drol) == 1 and '--agent.bc_coef=3.0' in cube_double_drol[0]
    antmaze_fql = [c for c in commands if 'antmaze-giant-navigate-task1 ' in c and '--agent=fql' in c][0]
    assert '--agent.alpha=10.0' in antmaze_fql and '--agent.discount=0.995' in antmaze_fql
    assert '--agent.q_agg=min' in antmaze_fql
    star = [' '.join(c) for _, c in expand('ogbench-default', ['drol'], [0], 'sweep', preset='drol_star')]
    assert any('puzzle-3x3-play ' in c and '--agent.num_candidates=32' in c for c in star)
    door = [' '.join(c) for _, c in expand('d4rl-adroit', ['drol'], [0], 'sweep') if 'door-human' in ' '.join(c)][0]
    assert '--agent.bc_coef=10.0' in door and '--offline_steps=500000' in door and '--agent.q_agg=min' in door
    visual = [' '.join(c) for _, c in expand('ogbench-visual', ['fql'], [0], 'sweep')]
    assert [c.split('--env_name=')[1].split()[0] for c in visual] == [
        'visual-cube-single-play', 'visual-cube-double-play', 'visual-scene-play', 'visual-puzzle-3x3-play',
        'visual-puzzle-4x4-play',
    ]  # fmt: skip
    assert all('--offline_steps=500000 --agent.encoder=impala_small --frame_stack=3 --p_aug=0.5' in c for c in visual)
    assert '--agent.alpha=100.0' in visual[1] and '--agent.alpha=300.0' in visual[0]


def test_envs_narrow_the_suite():
    runs = expand('ogbench-default', ['drol', 'fql'], [0, 1, 2], 'sweep', envs=['cube-single-play'])
    assert len(runs) == 6 and all('cube-single-play' in run_dir for run_dir, _ in runs)
    with pytest.raises(UserError, match='not in suite'):
        expand('ogbench-default', ['drol'], [0], 'sweep', envs=['cube-single-play-task9'])


@pytest.mark.parametrize(
    'text, message', [('zero-7', 'use a range'), ('5-2', 'the range 5-2 is empty'), ('1,1', 'more than once')]
)
def test_bad_seed_text_is_a_clear_error(text, message):
    with pytest.raises(UserError, match=f'--seeds={text!r}.*{message}'):
        parse_ints(text, '--seeds')


def fake_run(root, agent, env, seed, successes, final_step=400, with_eval=True, routing=True, agent_keys=None, **flags):
    """A run folder as main.py writes it; `agent_keys` replace the tiny network, `flags` add to flags.json
    (a `dataset` flag becomes dataset.json instead)."""
    run_dir = root / 'runs' / f'{agent}_{env}_sd{seed}'
    os.makedirs(run_dir)
    agent_record = {'agent_name': agent, **(agent_keys or {'actor_hidden_dims': [64, 64], 'batch_size': 32})}
    if 'dataset' in flags:
        (run_dir / 'dataset.json').write_text(json.dumps(flags.pop('dataset')))
    record = {'env_name': env, 'seed': seed, 'offline_steps': final_step, 'agent': agent_record, **flags}
    (run_dir / 'flags.json').write_text(json.dumps(record))
    if routing:
        train = ['step,training/actor/candidate_pairwise_dist,training/actor/duplicate_share,training/actor/bc_loss']
        train += [f'{s},{1 + seed},{0.1 * seed},{0.5}' for s in (100, 200, 300)]
    else:
        train = ['step,training/critic/critic_loss'] + [f'{s},1.0' for s in (100, 200, 300)]
    (run_dir / 'train.csv').write_text('\n'.join(train) + '\n')
    if with_eval:
        rows = ['step,evaluation/success'] + [f'{100 * (i + 1)},{v}' for i, v in enumerate(successes)]
        (run_dir / 'eval.csv').write_text('\n'.join(rows) + '\n')
    return run_dir


def test_report_scores_plots_and_flags(tmp_path):
    fake_run(tmp_path, 'drol', 'cube-single-play', 0, [0.0, 0.5, 0.7, 0.9])
    fake_run(tmp_path, 'drol', 'cube-single-play', 1, [0.1, 0.3, 0.5, 0.7])
    fake_run(tmp_path, 'fql', 'cube-single-play', 0, [0.2, 0.2, 0.2, 0.2])
    missing = fake_run(tmp_path, 'fql', 'cube-single-play', 1, [], with_eval=False)
    partial = fake_run(tmp_path, 'fql', 'cube-single-play', 2, [0.3])
    out = tmp_path / 'report'
    text = open(write_report(str(tmp_path), str(out))).read()

    drol_scores = [100 * np.mean([0.5, 0.7, 0.9]), 100 * np.mean([0.3, 0.5, 0.7])]
    expected_drol = f'{np.mean(drol_scores):.1f} ± {np.std(drol_scores):.1f} (n=2)'
    assert f'| cube-single-play | {expected_drol} | 20.0 ± 0.0 (n=1) |' in text
    assert '| cube-single-play | drol | actor_hidden_dims=(64, 64), batch_size=32, offline_steps=400 |' in text
    assert f'`{missing}`: missing eval.csv' in text
    assert f'`{partial}`: partial: last evaluation at step 100 of 400' in text
    for name in ('curve_cube-single-play.png', 'routing_cube-single-play.png'):
        with open(out / name, 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n'
        assert name in text
    assert is_finished(str(tmp_path / 'runs' / 'drol_cube-single-play_sd0'))
    assert not is_finished(str(partial)) and not is_finished(str(missing))


def table_row(text, first_cell):
    """The cells of the Markdown table row whose first cell is `first_cell`."""
    scores = text.split('## Settings')[0]
    rows = [line for line in scores.splitlines() if line.startswith(f'| {first_cell} |')]
    assert len(rows) == 1, (first_cell, rows)
    return [cell.strip() for cell in rows[0].strip('|').split('|')]


def test_every_agent_in_the_sweep_gets_a_column_in_registry_order(tmp_path):
    for agent, value in (('iql', 0.4), ('fql', 0.2), ('drol', 0.6), ('bc', 0.1)):
        fake_run(tmp_path, agent, 'cube-single-play', 0, [value] * 4)
    text = open(write_report(str(tmp_path), str(tmp_path / 'report'))).read()

    # Registry agents first, in registry order (drol, fql, iql), then the ones it does not know (bc).
    assert table_row(text, 'task') == [
        'task',
        'drol',
        'fql',
        'iql',
        'bc',
        'published drol',
        'published fql',
        'published iql',
        'published bc',
    ]
    cells = table_row(text, 'cube-single-play')
    assert cells[1:5] == ['60.0 ± 0.0 (n=1)', '20.0 ± 0.0 (n=1)', '40.0 ± 0.0 (n=1)', '10.0 ± 0.0 (n=1)']
    assert text.startswith('# drol vs fql vs iql vs bc')


def test_three_agents_give_three_score_columns(tmp_path):
    for agent in ('drol', 'fql', 'iql'):
        fake_run(tmp_path, agent, 'cube-single-play', 0, [0.5] * 4)
    text = open(write_report(str(tmp_path), str(tmp_path / 'report'))).read()
    cells = table_row(text, 'cube-single-play')
    assert [cell for cell in cells if cell.endswith('(n=1)')] == ['50.0 ± 0.0 (n=1)'] * 3
    assert table_row(text, 'task')[1:4] == ['drol', 'fql', 'iql']


def test_published_numbers_sit_in_the_family_rows(tmp_path):
    for agent in ('drol', 'fql'):
        fake_run(tmp_path, agent, 'cube-single-play', 0, [0.5] * 4)
        fake_run(tmp_path, agent, 'cube-single-play-task2', 0, [0.7] * 4)
    text = open(write_report(str(tmp_path), str(tmp_path / 'report'))).read()

    assert table_row(text, 'task')[-2:] == ['published drol', 'published fql']
    family = table_row(text, '**cube-single-play** (task mean)')
    assert family == ['**cube-single-play** (task mean)', '60.0 (2 of 5 tasks)', '60.0 (2 of 5 tasks)', '97±2', '96±1']
    # The paper's number is the family mean: shown on the default task's row, not on task2's.
    assert table_row(text, 'cube-single-play')[-2:] == ['97±2', '96±1']
    assert table_row(text, 'cube-single-play-task2')[-2:] == ['-', '-']
    assert "published = the paper's mean over the family's 5 tasks" in text
    assert "DROL paper's main table" in text and "FQL paper's Table 2" in text


def test_published_table_matches_the_spec():
    assert report.PUBLISHED['cube-double-play'] == {
        'bc': '2±1',
        'iql': '7±1',
        'rebrac': '12±1',
        'ifql': '14±3',
        'fql': '29±2',
        'drol': '20±3',
        'drol_star': '26±7',
    }
    assert report.PUBLISHED['D4RL antmaze (6)']['bc'] == '17'
    assert len(report.PUBLISHED) == 12


# The FQL paper's Table 2 columns of its baselines, as the DROL paper's main table repeats them
# (/work/shared/DROL_SPEC.md, "Published numbers"), transcribed here apart from scripts/report.py.
BASELINE_COLUMNS = {
    'antmaze-large-navigate': ('53±3', '81±5', '28±5'),
    'antmaze-giant-navigate': ('4±1', '26±8', '3±2'),
    'humanoidmaze-medium-navigate': ('33±2', '22±8', '60±14'),
    'humanoidmaze-large-navigate': ('2±1', '2±1', '11±2'),
    'antsoccer-arena-navigate': ('8±2', '0±0', '33±6'),
    'cube-single-play': ('83±3', '91±2', '79±2'),
    'cube-double-play': ('7±1', '12±1', '14±3'),
    'scene-play': ('28±1', '41±3', '30±3'),
    'puzzle-3x3-play': ('9±1', '21±1', '19±1'),
    'puzzle-4x4-play': ('7±1', '14±1', '25±5'),
    'D4RL antmaze (6)': ('57', '78', '65±7'),
    'D4RL adroit (12)': ('53', '59', '52±1'),
}


@pytest.mark.parametrize('group', sorted(BASELINE_COLUMNS))
def test_iql_rebrac_ifql_published_columns(group):
    row = report.PUBLISHED[group]
    assert (row['iql'], row['rebrac'], row['ifql']) == BASELINE_COLUMNS[group]


def test_every_baseline_sits_beside_its_published_number(tmp_path):
    for agent in ('iql', 'rebrac', 'ifql', 'sac'):
        fake_run(tmp_path, agent, 'scene-play', 0, [0.3] * 4)
    text = open(write_report(str(tmp_path), str(tmp_path / 'report'))).read()
    # SAC (RLPD) has no offline number in either paper, so it gets no published column.
    assert table_row(text, 'task')[-3:] == ['published iql', 'published ifql', 'published rebrac']  # Registry order.
    iql, rebrac, ifql = BASELINE_COLUMNS['scene-play']
    assert table_row(text, 'scene-play')[-3:] == [iql, ifql, rebrac]


def test_a_single_evaluation_is_drawn_with_markers_and_sane_limits(tmp_path):
    fake_run(tmp_path, 'drol', 'cube-single-play', 0, [0.0], final_step=100)
    fake_run(tmp_path, 'fql', 'cube-single-play', 0, [0.0], final_step=100, routing=False)
    out = tmp_path / 'report'
    text = open(write_report(str(tmp_path), str(out))).read()
    with open(out / 'curve_cube-single-play.png', 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert 'curve_cube-single-play.png' in text

    runs = report.find_runs(str(tmp_path))
    fig = report.learning_curve_figure(runs, 'cube-single-play', np.random.default_rng(0))
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines() if not line.get_label().startswith('_')]
    assert len(lines) == 2 and all(line.get_marker() not in (None, '', 'None') for line in lines)
    assert all(len(line.get_xdata()) == 1 for line in lines)
    low, high = ax.get_ylim()
    assert low <= 0 and high >= 100  # Success in %, never the +-0.04 band around an all-zero curve.
    assert ax.get_title() and ax.get_xlabel() == 'gradient steps' and '%' in ax.get_ylabel()
    assert ax.get_legend() is not None


def test_routing_figure_follows_the_logged_columns_not_the_agent_name(tmp_path):
    fake_run(tmp_path, 'drol', 'cube-single-play', 0, [0.5] * 4, routing=False)
    fake_run(tmp_path, 'fql', 'cube-single-play', 0, [0.5] * 4, routing=False)
    fake_run(tmp_path, 'newagent', 'cube-single-play', 0, [0.5] * 4)  # Duplicate share all zero (seed 0).
    runs = report.find_runs(str(tmp_path))
    fig = report.routing_figure(runs, 'cube-single-play', np.random.default_rng(0))
    for ax in fig.axes:
        assert [line.get_label() for line in ax.get_lines()] == ['newagent (n=1)']
        assert ax.get_xlabel() == 'gradient steps' and ax.get_ylabel() and ax.get_title()
        low, high = ax.get_ylim()
        assert high - low > 0.5  # An all-zero metric gets real limits, not +-0.04.
    assert fig._suptitle is not None
    assert [[t.get_text() for t in legend.get_texts()] for legend in fig.legends] == [['newagent (n=1)']]

    for folder in ('newagent_cube-single-play_sd0',):
        os.remove(tmp_path / 'runs' / folder / 'train.csv')
    assert report.routing_figure(report.find_runs(str(tmp_path)), 'cube-single-play', np.random.default_rng(0)) is None


def test_broken_runs_are_listed_not_a_crash(tmp_path):
    fake_run(tmp_path, 'drol', 'cube-single-play', 0, [0.5] * 4)
    garbage = fake_run(tmp_path, 'fql', 'cube-single-play', 0, [0.5] * 4)
    (garbage / 'eval.csv').write_bytes(b'\x00\xff\xfe garbage \x89\n')
    no_flags = fake_run(tmp_path, 'fql', 'cube-single-play', 1, [0.5] * 4)
    os.remove(no_flags / 'flags.json')
    bad_flags = fake_run(tmp_path, 'fql', 'cube-single-play', 2, [0.5] * 4)
    (bad_flags / 'flags.json').write_text('{"env_name": "cube-single-pl')
    no_success = fake_run(tmp_path, 'fql', 'cube-single-play', 3, [0.5] * 4)
    (no_success / 'eval.csv').write_text('step,evaluation/episode_length\n400,1000\n')
    truncated = fake_run(tmp_path, 'fql', 'cube-single-play', 4, [0.5] * 4)
    (truncated / 'eval.csv').write_text('step,evaluation/success\n100,0.5\n200,0.5\n3')
    text = open(write_report(str(tmp_path), str(tmp_path / 'report'))).read()

    left_out = text.split('Runs left out of the scores:')[1].split('##')[0]
    listed = [line for line in left_out.splitlines() if line.startswith('- ')]
    assert len(listed) == 5
    assert f'- `{garbage}`: unreadable eval.csv' in left_out
    assert f'- `{no_flags}`: missing flags.json' in left_out
    assert f'- `{bad_flags}`: unreadable flags.json' in left_out
    assert f'- `{no_success}`: eval.csv has no evaluation/success values' in left_out
    assert f'- `{truncated}`: unreadable eval.csv (line 4' in left_out
    assert table_row(text, 'cube-single-play')[1:3] == ['50.0 ± 0.0 (n=1)', '-']


def test_entry_point_help_and_user_errors(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    helped = run_python('-m', 'scripts.report', '--help', cwd=root)
    assert helped.returncode == 0 and '--out' in helped.stdout + helped.stderr
    bad_flag = run_python('-m', 'scripts.report', str(tmp_path), '--out', cwd=root)
    assert bad_flag.returncode == 2 and 'Traceback' not in bad_flag.stderr
    missing = run_python('-m', 'scripts.report', str(tmp_path / 'nowhere'), cwd=root)
    assert missing.returncode == 2 and 'is not a folder' in missing.stderr and 'Traceback' not in missing.stderr


PAPER_SIZE = {'actor_hidden_dims': [512] * 4, 'value_hidden_dims': [512] * 4, 'batch_size': 256}
OFFICIAL = {'source': 'local file', 'path': 'cube-single-play-v0.npz'}


def test_report_says_where_budget_and_data_differ_from_the_paper(tmp_path):
    """The quick run's comparison with the paper's 97%: its budget, networks and generated data are named."""
    generated = {
        'source': 'generated (not the official dataset)',
        'path': 'generated/cube-single-play-v0.npz',
        'generator': {'episodes': 100, 'val_episodes': 10},
    }
    small = {'actor_hidden_dims': [256] * 3, 'value_hidden_dims': [256] * 3, 'batch_size': 256}
    for seed in (0, 1):
        fake_run(tmp_path, 'drol', 'cube-single-play', seed, [0.4] * 4, 20_000, agent_keys=small, dataset=generated)
    fake_run(tmp_path, 'fql', 'cube-single-play', 0, [0.9] * 4, 1_000_000, agent_keys=PAPER_SIZE, dataset=OFFICIAL)
    text = open(write_report(str(tmp_path), str(tmp_path / 'report'))).read()

    assert table_row(text, 'cube-single-play')[-2:] == ['97±2', '96±1']
    assert "**Not the paper's setting**" in text
    assert (
        '- cube-single-play, drol (2 runs): 20,000 updates (paper: 1,000,000); actor MLP [256, 256, 256] '
        '(paper: [512, 512, 512, 512]); value MLP [256, 256, 256] (paper: [512, 512, 512, 512]); a locally '
        'generated set of 100 episodes, not the official dataset (1,000 episodes).'
    ) in text
    assert '- cube-single-play, fql' not in text  # FQL ran in the paper's setting.


@pytest.mark.parametrize(
    'agent, env, steps, agent_keys, flags, expected',
    [
        ('fql', 'cube-single-play', 1_000_000, PAPER_SIZE, {'dataset': OFFICIAL}, None),
        ('iql', 'cube-double-play', 1_000_000, {**PAPER_SIZE, 'actor_hidden_dims': [256] * 4}, {'dataset': OFFICIAL},
         'value MLP [512, 512, 512, 512] (paper: [256, 256, 256, 256])'),
        ('fql', 'pen-human-v1', 500_000, PAPER_SIZE, {'dataset': {'source': 'd4rl', 'path': None}}, None),
        ('fql', 'pen-human-v1', 1_000_000, PAPER_SIZE, {'dataset': {'source': 'd4rl'}},
         '1,000,000 updates (paper: 500,000)'),
        ('fql', 'cube-single-play', 1_000_000, PAPER_SIZE, {}, 'data not recorded (no readable dataset.json)'),
        ('fql', 'cube-single-play', 1_000_000, PAPER_SIZE, {'dataset': {'source': 'given path', 'path': 'x.npz'}},
         'data from a given file (x.npz), not known to be the official dataset'),
        ('fql', 'cube-single-play', 1_000_000, {**PAPER_SIZE, 'batch_size': 64}, {'dataset': OFFICIAL},
         'batch 64 (paper: 256)'),
        ('fql', 'cube-single-play', 1_000_000, PAPER_SIZE, {'dataset': OFFICIAL, 'online_steps': 5000},
         'then 5,000 online steps (the published numbers are offline)'),
    ],
)  # fmt: skip
def test_each_difference_from_the_paper_setting_is_named(tmp_path, agent, env, steps, agent_keys, flags, expected):
    successes = [100.0] * 4 if env.startswith('pen') else [0.5] * 4
    run_dir = fake_run(tmp_path, agent, env, 0, [], steps, with_eval=False, agent_keys=agent_keys, **flags)
    key = 'evaluation/normalized_return' if env.startswith('pen') else 'evaluation/success'
    rows = [f'step,{key}'] + [f'{steps - 100 * (3 - i)},{v}' for i, v in enumerate(successes)]
    (run_dir / 'eval.csv').write_text('\n'.join(rows) + '\n')
    text = open(write_report(str(tmp_path), str(tmp_path / 'report'))).read()
    if expected is None:
        assert "Every run beside a published number used the paper's budget, data and network sizes." in text
        assert "Not the paper's setting" not in text
    else:
        line = [line for line in text.splitlines() if line.startswith(f'- {env}, {agent} (1 run): ')]
        assert len(line) == 1 and line[0].endswith(f': {expected}.'), text
