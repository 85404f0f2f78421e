"""`scripts.sweep --run`: several runs at once leave each other GPU memory (the fraction reaches
every child process), and a line says when each run starts and when it ends, with its time."""

import re

import pytest

from scripts.sweep import MEMORY_VARIABLE, Job, run_all
from utils.errors import UserError

PRINTS_FRACTION = ['.venv/bin/python', '-c', f'import os; print(os.environ.get("{MEMORY_VARIABLE}"))']


def jobs_printing_the_fraction(tmp_path, count):
    return [Job(PRINTS_FRACTION, [str(tmp_path / f'run{i}')], str(tmp_path / f'run{i}.log')) for i in range(count)]


@pytest.mark.parametrize(
    'parallel, exported, seen', [(2, None, '0.45'), (3, None, '0.30'), (1, None, 'None'), (2, '0.2', '0.2')]
)
def test_each_child_gets_its_share_of_gpu_memory_unless_the_user_set_one(
    tmp_path, monkeypatch, parallel, exported, seen
):
    monkeypatch.delenv(MEMORY_VARIABLE, raising=False)
    if exported:
        monkeypatch.setenv(MEMORY_VARIABLE, exported)
    jobs = jobs_printing_the_fraction(tmp_path, 3)
    run_all(jobs, parallel, 'runs')
    assert [open(job.log).read() for job in jobs] == [f'{seen}\n'] * 3


def test_a_line_when_each_run_starts_and_ends_with_its_time(tmp_path, capsys):
    jobs = jobs_printing_the_fraction(tmp_path, 2)
    failing = Job(['.venv/bin/python', '-c', 'exit(3)'], [str(tmp_path / 'bad')], str(tmp_path / 'bad.log'))
    with pytest.raises(UserError, match='1 of 3 runs failed'):
        run_all([*jobs, failing], 1, 'runs')
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == '0 of 3 runs already finished; running 3, 1 at a time.'
    command = '.venv/bin/python -c \'import os; print(os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION"))\''
    assert lines[1] == f'[start 1/3] {command}'
    assert re.fullmatch(rf'\[ok\] 1/3 after \d+ s: {re.escape(command)}', lines[2])
    assert lines[3] == f'[start 2/3] {command}'
    assert lines[5] == "[start 3/3] .venv/bin/python -c 'exit(3)'"
    assert re.fullmatch(rf'\[exit 3\] 3/3 after \d+ s: .* \(output in {re.escape(failing.log)}\)', lines[6])
