"""`scripts.sweep --format=hosts`: one job list per host (unfinished groups only, balanced by runs),
a runner that picks its list by index or TPU worker number and runs it from the repository root,
and a launcher that starts every worker of a TPU VM slice through gcloud."""

import os
import shlex
import subprocess

import pytest

from scripts.host_jobs import split_by_runs, write_host_lists
from scripts.sweep import Job, expand_groups
from tests.helpers import ROOT, run_python
from tests.test_sweep_groups import finish


def sweep(*args):
    return run_python('-m', 'scripts.sweep', *args, timeout=120)


def host_lines(folder):
    """{index: command lines} of the host lists in `folder`."""
    names = sorted(name for name in os.listdir(folder) if name.startswith('host') and name.endswith('.txt'))
    return {int(name[4:-4]): open(os.path.join(folder, name)).read().splitlines() for name in names}


def test_lists_balance_runs_and_keep_the_sweep_order():
    jobs = [Job([f'job{i}'], ['run'] * size, 'log') for i, size in enumerate([1, 8, 1, 1, 8, 5])]
    lists = split_by_runs(jobs, 3)
    assert [[job.command[0] for job in host] for host in lists] == [
        ['job1'],
        ['job4'],
        ['job0', 'job2', 'job3', 'job5'],
    ]
    assert [sum(len(job.run_dirs) for job in host) for host in lists] == [8, 8, 8]
    assert split_by_runs(jobs[:1], 3) == [[jobs[0]], [], []]


def test_format_hosts_writes_the_unfinished_groups_once_each(tmp_path):
    args = ('--suite=d4rl-antmaze', '--seeds=0-3', '--format=hosts', f'--sweep_dir={tmp_path}')
    groups = expand_groups('d4rl-antmaze', ['drol', 'fql'], [0, 1, 2, 3], str(tmp_path))
    for run_dir in groups[0].run_dirs:
        finish(run_dir)
    result = sweep(*args, '--num_hosts=3')
    assert result.returncode == 0, result.stderr
    assert '1 of 12 groups already finished' in result.stdout
    assert f'bash {tmp_path / "hosts" / "launch_tpu.sh"} TPU_NAME' in result.stdout.splitlines()
    lines = host_lines(tmp_path / 'hosts')
    assert sorted(lines) == [0, 1, 2] and all(len(host) in (3, 4) for host in lines.values())
    assert sorted(sum(lines.values(), [])) == sorted(shlex.join(job.command) for job in groups[1:])

    result = sweep(*args, '--num_hosts=2')  # Fewer hosts: the lists of the earlier split are gone.
    assert result.returncode == 0 and sorted(host_lines(tmp_path / 'hosts')) == [0, 1], result.stderr


@pytest.fixture
def echo_lists(tmp_path):
    """Host lists whose commands append '<host>:<line> <folder they run in>' to a file."""
    runner, launcher = write_host_lists([], str(tmp_path / 'hosts'), 3, ROOT)
    said = tmp_path / 'said'
    for host in range(3):
        commands = [f'echo {host}:{line} "$PWD" >> {shlex.quote(str(said))}' for line in range(2)]
        (tmp_path / 'hosts' / f'host{host}.txt').write_text(''.join(line + '\n' for line in commands))
    return runner, launcher, said


def test_the_runner_picks_its_list_by_index_or_tpu_worker_id_and_runs_from_the_root(echo_lists, tmp_path):
    runner, _, said = echo_lists
    ran = subprocess.run(['bash', runner, '1'], cwd=tmp_path, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert said.read_text() == f'1:0 {ROOT}\n1:1 {ROOT}\n'
    assert ran.stdout.count(' start: ') == 2 and ran.stdout.count(' ok: ') == 2

    said.unlink()
    worker = {**os.environ, 'TPU_WORKER_ID': '2'}
    assert subprocess.run(['bash', runner], cwd=tmp_path, env=worker, capture_output=True).returncode == 0
    assert said.read_text() == f'2:0 {ROOT}\n2:1 {ROOT}\n'

    missing = subprocess.run(['bash', runner, '7'], capture_output=True, text=True)
    assert missing.returncode == 2 and 'no job list' in missing.stderr


def test_the_runner_goes_on_after_a_failed_command_and_fails_at_the_end(echo_lists, tmp_path):
    runner, _, said = echo_lists
    lines = (tmp_path / 'hosts' / 'host0.txt').read_text()
    (tmp_path / 'hosts' / 'host0.txt').write_text('exit 3\n' + lines)
    ran = subprocess.run(['bash', runner, '0'], capture_output=True, text=True)
    assert ran.returncode == 1 and ' exit 3: exit 3' in ran.stdout and 'host 0: 1 failed' in ran.stdout
    assert said.read_text().count('0:') == 2


def test_the_launcher_starts_every_tpu_worker_on_the_runner(echo_lists, tmp_path):
    runner, launcher, _ = echo_lists
    bin_dir, called = tmp_path / 'bin', tmp_path / 'gcloud_args'
    bin_dir.mkdir()
    (bin_dir / 'gcloud').write_text(f'#!/bin/bash\nprintf "%s\\n" "$@" > {shlex.quote(str(called))}\n')
    (bin_dir / 'gcloud').chmod(0o755)
    env = {**os.environ, 'PATH': f'{bin_dir}:{os.environ["PATH"]}'}
    ran = subprocess.run(['bash', launcher, 'my-pod', '--zone=us-central2-b'], env=env, capture_output=True)
    assert ran.returncode == 0, ran.stderr
    args = called.read_text().splitlines()
    assert args[:7] == ['compute', 'tpus', 'tpu-vm', 'ssh', 'my-pod', '--worker=all', '--zone=us-central2-b']
    [remote] = [arg[len('--command=') :] for arg in args if arg.startswith('--command=')]
    assert remote.startswith(f'cd {shlex.quote(ROOT)} && TPU_HOST_BOUNDS=1,1,1 nohup bash {shlex.quote(runner)} ')
    assert remote.endswith('&') and subprocess.run(['bash', '-n', '-c', remote]).returncode == 0
    usage = subprocess.run(['bash', launcher], env=env, capture_output=True, text=True)
    assert usage.returncode == 2 and 'usage' in usage.stderr


@pytest.mark.parametrize(
    'args, message',
    [
        (['--format=hosts'], '--format=hosts needs --num_hosts=N, N at least 1 (got None).'),
        (['--format=hosts', '--num_hosts=0'], 'N at least 1 (got 0).'),
        (['--format=hosts', '--num_hosts=2', '--run'], '--format=hosts writes one job list per host; drop --print'),
        (['--format=groups', '--print', '--num_hosts=2'], '--num_hosts applies to --format=hosts only.'),
    ],
)
def test_host_mistakes_are_one_line(args, message, tmp_path):
    result = sweep(f'--sweep_dir={tmp_path}', *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1 and not os.listdir(tmp_path)
