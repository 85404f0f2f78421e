"""The DROL paper's four extra experiments: the K suites, their report figures, the runtime
benchmark and the routing pictures' nearest-candidate cells."""

import json
import os

import jax
import numpy as np
import pytest

from agents import AGENTS
from benchmarks import runtime
from scripts import k_report, report, routing_pictures
from scripts.sweep import K_ABLATION_TASKS, expand
from tests.helpers import run_python
from utils.errors import UserError


def test_k_ablation_expands_to_every_task_k_and_seed_in_its_own_run_dir():
    runs = expand('k-ablation', ['drol'], [0, 1, 2], 'sweep')
    assert len(K_ABLATION_TASKS) == 20
    assert len(runs) == 20 * 6 * 3 and len({run_dir for run_dir, _ in runs}) == len(runs)
    for task in ('cube-single-play-task1', 'scene-play-task2', 'antmaze-giant-navigate-task3', 'pen-expert-v1'):
        assert task in K_ABLATION_TASKS
    assert 'pen-human-v1' not in K_ABLATION_TASKS
    cube = [(d, c) for d, c in runs if '--env_name=cube-single-play-task1' in c]
    assert len(cube) == 18
    for k in (1, 2, 4, 8, 16, 32):
        mine = [(d, c) for d, c in cube if f'--agent.num_candidates={k}' in c]
        assert len(mine) == 3
        for run_dir, command in mine:
            assert run_dir.startswith(os.path.join('sweep', 'runs', f'K{k}', 'drol_cube-single-play-task1_sd'))
            assert f'--run_group=runs/K{k}' in command and '--agent.bc_coef=10.0' in command
    pen = [c for _, c in runs if '--env_name=pen-expert-v1' in c][0]
    assert '--offline_steps=500000' in pen and '--agent.q_agg=min' in pen


def test_candidate_scaling_has_k_up_to_64_on_three_tasks_and_k_beats_the_preset():
    runs = expand('candidate-scaling', ['drol'], [0], 'sweep', preset='drol_star')
    assert len(runs) == 3 * 7
    for k in (1, 2, 4, 8, 16, 32, 64):
        assert sum(f'--agent.num_candidates={k}' in c for _, c in runs) == 3
    for _, command in runs:  # drol_star's own K (64 on cube-double) must not be a second setting.
        assert sum(arg.startswith('--agent.num_candidates=') for arg in command) == 1
    envs = {arg.split('=', 1)[1] for _, c in runs for arg in c if arg.startswith('--env_name=')}
    assert envs == {'antmaze-giant-navigate-task3', 'cube-double-play-task3', 'scene-play-task2'}


def test_k_suites_refuse_agents_without_k_and_ks_narrows_them():
    with pytest.raises(UserError, match='varies num_candidates'):
        expand('k-ablation', ['drol', 'fql'], [0], 'sweep')
    runs = expand('k-ablation', ['drol'], [0], 'sweep', envs=['cube-single-play-task1'], ks=[1, 16])
    assert [run_dir for run_dir, _ in runs] == [
        os.path.join('sweep', 'runs', f'K{k}', 'drol_cube-single-play-task1_sd0') for k in (1, 16)
    ]
    with pytest.raises(UserError, match='has K = 1, 2, 4, 8, 16, 32'):
        expand('k-ablation', ['drol'], [0], 'sweep', ks=[64])
    with pytest.raises(UserError, match='applies to the K suites'):
        expand('ogbench-default', ['drol'], [0], 'sweep', ks=[1])


def test_sweep_prints_the_k_suite_with_drol_by_default():
    result = run_python('-m', 'scripts.sweep', '--suite=candidate-scaling', '--seeds=0', '--print')
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 21 and all(line.startswith('.venv/bin/python main.py --agent=drol ') for line in lines)


def fake_k_run(root, env, k, seed, successes, pairwise, bc_loss, final_step=400):
    """A finished DROL run of the K suites: flags.json, eval.csv and train.csv with routing columns."""
    run_dir = root / 'runs' / f'K{k}' / f'drol_{env}_sd{seed}'
    os.makedirs(run_dir)
    agent = {'agent_name': 'drol', 'num_candidates': k, 'actor_hidden_dims': [64, 64], 'batch_size': 32}
    flags = {'env_name': env, 'seed': seed, 'offline_steps': final_step, 'agent': agent}
    (run_dir / 'flags.json').write_text(json.dumps(flags))
    steps = [100 * (i + 1) for i in range(len(successes))]
    (run_dir / 'eval.csv').write_text(
        '\n'.join(['step,evaluation/success'] + [f'{s},{v}' for s, v in zip(steps, successes, strict=True)]) + '\n'
    )
    train = ['step,training/actor/candidate_pairwise_dist,training/actor/bc_loss']
    train += [f'{s},{pairwise + 1.0},{bc_loss + 1.0}' for s in (50, 100)]  # Early rows: not among the last three.
    train += [f'{s},{pairwise},{bc_loss}' for s in (200, 300, final_step)]
    (run_dir / 'train.csv').write_text('\n'.join(train) + '\n')
    return run_dir


def labelled(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_k_ablation_figure_plots_success_against_k_with_the_best_k_and_the_paper(tmp_path):
    for k, success in ((1, 0.2), (4, 0.6), (16, 0.9), (32, 0.5)):
        for seed, spread in ((0, -0.1), (1, 0.1)):
            fake_k_run(tmp_path, 'cube-single-play-task1', k, seed, [0.0, success + spread] + [success] * 2, 0.1, 0.01)
    fake_k_run(tmp_path, 'scene-play-task2', 8, 0, [0.3] * 4, 0.1, 0.01)
    runs = report.find_runs(str(tmp_path))
    fig = k_report.k_ablation_figure(runs)
    cube, scene = [ax for ax in fig.axes if ax.get_visible()]
    assert 'cube-single-play-task1' in cube.get_title() and 'scene-play-task2' in scene.get_title()
    lines = labelled(cube)
    ours = lines['this sweep (mean over seeds)']
    assert list(ours.get_xdata()) == [1, 4, 16, 32]
    # FQL protocol: mean of the last three evaluations, in %, averaged over the two seeds.
    np.testing.assert_allclose(ours.get_ydata(), [20.0, 60.0, 90.0, 50.0])
    best = lines['best K = 16']
    assert list(best.get_xdata()) == [16] and list(best.get_ydata()) == [90.0]
    paper = lines['paper (read off its figure)']
    assert list(paper.get_xdata()) == [1, 16, 32] and list(paper.get_ydata()) == [86.0, 98.0, 93.0]
    assert len(cube.collections) == 1  # The band over seeds; scene has one seed per K and none.
    assert len(scene.collections) == 0
    assert cube.get_xscale() == 'log' and 'log2' in cube.get_xlabel() and '%' in cube.get_ylabel()


def test_candidate_scaling_figure_uses_the_last_logged_rows_and_shows_the_paper(tmp_path):
    for k, pairwise, bc_loss in ((1, 0.0, 0.009), (8, 0.1, 0.006), (64, 0.2, 0.003)):
        fake_k_run(tmp_path, 'cube-double-play-task3', k, 0, [0.1] * 4, pairwise, bc_loss)
    partial = fake_k_run(tmp_path, 'cube-double-play-task3', 2, 0, [0.1] * 4, 0.5, 0.5)
    rows = (partial / 'train.csv').read_text().splitlines()
    (partial / 'train.csv').write_text('\n'.join(rows[:-1]) + '\n')  # Stops before the final step.
    runs = report.find_runs(str(tmp_path))
    fig = k_report.candidate_scaling_figure(runs)
    distance_ax, bc_ax = fig.axes
    ours = [line for line in distance_ax.get_lines() if line.get_label().startswith('this sweep')][0]
    assert list(ours.get_xdata()) == [1, 8, 64]
    np.testing.assert_allclose(ours.get_ydata(), [0.0, 0.1, 0.2])
    ours_bc = [line for line in bc_ax.get_lines() if line.get_label().startswith('this sweep')][0]
    np.testing.assert_allclose(ours_bc.get_ydata(), [0.009, 0.006, 0.003])
    paper = labelled(distance_ax)['paper (read off its figure)']
    assert list(paper.get_xdata()) == [1, 64] and list(paper.get_ydata()) == [0.0, 0.21]
    assert list(labelled(bc_ax)['paper (read off its figure)'].get_ydata()) == [0.009, 0.003]
    for ax in fig.axes:
        assert ax.get_title() and 'K' in ax.get_xlabel() and ax.get_ylabel()


def test_k_report_writes_figures_and_a_table_with_the_paper_beside(tmp_path):
    for k in (1, 16):
        fake_k_run(tmp_path, 'cube-single-play-task1', k, 0, [0.5] * 4, 0.1 * k, 0.01)
    out = tmp_path / 'report'
    result = run_python('-m', 'scripts.k_report', str(tmp_path), f'--out={out}')
    assert result.returncode == 0, result.stderr
    text = (out / 'README.md').read_text()
    assert '| cube-single-play-task1 | 16 | 50.0 ± 0.0 (n=1) | 98 |' in text
    assert '| cube-single-play-task1 | 32 | - | 93 |' in text
    for name in ('k_ablation.png', 'candidate_scaling.png'):
        assert (out / name).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and f'({name})' in text
    missing = run_python('-m', 'scripts.k_report', str(tmp_path / 'nowhere'))
    assert missing.returncode == 2 and 'is not a folder' in missing.stderr and 'Traceback' not in missing.stderr


def test_each_point_is_routed_to_its_nearest_candidate():
    rng = np.random.default_rng(0)
    for action_dim, k in ((2, 1), (5, 16), (3, 64)):
        points, candidates = rng.uniform(-1, 1, (300, action_dim)), rng.uniform(-1, 1, (k, action_dim))
        cells = routing_pictures.nearest_candidate(points, candidates)
        for point, cell in zip(points, cells, strict=True):
            distances = [float(np.sum((point - c) ** 2)) for c in candidates]
            assert distances[cell] == min(distances)
    # The slice varies only the two chosen dimensions; the others stay at the dataset action.
    action = np.array([0.1, -0.2, 0.3, 0.4, -0.5])
    u, v, points = routing_pictures.slice_points(action, [3, 1], 5)
    np.testing.assert_array_equal(points[:, [0, 2, 4]], np.broadcast_to(action[[0, 2, 4]], (25, 3)))
    np.testing.assert_array_equal(points[:, 3], u.ravel())
    np.testing.assert_array_equal(points[:, 1], v.ravel())


@pytest.fixture(scope='module')
def drol_run(tmp_path_factory):
    """A DROL run folder with checkpoints at steps 0 and 1 of a tiny agent on a tiny cube-single
    dataset, and that dataset."""
    from tests.helpers import random_batch, tiny_config, write_ogbench_dataset
    from utils.checkpoints import save_checkpoint
    from utils.fused_updates import data_key

    root = tmp_path_factory.mktemp('drol_run')
    path = write_ogbench_dataset(str(root / 'cube-single-play-v0.npz'), episodes=1, steps=20)
    run_dir = root / 'run'
    os.makedirs(run_dir)
    config = tiny_config('drol', num_candidates=4)
    data = dict(np.load(path))
    batch = random_batch(16, data['observations'].shape[1], data['actions'].shape[1])
    agent = AGENTS['drol'].create(0, batch['observations'][:1], batch['actions'][:1], config)
    save_checkpoint(str(run_dir), 0, agent, data_key(0))
    save_checkpoint(str(run_dir), 1, agent.update(batch)[0], data_key(0))
    record = {'env_name': 'cube-single-play', 'seed': 0, 'agent': config.to_dict(), 'dataset_path': path}
    (run_dir / 'flags.json').write_text(json.dumps(record))
    (run_dir / 'dataset.json').write_text(json.dumps({'path': path}))
    return run_dir, data


def test_routing_pictures_from_a_run_folder_mark_the_nearest_candidate_as_winner(drol_run, tmp_path):
    run_dir, data = drol_run
    out = str(tmp_path / 'routing.png')
    path, winners = routing_pictures.make_pictures(str(run_dir), 7, None, '0,2', 0, 20, out)
    with open(path, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert len(winners) == 2

    record = json.loads((run_dir / 'flags.json').read_text())
    observation, action = data['observations'][7], np.clip(data['actions'][7], -1, 1)
    agents = routing_pictures.load_agents(str(run_dir), record, [0, 1], observation, action)
    latents = agents[0].sample_latents(jax.random.PRNGKey(0), (4,))
    views = [routing_pictures.routing_view(a, observation, action, [0, 2], latents, 20) for a in agents]
    for view, winner in zip(views, winners, strict=True):
        distances = np.square(view['candidates'] - action).sum(axis=-1)
        assert winner == view['winner'] == int(np.argmin(distances))
        assert view['cells'].shape == view['q'].shape == (20, 20) and set(np.unique(view['cells'])) <= set(range(4))
    fig = routing_pictures.routing_figure(views, [0, 1], action, [0, 2], 'title')
    panels = fig.axes
    assert [ax.get_title().split(':')[0] for ax in panels] == ['step 0', 'step 1']
    assert 'action dim 0' in panels[0].get_xlabel() and 'action dim 2' in panels[0].get_ylabel()
    labels = [text.get_text() for text in fig.legends[0].get_texts()]
    assert 'dataset action' in labels and 'winner (nearest candidate)' in labels


@pytest.mark.parametrize(
    'steps, dims, state, message',
    [('5', '0,1', 0, 'No checkpoint at step 5'), (None, '0,0', 0, 'two different action dimensions'),
     (None, '0,1', 100000, 'outside the dataset')],
)  # fmt: skip
def test_routing_pictures_user_mistakes_are_named(drol_run, tmp_path, steps, dims, state, message):
    with pytest.raises(UserError, match=message):
        routing_pictures.make_pictures(str(drol_run[0]), state, steps, dims, 0, 20, str(tmp_path / 'x.png'))


def test_routing_pictures_command_gives_one_line_errors(drol_run):
    result = run_python('-m', 'scripts.routing_pictures', str(drol_run[0]), '--steps=5')
    assert result.returncode == 2 and 'No checkpoint at step 5' in result.stderr and 'Traceback' not in result.stderr


def run_runtime(*args):
    return run_python(os.path.join('benchmarks', 'runtime.py'), *args)


def test_runtime_benchmark_at_tiny_sizes_writes_its_table_figure_and_the_paper_numbers(tmp_path):
    tiny = ['--hidden=8', '--depth=1', '--batch_size=4', '--timed_steps=3', '--repeats=2', '--k_values=2,16']
    result = run_runtime(*tiny, f'--results_dir={tmp_path}')
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures['device'].startswith('CPU')
    assert [key for key in figures if key not in ('device', 'out')] == ['FQL', 'DROL K=2', 'DROL K=16']
    for method in ('FQL', 'DROL K=2', 'DROL K=16'):
        for kind in ('train', 'inference'):
            mean, std = figures[method][kind]
            assert mean > 0 and std >= 0
    table = (tmp_path / 'runtime.md').read_text()
    assert table.startswith(f'# Runtime on {figures["device"]}')
    assert '| FQL | ' in table and table.split('| FQL | ')[1].split('\n')[0].endswith('| 5.0 | 0.17 |')
    assert table.split('| DROL K=16 | ')[1].split('\n')[0].endswith('| 4.9 | 0.16 |')
    assert table.split('| DROL K=2 | ')[1].split('\n')[0].endswith('| - | - |')
    assert (tmp_path / 'runtime.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_runtime_summary_is_mean_and_std_over_repeats_and_the_figure_shows_the_paper():
    summary = runtime.summarise({'FQL': ([1.0, 3.0], [0.1, 0.3]), 'DROL K=16': ([2.0, 2.0], [0.2, 0.2])})
    np.testing.assert_allclose(summary['FQL']['train'], (2.0, 1.0))
    np.testing.assert_allclose(summary['FQL']['inference'], (0.2, 0.1))
    setup = dict(hidden=8, depth=1, batch_size=4, observation_dim=3, action_dim=2, timed_steps=3, repeats=2)
    fig = runtime.runtime_figure(summary, 'CPU test', setup)
    train_ax, inference_ax = fig.axes
    heights = [patch.get_height() for patch in train_ax.patches]
    assert heights == [2.0, 2.0, 5.0, 4.9]  # This machine's bars, then the paper's GPU bars.
    assert [patch.get_height() for patch in inference_ax.patches][2:] == [0.17, 0.16]
    assert 'CPU test' in fig._suptitle.get_text() and 'millisecond' in train_ax.get_ylabel()


@pytest.mark.parametrize(
    'flag, named', [('--k_values=0,4', '--k_values'), ('--k_values=a', '--k_values'), ('--repeats=0', '--repeats')]
)
def test_runtime_benchmark_bad_flags_are_one_line(flag, named):
    result = run_runtime(flag)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and named in lines[0], result.stderr


def test_runtime_repeats_time_every_method_in_turn():
    order = []

    def call(name):
        return lambda: order.append(name)

    calls = {'FQL': (call('fql train'), call('fql infer')), 'DROL K=4': (call('drol train'), call('drol infer'))}
    times = runtime.measure(calls, steps=2, repeats=2)
    one_repeat = ['fql train'] * 2 + ['fql infer'] * 2 + ['drol train'] * 2 + ['drol infer'] * 2
    assert order == ['fql train', 'fql infer', 'drol train', 'drol infer'] + one_repeat * 2  # Warm-ups first.
    assert all(len(ms) == 2 and min(ms) >= 0 for pair in times.values() for ms in pair)


def test_k_table_leaves_out_columns_without_values(tmp_path):
    for k in (1, 64):
        run_dir = fake_k_run(tmp_path, 'cube-double-play-task3', k, 0, [0.1] * 4, 0.1, 0.01)
        os.remove(run_dir / 'eval.csv')  # Candidate scaling runs without evaluations.
    lines = k_report.k_table(report.find_runs(str(tmp_path))).splitlines()
    assert lines[0] == '| task | K | pairwise distance | paper pairwise | BC loss | paper BC loss |'
    assert lines[3] == '| cube-double-play-task3 | 64 | 0.100 ± 0.000 (n=1) | 0.21 | 0.0100 ± 0.0000 (n=1) | 0.0030 |'
