"""benchmarks/accelerator_check.py --smoke on the CPU (DROL and FQL): every figure the device check
promises, its table, and its one-line errors."""

import json
import os

import pytest

from tests.helpers import run_python


def run_check(*args, timeout=1800):
    return run_python(os.path.join('benchmarks', 'accelerator_check.py'), *args, timeout=timeout)


@pytest.mark.slow
def test_smoke_run_reports_every_figure_and_writes_the_table(tmp_path):
    result = run_check('--smoke', f'--results_dir={tmp_path}')
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    rates, first = figures['updates_per_s'], figures['first_call_s']
    expected = [f'{name}_{kind}' for name in ('drol', 'fql') for kind in ('fused1', 'fused100', 'update')]
    expected += [f'{name}_update_undonated' for name in ('drol', 'fql')]
    expected += [f'{name}_{count}_stacked' for name in ('drol', 'fql') for count in (1, 2)]
    assert set(rates) == set(expected) == set(first), sorted(set(expected) ^ set(rates))
    assert all(rate > 0 for rate in rates.values()) and all(seconds > 0 for seconds in first.values())
    assert figures['precision'].startswith('Precision default on cpu')
    assert set(figures['peak_memory_gb']) == {'per_agent', 'drol_stacked', 'fql_stacked'}
    run = figures['main_py']
    assert 'skipped' in run or run['with_evaluation_s'] > 0 and run['final_line'].startswith('Final evaluation'), run
    table = (tmp_path / 'cpu-cpu-smoke.md').read_text()
    assert '| drol |' in table and '| fql |' in table
    assert '| 2 |' in table and 'Peak device memory' in table and 'main.py' in table


@pytest.mark.parametrize(
    'flag, named',
    [('--precision=fp8', 'precision'), ('--stack_counts=0,2', '--stack_counts'), ('--modes=loop', '--modes')],
)
def test_bad_flag_is_one_line(flag, named):
    result = run_check(flag, timeout=300)
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1 and named in lines[0], result.stderr
    assert 'Traceback' not in result.stderr
