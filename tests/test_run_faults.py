"""Faults and misuse around a run directory: each case checks the data kept, the exit status and
one clear message (no traceback, no silent wrong result)."""

import errno
import json
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.helpers import ROOT, TINY, read_csv, run_main

pytestmark = pytest.mark.slow


def command(dataset, save_dir, *extra, agent='drol'):
    return (
        f'--agent={agent}',
        '--env_name=cube-single-play',
        f'--dataset_path={dataset}',
        f'--save_dir={save_dir}',
        '--eval_interval=0',
        *TINY,
        *extra,
    )


def run_dir_of(save_dir, agent='drol', seed=0):
    return save_dir / 'Debug' / f'{agent}_cube-single-play_sd{seed}'


def steps(path):
    return [int(float(row['step'])) for row in read_csv(path)]


def checkpoints(run_dir):
    return sorted(int(p.name.split('_')[1].split('.')[0]) for p in run_dir.glob('checkpoint_*.msgpack'))


def assert_one_line_error(result, status, text):
    assert result.returncode == status, result.stdout + result.stderr
    assert text in result.stderr, result.stderr
    assert 'Traceback' not in result.stderr, result.stderr


# The run six tests below start from: 20 offline steps, logged and saved every 10 (checkpoints 0, 10
# and 20). Trained once and copied for each test, it saves each of them a main.py process.
FINISHED = ('--offline_steps=20', '--log_interval=10', '--save_interval=10')


@pytest.fixture(scope='module')
def finished_run(cube_single_dataset, tmp_path_factory):
    """(save_dir, pristine copy of it) for one finished `FINISHED` run, trained once per worker."""
    save_dir = tmp_path_factory.mktemp('finished') / 'runs'
    run_main(*command(cube_single_dataset, save_dir, *FINISHED))
    pristine = tmp_path_factory.mktemp('pristine') / 'runs'
    shutil.copytree(save_dir, pristine)
    return save_dir, pristine


@pytest.fixture
def finished(finished_run):
    """The save_dir of a fresh copy of the finished run, for a test to resume, damage or refuse. The
    copy takes the original's place, since flags.json records --save_dir: a moved run would log
    that change on resuming."""
    save_dir, pristine = finished_run
    shutil.rmtree(save_dir)
    shutil.copytree(pristine, save_dir)
    return save_dir


def test_run_record_refuses_changes_and_records_allowed_ones(cube_single_dataset, finished):
    run_dir = run_dir_of(finished)
    record = (run_dir / 'flags.json').read_text()

    # One refused command (one process, not two) with two changes: the message names each.
    changed = run_main(
        *command(cube_single_dataset, finished, *FINISHED, '--agent.lr=0.001', '--precision=highest'), check=False
    )
    assert_one_line_error(changed, 2, '--agent.lr: 0.0003 -> 0.001')
    assert_one_line_error(changed, 2, "--precision: 'default' -> 'highest'")
    assert (run_dir / 'flags.json').read_text() == record

    more_seeds = run_main(*command(cube_single_dataset, finished, *FINISHED, '--num_seeds=2'), check=False)
    assert_one_line_error(more_seeds, 2, 'have none')
    assert steps(run_dir / 'train.csv') == [1, 10, 20] and checkpoints(run_dir) == [0, 10, 20]

    run_main(*command(cube_single_dataset, finished, *FINISHED, '--offline_steps=30'))
    assert steps(run_dir / 'train.csv') == [1, 10, 20, 30] and checkpoints(run_dir) == [0, 10, 20, 30]
    resumes = [json.loads(line) for line in (run_dir / 'resumes.jsonl').read_text().splitlines()]
    assert resumes[-1]['changes'] == ['--offline_steps: 20 -> 30']
    assert (run_dir / 'flags.json').read_text() == record

    done = run_main(*command(cube_single_dataset, finished, *FINISHED, '--offline_steps=30', '--updates_per_call=10'))
    assert 'already finished at step 30' in done.stdout
    assert checkpoints(run_dir) == [0, 10, 20, 30] and steps(run_dir / 'train.csv') == [1, 10, 20, 30]


def test_noresume_starts_over_without_stale_checkpoints(cube_single_dataset, finished):
    run_dir = run_dir_of(finished)
    assert (run_dir / 'checkpoint_20.msgpack').exists()
    run_main(*command(cube_single_dataset, finished, '--offline_steps=10', '--log_interval=10', '--noresume'))
    assert sorted(p.name for p in run_dir.glob('checkpoint_*')) == ['checkpoint_0.msgpack', 'checkpoint_10.msgpack']
    assert steps(run_dir / 'train.csv') == [1, 10]


def test_resume_off_the_fused_grid_never_passes_offline_steps(cube_single_dataset, tmp_path):
    run_main(*command(cube_single_dataset, tmp_path, '--offline_steps=25', '--log_interval=5'))
    extra = ('--offline_steps=40', '--updates_per_call=10', '--log_interval=10', '--save_interval=10')
    run_main(*command(cube_single_dataset, tmp_path, *extra))
    run_dir = run_dir_of(tmp_path)
    assert steps(run_dir / 'train.csv') == [1, 5, 10, 15, 20, 25, 30, 40]
    assert checkpoints(run_dir) == [0, 25, 30, 40]


def start(dataset, save_dir):
    args = command(dataset, save_dir, '--offline_steps=1000000', '--log_interval=1', '--save_interval=0')
    return subprocess.Popen(
        [sys.executable, 'main.py', *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_rows(path, rows, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and len(read_csv(path)) >= rows:
            return
        time.sleep(0.2)
    raise AssertionError(f'{path} did not reach {rows} rows')


def test_sigterm_and_ctrl_c_save_the_step_and_exit_with_one_line(cube_single_dataset, tmp_path):
    run_dir = run_dir_of(tmp_path)
    for signum, status, name in ((signal.SIGTERM, 143, 'SIGTERM'), (signal.SIGINT, 130, 'SIGINT')):
        before = checkpoints(run_dir)[-1] if run_dir.exists() else 0
        process = start(cube_single_dataset, tmp_path)
        wait_for_rows(run_dir / 'train.csv', (len(read_csv(run_dir / 'train.csv')) if before else 0) + 3)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == status, stderr
        assert f'Stopped by {name} at step' in stderr and 'Traceback' not in stderr, stderr
        saved = checkpoints(run_dir)[-1]
        assert saved > before and f'saved checkpoint_{saved}' in stderr
        assert steps(run_dir / 'train.csv')[-1] <= saved + 1


@pytest.mark.parametrize('damage', ['truncated', 'garbage'])
def test_damaged_latest_checkpoint_is_named_and_the_previous_one_used(damage, cube_single_dataset, finished):
    run_dir = run_dir_of(finished)
    latest = run_dir / 'checkpoint_20.msgpack'
    payload = latest.read_bytes()
    latest.write_bytes(payload[: len(payload) // 2] if damage == 'truncated' else b'not a checkpoint')
    result = run_main(*command(cube_single_dataset, finished, '--offline_steps=30', '--log_interval=10'))
    assert 'checkpoint_20.msgpack' in result.stderr and 'damaged' in result.stderr
    assert 'Resuming from step 10' in result.stdout
    assert (run_dir / 'checkpoint_20.msgpack.damaged').exists() and checkpoints(run_dir) == [0, 10, 30]
    assert steps(run_dir / 'train.csv') == [1, 10, 20, 30]


def test_checkpoint_of_another_agent_is_one_message(cube_single_dataset, finished, tmp_path):
    restore = f'--restore_path={run_dir_of(finished)}'
    result = run_main(*command(cube_single_dataset, tmp_path, '--offline_steps=10', restore, agent='fql'), check=False)
    assert_one_line_error(result, 2, "agent_name 'drol' (this run: 'fql')")


def test_second_process_in_a_run_directory_is_refused(cube_single_dataset, tmp_path):
    from utils.run_dir import lock_run_dir

    run_dir = run_dir_of(tmp_path)
    run_dir.mkdir(parents=True)
    held = lock_run_dir(str(run_dir))
    try:
        result = run_main(*command(cube_single_dataset, tmp_path, '--offline_steps=10'), check=False)
    finally:
        held.close()
    assert_one_line_error(result, 2, 'is in use by process')


def test_torn_and_foreign_logs_are_repaired_or_set_aside(cube_single_dataset, finished):
    run_dir = run_dir_of(finished)
    with open(run_dir / 'train.csv', 'a') as f:
        f.write('30,0.5')  # A row torn by a crash mid-write.
    (run_dir / 'eval.csv').write_text('something,else\n1,2\n')
    extra = ('--offline_steps=30', '--log_interval=10', '--eval_interval=10', '--eval_episodes=1')
    result = run_main(*command(cube_single_dataset, finished, *extra))
    assert 'dropped 1 torn row' in result.stderr and 'not a training log' in result.stderr
    assert steps(run_dir / 'train.csv') == [1, 10, 20, 30] and steps(run_dir / 'eval.csv') == [30]
    assert list(run_dir.glob('eval.csv.unreadable-*'))
    assert not list(run_dir.glob('*.tmp'))


def test_full_disk_names_the_folder_and_keeps_earlier_checkpoints(tmp_path, monkeypatch):
    from tests.helpers import random_batch, tiny_agent
    from utils import checkpoints
    from utils.errors import UserError
    from utils.fused_updates import data_key
    from utils.log_utils import CsvLogger

    agent = tiny_agent('drol', random_batch())
    checkpoints.save_checkpoint(str(tmp_path), 0, agent, data_key(0))

    def no_space(_):
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(checkpoints.os, 'fsync', no_space)
    with pytest.raises(UserError, match=f'No space left on device. Earlier checkpoints in {tmp_path} are kept'):
        checkpoints.save_checkpoint(str(tmp_path), 10, agent, data_key(0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ['checkpoint_0.msgpack']
    loaded = checkpoints.load_checkpoint(str(tmp_path / 'checkpoint_0.msgpack'), agent, data_key(0))
    assert loaded[2] == 0 and np.array_equal(loaded[1], data_key(0))

    monkeypatch.setattr('builtins.open', lambda *a, **k: no_space(None))
    with pytest.raises(UserError, match='train.csv: No space left on device'):
        CsvLogger(str(tmp_path / 'train.csv')).log({'loss': 1.0}, 1)
