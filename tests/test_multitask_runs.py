"""`--tasks`: several tasks of one OGBench family and several seeds in one process.

Each (task, seed) must write the run directory its standalone run writes, with the same
numbers, continue the same way, and read like any other run in the report.
"""

import json

import numpy as np
import pytest

from envs.ogbench_names import task_names
from tests.helpers import TINY, kill_main_when, read_csv, run_main, run_python
from utils.errors import UserError

pytestmark = pytest.mark.slow

RUN = ('--agent=drol', '--offline_steps=60', '--log_interval=30', '--eval_interval=60', '--eval_episodes=1', *TINY)


def command(dataset, save_dir, *extra):
    return (*RUN, f'--dataset_path={dataset}', f'--save_dir={save_dir}', '--run_group=g', *extra)


def assert_same_numbers(rows, expected, what):
    """Equal rows, apart from wall times; floats to float32 rounding (the vmap width differs: 4 agents here,
    2 in the standalone run, and XLA on CPU may sum a batched product in another order)."""
    assert len(rows) == len(expected), what
    for row, want in zip(rows, expected, strict=True):
        assert row.keys() == want.keys(), what
        for key in row:
            if not key.startswith('time/'):
                np.testing.assert_allclose(float(row[key]), float(want[key]), rtol=2e-5, atol=1e-6, err_msg=what)


TASKS = ['cube-single-play-task1', 'cube-single-play-task2']


@pytest.fixture(scope='module')
def goal_dataset(cube_single_dataset, tmp_path_factory):
    """The dataset in which tasks 1 and 2 have rewards of their own, made once for the runs of both tasks."""
    return dataset_reaching_goals(cube_single_dataset, tmp_path_factory.mktemp('goals'), TASKS)


def test_two_tasks_two_seeds_equal_their_standalone_runs(goal_dataset, tmp_path):
    together, alone = tmp_path / 'together', tmp_path / 'alone'
    out = run_main(*command(goal_dataset, together, '--env_name=cube-single-play', '--tasks=1-2', '--num_seeds=2'))
    assert 'tasks 1-2, seeds 0-1' in out.stdout
    for task in (1, 2):
        run_main(*command(goal_dataset, alone, f'--env_name=cube-single-play-task{task}', '--num_seeds=2'))
    for task in (1, 2):
        for seed in (0, 1):
            name = f'drol_cube-single-play-task{task}_sd{seed}'
            mine, theirs = together / 'g' / name, alone / 'g' / name
            for log in ('train.csv', 'eval.csv'):
                assert_same_numbers(read_csv(mine / log), read_csv(theirs / log), f'{name}/{log}')
            flags, standalone_flags = (json.loads((d / 'flags.json').read_text()) for d in (mine, theirs))
            assert flags.pop('save_dir') != standalone_flags.pop('save_dir')
            assert flags == standalone_flags
            assert (mine / 'dataset.json').read_text() == (theirs / 'dataset.json').read_text()
            assert sorted(p.name for p in mine.glob('checkpoint_*')) == [
                'checkpoint_0.msgpack',
                'checkpoint_60.msgpack',
            ]
    # The tasks' rewards differ, so the agents of one seed do too.
    task1, task2 = (read_csv(together / 'g' / f'drol_{name}_sd0' / 'train.csv') for name in TASKS)
    assert task1[-1]['training/critic/critic_loss'] != task2[-1]['training/critic/critic_loss']

    # Continuing: more steps for all of them in one command, or for one of them on its own.
    run_main(
        *command(goal_dataset, together, '--env_name=cube-single-play', '--tasks=1-2', '--num_seeds=2'),
        '--offline_steps=90',
    )
    run_main(*command(goal_dataset, alone, '--env_name=cube-single-play-task1', '--num_seeds=2'), '--offline_steps=90')
    name = 'drol_cube-single-play-task1_sd1'
    assert_same_numbers(read_csv(together / 'g' / name / 'eval.csv'), read_csv(alone / 'g' / name / 'eval.csv'), name)
    assert [int(float(r['step'])) for r in read_csv(together / 'g' / name / 'eval.csv')] == [1, 60, 90]
    single = run_main(  # Its evaluation is not looked at.
        *command(goal_dataset, together, '--env_name=cube-single-play-task2', '--seed=1'),
        '--offline_steps=120',
        '--eval_interval=0',
    )
    assert 'Resuming from step 90' in single.stdout

    # The report reads the four runs like any others.
    report = run_python('-m', 'scripts.report', str(together / 'g'), f'--out={tmp_path / "report"}')
    assert report.returncode == 0, report.stderr
    table = (tmp_path / 'report' / 'README.md').read_text()
    assert 'wrote' in report.stdout and 'cube-single-play-task1' in table and 'cube-single-play-task2' in table


@pytest.mark.parametrize(
    'env_name, extra, message',
    [
        ('cube-single-play-task2', (), 'give the family as --env_name'),
        ('antmaze-large-diverse-v2', (), 'give the family as --env_name'),
        ('cube-single-play', ('--online_steps=10',), '--online_steps trains one task per process'),
        ('cube-single-play', ('--restore_path=/tmp',), '--restore_path initialises one task'),
    ],
)
def test_tasks_with_what_it_cannot_combine_with_is_one_line(env_name, extra, message, tmp_path):
    result = run_main('--agent=drol', f'--env_name={env_name}', '--tasks=1-2', f'--save_dir={tmp_path}', *extra,
                      check=False)  # fmt: skip
    assert result.returncode == 2 and message in result.stderr and 'Traceback' not in result.stderr


def test_task_names_are_todays_short_forms():
    assert task_names('cube-single-play', '1-3,5') == [f'cube-single-play-task{t}' for t in (1, 2, 3, 5)]
    with pytest.raises(UserError, match='tasks 1 to 5'):
        task_names('cube-single-play', '4-6')
    with pytest.raises(UserError, match='more than once'):
        task_names('cube-single-play', '1,1')


def dataset_reaching_goals(source, folder, task_names):
    """A copy of the tiny dataset in which the cube sits at task k's goal in rows 10k..10k+9 (train and
    validation), so each task's rewards differ from the others' (random rollouts never succeed)."""
    from envs.env_utils import make_env

    goals = []
    for name in task_names:
        env = make_env(name)
        env.reset(seed=0)
        goals.append(env.unwrapped._data.mocap_pos[0].copy())
    path = str(folder / 'cube-single-play-v0.npz')
    for given, written in ((source, path), (source.replace('.npz', '-val.npz'), path.replace('.npz', '-val.npz'))):
        arrays = dict(np.load(given))
        for k, goal in enumerate(goals):
            arrays['qpos'][10 * k : 10 * k + 10, 14:17] = goal
        np.savez_compressed(written, **arrays)
    return path


def test_task_datasets_are_each_tasks_own_labels_over_one_copy(cube_single_dataset, tmp_path):
    from envs.env_utils import make_env_and_datasets, make_task_envs_and_datasets

    names = ['cube-single-play-task1', 'cube-single-play-task3']
    path = dataset_reaching_goals(cube_single_dataset, tmp_path, names)
    envs, train, val, provenance = make_task_envs_and_datasets(names, dataset_path=path)
    assert len(envs) == 2 and provenance['source'] == 'given path'
    assert train['rewards'].shape == (2, len(train['observations']))
    assert not np.array_equal(train['rewards'][0], train['rewards'][1])
    assert not np.array_equal(val['masks'][0], val['masks'][1])
    for row, name in enumerate(names):
        _, alone_train, alone_val, _ = make_env_and_datasets(name, dataset_path=path)
        for together, alone in ((train, alone_train), (val, alone_val)):
            assert together.keys() == alone.keys()
            for key, value in together.items():
                np.testing.assert_array_equal(value[row] if key in ('rewards', 'masks') else value, alone[key])


def test_each_file_gets_the_labels_ogbench_gives_it(cube_single_dataset, tmp_path):
    """The training and validation files are labelled in one call of ogbench's relabel_dataset (envs/env_utils.py);
    each must still get the rewards and masks ogbench's own loader gives it. The cube reaches the goal in other rows
    of the validation file than of the training file, so labels that went to the wrong file would show."""
    import ogbench

    from envs.env_utils import make_env_and_datasets

    path = dataset_reaching_goals(cube_single_dataset, tmp_path, ['cube-single-play-task2'])
    val_path = path.replace('.npz', '-val.npz')
    arrays = dict(np.load(val_path))
    arrays['qpos'] = np.roll(arrays['qpos'], 25, axis=0)
    np.savez_compressed(val_path, **arrays)
    _, train, val, _ = make_env_and_datasets('cube-single-play-task2', dataset_path=path)
    ogbench_name = 'cube-single-play-singletask-task2-v0'
    _, theirs_train, theirs_val = ogbench.make_env_and_datasets(ogbench_name, dataset_path=path)
    assert not np.array_equal(theirs_train['rewards'], theirs_val['rewards'])
    for ours, theirs in ((train, theirs_train), (val, theirs_val)):
        for key in ('rewards', 'masks'):
            np.testing.assert_array_equal(ours[key], theirs[key])


def test_a_grouped_sweep_runs_one_process_writing_every_run_directory(cube_single_dataset, tmp_path):
    sweep_dir = tmp_path / 'sweep'
    result = run_python(
        '-m', 'scripts.sweep', '--suite=ogbench-all', '--agents=drol', '--seeds=0-1',
        '--envs=cube-single-play-task1,cube-single-play-task2', '--format=groups', '--run',
        f'--sweep_dir={sweep_dir}', '--', '--offline_steps=20', '--log_interval=10', '--eval_interval=20',
        '--eval_episodes=1', f'--dataset_path={cube_single_dataset}', *TINY,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count('[ok]') == 1 and '--tasks=1-2 --seed=0 --num_seeds=2' in result.stdout
    for task in (1, 2):
        for seed in (0, 1):
            rows = read_csv(sweep_dir / 'runs' / f'drol_cube-single-play-task{task}_sd{seed}' / 'eval.csv')
            assert [int(float(row['step'])) for row in rows] == [1, 20]


def test_a_killed_tasks_run_resumes_to_the_same_result(goal_dataset, tmp_path):
    """SIGKILL in the middle of a --tasks run, then the same command: every (task, seed) ends with the rows
    and numbers of an uninterrupted run, none duplicated or missing. The kill comes at the first checkpoint
    after step 0; the 300 steps left (a second or more) leave the test ample time to kill the run before it ends."""
    steps = ('--offline_steps=600', '--log_interval=100', '--save_interval=300', '--eval_interval=0')

    def args(save_dir):
        return (*command(goal_dataset, save_dir, '--env_name=cube-single-play', '--tasks=1-2', '--num_seeds=2'), *steps)

    run_main(*args(tmp_path / 'straight'))
    runs = [f'drol_{name}_sd{seed}' for name in TASKS for seed in (0, 1)]
    killed = [tmp_path / 'killed' / 'g' / run for run in runs]
    kill_main_when(lambda: all((d / 'checkpoint_300.msgpack').exists() for d in killed), *args(tmp_path / 'killed'))
    assert not (killed[0] / 'checkpoint_600.msgpack').exists(), 'the run ended before it was killed'
    assert 'Resuming from step' in run_main(*args(tmp_path / 'killed')).stdout
    for run, killed_dir in zip(runs, killed, strict=True):
        rows = read_csv(killed_dir / 'train.csv')
        straight = read_csv(tmp_path / 'straight' / 'g' / run / 'train.csv')
        assert [int(float(r['step'])) for r in rows] == [1, *range(100, 601, 100)]
        strip = [{k: v for k, v in r.items() if not k.startswith('time/')} for r in (*rows, *straight)]
        assert strip[: len(rows)] == strip[len(rows) :], run
