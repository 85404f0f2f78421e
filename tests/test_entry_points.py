"""Every entry point: `--help` exits 0, a user mistake is one line on stderr with status 2, and a run's
output carries no third-party noise."""

import os
import re
import subprocess
import sys

import pytest

from tests.helpers import ROOT, TINY, run_python

ENTRY_POINTS = [
    ['main.py'],
    ['-m', 'scripts.sweep'],
    ['-m', 'scripts.report'],
    ['-m', 'envs.generate_dataset'],
    ['-m', 'envs.dataset_report'],
    ['benchmarks/update_speed.py'],
    ['benchmarks/batch_jobs.py'],
]


def run(*args):
    return run_python(*args, timeout=300)


@pytest.mark.parametrize('entry_point', ENTRY_POINTS, ids=lambda e: e[-1])
def test_help_exits_zero(entry_point):
    result = run(*entry_point, '--help')
    assert result.returncode == 0, result.stderr
    assert 'Traceback' not in result.stdout + result.stderr


def test_main_help_names_the_default_agent_and_lists_the_chosen_agents_settings():
    default = run('main.py', '--help').stdout
    agent_help = default.split('\n  --agent:', 1)[1].split('\n  --', 1)[0]
    assert "(default: 'drol')" in agent_help and ROOT not in default, default
    assert '--agent.num_candidates=' in agent_help, default
    fql = run('main.py', '--agent=fql', '--help').stdout
    assert '--agent.alpha=10.0' in fql and '--agent.num_candidates=' not in fql, fql


@pytest.mark.parametrize('entry_point', ENTRY_POINTS, ids=lambda e: e[-1])
def test_malformed_flag_is_one_line(entry_point):
    result = run(*entry_point, '--no_such_flag=1')
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith('error: ') and 'Traceback' not in result.stderr


@pytest.mark.parametrize(
    'args, message',
    [
        (['--agent.num_candidate=4'], 'Did you mean num_candidates'),  # No --agent: the default agent's keys.
        (['--agent=fql', '--agent.num_candidates=4'], 'Unknown agent setting(s) num_candidates'),
        (['--offline_steps=abc'], '--offline_steps'),
        (['--agent.actor_hidden_dims=(32,32)', '--agent.actor_hidden_dims=(64,64)'], 'given more than once'),
        (['--precision=fast'], '--precision'),
    ],
)
def test_main_agent_and_flag_typos(args, message):
    result = run('main.py', *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert 'Traceback' not in result.stderr


THIRD_PARTY_NOISE = re.compile(r'^[IW]\d{4} |GLFW|precision lowered|WARN:|Unable to initialize backend', re.MULTILINE)


@pytest.mark.slow
def test_a_run_prints_no_third_party_noise(cube_single_dataset, tmp_path):
    """JAX's TPU probe, absl INFO lines, GLFW and gym warnings stay out of a normal run's output
    (JAX_PLATFORMS is left unset, as a user's shell has it)."""
    env = {key: value for key, value in os.environ.items() if key != 'JAX_PLATFORMS'}
    args = ['--env_name=cube-single-play', f'--dataset_path={cube_single_dataset}', f'--save_dir={tmp_path}']
    args += ['--offline_steps=2', '--eval_interval=2', '--eval_episodes=1', *TINY]
    result = subprocess.run(
        [sys.executable, 'main.py', *args], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert not THIRD_PARTY_NOISE.search(output), output
    assert 'Final evaluation (step 2' in output


def test_output_piped_into_a_reader_that_stops_early_ends_without_a_traceback():
    """`sweep --print | head -1`: the closed pipe ends the printer quietly."""
    printer = subprocess.Popen(
        [sys.executable, '-m', 'scripts.sweep', '--suite=k-ablation', '--seeds=0-7', '--print'],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert printer.stdout.readline().startswith('.venv/bin/python main.py ')
    printer.stdout.close()  # What `head -1` does after its line.
    stderr = printer.stderr.read()
    assert printer.wait(timeout=120) in (0, 1) and 'Traceback' not in stderr, stderr
