"""Sweep process groups (`--format=groups`): which runs share one main.py process, and the Slurm
array job (`--format=slurm`) that runs one group per array task."""

import json
import os
import shlex
import subprocess

import pytest

from envs.ogbench_names import PAPER_FAMILIES
from scripts.sweep import SUITES, Job, expand, expand_groups, job_finished, run_all, write_slurm
from tests.helpers import ROOT, run_python
from utils.errors import UserError

# The flags that say which task and seeds a command runs; everything else must be the same
# in a group command and in the single-run commands of its runs.
WHERE = ('--env_name=', '--tasks=', '--seed=', '--num_seeds=')


def shared_part(command):
    return [arg for arg in command if not arg.startswith(WHERE)]


def flag(command, name):
    """The value of `--name=` in `command`, or None."""
    values = [arg.split('=', 1)[1] for arg in command if arg.startswith(f'--{name}=')]
    assert len(values) <= 1, command
    return values[0] if values else None


def test_ogbench_all_is_one_process_per_family_and_agent_writing_the_same_run_dirs():
    jobs = expand_groups('ogbench-all', ['drol', 'fql'], list(range(8)), 'sweep')
    runs = dict(expand('ogbench-all', ['drol', 'fql'], list(range(8)), 'sweep'))
    assert len(jobs) == 10 * 2
    for job in jobs:
        assert flag(job.command, 'env_name') in PAPER_FAMILIES
        assert (flag(job.command, 'tasks'), flag(job.command, 'seed'), flag(job.command, 'num_seeds')) == (
            '1-5',
            '0',
            '8',
        )
        assert len(job.run_dirs) == 5 * 8
        for run_dir in job.run_dirs:  # The same settings as each run's own command.
            assert shared_part(job.command) == shared_part(runs[run_dir])
    grouped = [run_dir for job in jobs for run_dir in job.run_dirs]
    assert len(grouped) == len(set(grouped)) and set(grouped) == set(runs)


def test_seeds_with_a_gap_split_into_contiguous_blocks():
    jobs = expand_groups('ogbench-all', ['drol'], [0, 1, 2, 5], 'sweep', envs=['scene-play-task2', 'scene-play-task4'])
    assert [(flag(j.command, 'seed'), flag(j.command, 'num_seeds')) for j in jobs] == [('0', '3'), ('5', None)]
    assert all(flag(j.command, 'env_name') == 'scene-play' and flag(j.command, 'tasks') == '2,4' for j in jobs)
    assert jobs[1].run_dirs == [os.path.join('sweep', 'runs', f'drol_scene-play-task{task}_sd5') for task in (2, 4)]
    # A group of one run is exactly that run's own command.
    alone = expand_groups('ogbench-all', ['drol'], [5], 'sweep', envs=['scene-play-task2'])
    assert [(job.command, job.run_dirs) for job in alone] == [
        (command, [run_dir])
        for run_dir, command in expand('ogbench-all', ['drol'], [5], 'sweep', envs=['scene-play-task2'])
    ]


@pytest.mark.parametrize('suite', ['ogbench-default', 'd4rl-antmaze', 'd4rl-adroit'])
def test_d4rl_and_default_task_suites_group_seeds_only(suite):
    jobs = expand_groups(suite, ['drol', 'fql'], list(range(8)), 'sweep')
    assert len(jobs) == len(SUITES[suite]) * 2
    assert sorted(flag(j.command, 'env_name') for j in jobs) == sorted(SUITES[suite] * 2)
    assert all(flag(j.command, 'tasks') is None and flag(j.command, 'num_seeds') == '8' for j in jobs)
    runs = dict(expand(suite, ['drol', 'fql'], list(range(8)), 'sweep'))
    assert sorted(run_dir for job in jobs for run_dir in job.run_dirs) == sorted(runs)


def test_k_suites_keep_each_k_in_its_own_process():
    jobs = expand_groups('k-ablation', ['drol'], list(range(8)), 'sweep')
    assert len(jobs) == 20 * 6  # One task per family in the K ablation, so nothing but seeds to merge.
    for job in jobs:
        k = flag(job.command, 'agent.num_candidates')
        assert flag(job.command, 'run_group') == f'runs/K{k}'
        assert all(run_dir.startswith(os.path.join('sweep', 'runs', f'K{k}', '')) for run_dir in job.run_dirs)
    assert sorted(flag(j.command, 'agent.num_candidates') for j in jobs) == sorted(
        ['1', '2', '4', '8', '16', '32'] * 20
    )


def finish(run_dir, final_step=100):
    """Logs a run's final evaluation, as main.py does when it ends."""
    os.makedirs(run_dir)
    with open(os.path.join(run_dir, 'flags.json'), 'w') as f:
        json.dump({'offline_steps': final_step}, f)
    with open(os.path.join(run_dir, 'eval.csv'), 'w') as f:
        f.write(f'step,evaluation/success\n{final_step},0.5\n')


def test_a_group_is_finished_when_all_its_runs_are_and_only_unfinished_groups_run(tmp_path):
    [job] = expand_groups('ogbench-default', ['drol'], [0, 1], str(tmp_path), envs=['cube-single-play'])
    finish(job.run_dirs[0])
    assert not job_finished(job)
    finish(job.run_dirs[1])
    assert job_finished(job)

    prints = ['.venv/bin/python', '-c', 'print("ran")']
    todo = Job(prints, [str(tmp_path / 'not_yet')], str(tmp_path / 'logs' / 'todo.log'))
    run_all([Job(prints, job.run_dirs, str(tmp_path / 'logs' / 'done.log')), todo], 1, 'groups')
    assert open(todo.log).read() == 'ran\n' and not os.path.exists(tmp_path / 'logs' / 'done.log')
    with pytest.raises(UserError, match='1 of 1 groups failed'):
        run_all([Job(['.venv/bin/python', '-c', 'exit(3)'], todo.run_dirs, todo.log)], 1, 'groups')


def test_slurm_array_runs_one_group_per_task_from_the_repository_root(tmp_path):
    jobs = expand_groups('ogbench-all', ['drol', 'fql'], list(range(8)), str(tmp_path))
    jobs_file, script = write_slurm(jobs, str(tmp_path), 'ogbench-all')
    text = open(script).read()
    assert '#SBATCH --array=0-19\n' in text and '#SBATCH --gres=gpu:1\n' in text
    assert f'#SBATCH --output={tmp_path / "slurm" / "%A_%a.out"}\n' in text and os.path.isdir(tmp_path / 'slurm')
    assert '--time' not in text and '--partition' not in text
    assert open(jobs_file).read().splitlines() == [shlex.join(job.command) for job in jobs]
    assert subprocess.run(['bash', '-n', script]).returncode == 0

    _, script = write_slurm(jobs[:3], str(tmp_path), 'ogbench-all', time='2-00:00:00', partition='gpu')
    text = open(script).read()
    assert (
        '#SBATCH --array=0-2\n' in text
        and '#SBATCH --time=2-00:00:00\n' in text
        and '#SBATCH --partition=gpu\n' in text
    )
    # Array task 1 runs line 2, from the repository root whatever the folder it is started in.
    picked = tmp_path / 'picked'
    with open(jobs_file, 'w') as f:
        f.write(''.join(f'echo {i} "$PWD" > {shlex.quote(str(picked))}\n' for i in range(3)))
    task = {**os.environ, 'SLURM_ARRAY_TASK_ID': '1'}
    ran = subprocess.run(['bash', script], cwd=tmp_path, env=task, capture_output=True)
    assert ran.returncode == 0, ran.stderr
    assert picked.read_text() == f'1 {ROOT}\n'


def sweep(*args):
    return run_python('-m', 'scripts.sweep', *args, timeout=120)


def test_format_slurm_writes_the_unfinished_groups_and_says_how_to_submit_them(tmp_path):
    args = ('--suite=d4rl-antmaze', '--seeds=0-3', '--format=slurm', f'--sweep_dir={tmp_path}')
    result = sweep(*args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f'sbatch {tmp_path / "sweep.sbatch"}'
    assert len(open(tmp_path / 'jobs.txt').read().splitlines()) == 6 * 2

    done = expand_groups('d4rl-antmaze', ['drol', 'fql'], [0, 1, 2, 3], str(tmp_path))[0]
    for run_dir in done.run_dirs:
        finish(run_dir)
    result = sweep(*args)
    assert result.returncode == 0 and '1 of 12 groups already finished' in result.stdout, result.stderr
    lines = open(tmp_path / 'jobs.txt').read().splitlines()
    assert len(lines) == 11 and shlex.join(done.command) not in lines
    assert '#SBATCH --array=0-10\n' in open(tmp_path / 'sweep.sbatch').read()


@pytest.mark.parametrize(
    'args, message',
    [
        (['--format=slurm', '--print'], '--format=slurm writes a Slurm array job for sbatch; drop --print and --run.'),
        (['--format=groups'], 'Give exactly one of --print and --run'),
        (['--print', '--slurm_time=1:00:00'], '--slurm_time applies to --format=slurm only.'),
        (['--format=slurm', '--slurm_time=a day'], "--slurm_time='a day' is not a Slurm value"),
        (['--format=groups', '--print', '--', '--num_seeds=3'], 'drop --num_seeds=3.'),
        (['--print', '--seeds=5-2'], "--seeds='5-2': the range 5-2 is empty; write it as 2-5."),
    ],
)
def test_format_mistakes_are_one_line(args, message, tmp_path):
    result = sweep(f'--sweep_dir={tmp_path}', *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1 and not os.listdir(tmp_path)
