"""benchmarks/batch_jobs.py at tiny sizes: its table, its JSON line, and its one-line errors."""

import json
import os

import pytest

from tests.helpers import run_python


def run_benchmark(*args):
    return run_python(os.path.join('benchmarks', 'batch_jobs.py'), *args)


def test_tiny_run_writes_the_table_and_checks_batched_equals_serial(tmp_path):
    result = run_benchmark(
        '--agent_counts=1,3', '--hidden=16', '--depth=1', '--batch_size=8', '--dataset_size=100', '--updates=2',
        '--repeats=1', '--eval_agents=2', '--episodes=2', f'--results_dir={tmp_path}',
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-2])
    assert set(figures['updates_per_s']) == {'1', '3'} and all(v > 0 for v in figures['updates_per_s'].values())
    evaluation = figures['evaluation']
    assert evaluation['episodes_equal'] is True
    assert {'serial_s', 'batched_1_worker_s', 'batched_2_workers_s'} <= set(evaluation)
    assert figures['projection']['hours'] > 0
    table = (tmp_path / 'cpu-cpu.md').read_text()
    assert '| 3 |' in table and 'batched 2 workers' in table and "Every episode's result is the same" in table


@pytest.mark.parametrize('flag', ['--agent_counts=0,2', '--updates=0', '--workers=0', '--agent_counts=a'])
def test_bad_flags_are_one_line(flag):
    result = run_benchmark(flag)
    assert result.returncode == 2 and 'Traceback' not in result.stderr and result.stderr.count('\n') == 1
