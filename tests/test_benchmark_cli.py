"""benchmarks/update_speed.py as a user runs it: help, one-line errors, a tiny registry-wide run."""

import json
import os

import pytest

from agents import AGENTS
from tests.helpers import run_python

MODES = ('update', 'loop', 'seeds', 'end_to_end', 'eval')


def run_benchmark(*args, timeout=300):
    return run_python(os.path.join('benchmarks', 'update_speed.py'), *args, timeout=timeout)


def test_help_exits_0_and_lists_every_mode():
    result = run_benchmark('--help', timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    help_text = result.stdout.split('--modes:', 1)[1].split('\n  --', 1)[0]
    for mode in MODES:
        assert mode in help_text, f'--modes help does not list {mode}: {help_text!r}'


@pytest.mark.parametrize(
    'flag, named',
    [
        ('--modes=update,speed', 'speed'),
        ('--agents=no_such_agent', 'no_such_agent'),
        ('--updates=0', '--updates'),
        ('--rounds=-1', '--rounds'),
        ('--batch_size=0', '--batch_size'),
        ('--hidden=0', '--hidden'),
    ],
)
def test_bad_flag_is_one_line_and_status_2(flag, named):
    result = run_benchmark(flag, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], result.stderr
    assert 'Traceback' not in result.stderr
    assert result.stdout == ''  # Nothing was timed.


def test_tiny_update_run_reports_every_registered_agent():
    # The sizes of benchmarks/accelerator_check.py --smoke: DROL's and FQL's programs are that test's too.
    result = run_benchmark('--modes=update', '--hidden=16', '--batch_size=8', '--num_candidates=4', '--updates=3',
                           '--rounds=1')  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    names = list(AGENTS)
    assert figures['agents'] == ','.join(names)
    for name in names:
        assert figures[f'{name}_updates_per_s'] > 0
    for name in names[1:]:
        assert figures[f'{name}_over_{names[0]}'] > 0
