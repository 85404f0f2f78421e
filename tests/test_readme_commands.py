"""README.md's commands, read from its ```bash blocks and run in the order written on a copy of the tree.

Why: the README promises that its commands run as copied, one after another, on a fresh clone; two of them once
refused because an earlier example had written the same run directory with other settings. Parsing them out of
README.md makes this test break when the README drifts: a command it does not know fails it, and a changed command
runs as changed. Sizes shrink to tiny values (the other tests' tiny networks and cube-single data, so that the
session's compilation cache often holds the programs already; one update (so one evaluation), one episode, two tasks
where a command trains several, one-episode generation, tiny datasets found where the commands look for data), so only
the flags that set sizes are rewritten; everything else, run groups and paths included, runs as written, in a fresh
copy of the tree where `exp/` starts empty. Installing (venv, pip, the D4RL script) and the test suite itself are
left out: CI runs those lines itself.

The pixel-based commands (one per agent) are the training runs of tests/test_pixel_runs.py, which
runs each at tiny sizes on a tiny rendered set and then checks its checkpoint: rendering makes them
the costliest runs, so they are made once.
"""

import os
import shlex
import shutil
import subprocess
import sys

import pytest

from envs.d4rl_utils import import_d4rl, is_d4rl_env
from envs.dataset_files import validation_path
from tests.helpers import (
    ROOT,
    TINY,
    is_pixel_command,
    program_env,
    readme_commands,
    run_python,
    with_flags,
    write_ogbench_dataset,
)
from tests.test_d4rl_envs import write_antmaze_file
from utils.errors import UserError

pytestmark = [pytest.mark.slow, pytest.mark.d4rl]

# Commands that set up the machine, not the project's work: CI runs them (.ci/run).
SETUP = ('python3 -m venv', '.venv/bin/pip', 'bash scripts/install_d4rl.sh', '.venv/bin/python -m pytest')
# Root entries of the tree that a fresh clone lacks (ignored by git) or that the copy must not share.
NOT_COPIED = {'.git', '.venv', 'exp', 'data', 'wandb', '.pytest_cache', '.hypothesis', '.ruff_cache'}
TINY_NETWORKS = dict(flag[2:].split('=') for flag in TINY)
# main.py's sizes, set in every run.
TINY_RUN = {'offline_steps': '1', 'log_interval': '1', 'eval_episodes': '1', **TINY_NETWORKS}
# Set only where a command gives them: without them a run is already as small (no online phase, one update a
# call, evaluations at the first and last step only, one task).
TINY_IF_GIVEN = {'online_steps': '2', 'updates_per_call': '1', 'eval_interval': '2', 'tasks': '1-2'}
SWEEP_ENV = 'cube-single-play'


def given(words, names):
    return {word.split('=')[0].lstrip('-') for word in words} & set(names)


def tiny(words, data):
    """The command with tiny sizes, reading the tiny data; a failure names a command this test does not know."""
    words = [word.replace('~/.ogbench/data', data['dir']) for word in words]
    program = ' '.join(words[1:3] if words[1] == '-m' else words[1:2])
    if program == 'main.py':
        sizes = {**TINY_RUN, **{key: TINY_IF_GIVEN[key] for key in given(words, TINY_IF_GIVEN)}}
        return with_flags(words, {**sizes, **_data_flag(words, data)})
    if program == '-m scripts.sweep' and '--run' in words:
        # One environment and seed; the flags after `--` reach every run.
        run_flags = with_flags([], {**TINY_RUN, 'dataset_dir': data['dir']})
        return with_flags(words, {'envs': SWEEP_ENV, 'seeds': '0'}) + ['--'] + run_flags
    if program == '-m envs.generate_dataset':
        return with_flags(
            words, {'num_episodes': '1', 'max_episode_steps': '20', 'workers': '1', 'dataset_dir': data['dir']}
        )
    if program == 'benchmarks/runtime.py':
        sizes = {'hidden': '8', 'depth': '1', 'batch_size': '8', 'k_values': '1', 'timed_steps': '2', 'repeats': '1'}
        return with_flags(words, sizes)
    if program == '-m scripts.routing_pictures':
        return with_flags(words, {'state_index': '1', 'resolution': '10'})
    if program in ('-m scripts.sweep', '-m scripts.report', '-m envs.dataset_report'):
        return words  # Printing, writing a job array, or reading what earlier commands made: cheap as written.
    pytest.fail(f'README command not known to {__name__}; teach it the tiny form of: {shlex.join(words)}')


def _data_flag(words, data):
    env_name = next((word.split('=', 1)[1] for word in words if word.startswith('--env_name=')), 'cube-double-play')
    return {'dataset_path': data['d4rl']} if is_d4rl_env(env_name) else {'dataset_dir': data['dir']}


@pytest.fixture(scope='module')
def d4rl_extra():
    try:
        import_d4rl()
    except UserError as error:
        if os.environ.get('CI'):
            pytest.fail(f'CI needs the D4RL extra: {error}')
        pytest.skip(str(error))


@pytest.fixture(scope='module')
def fresh_clone(tmp_path_factory):
    """A copy of the tree as a fresh clone has it (no exp/), with .venv naming the running Python's environment."""
    clone = tmp_path_factory.mktemp('clone') / 'repo'
    shutil.copytree(ROOT, clone, ignore=lambda folder, names: NOT_COPIED & set(names) if folder == ROOT else ())
    os.symlink(sys.prefix, clone / '.venv')
    return clone


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory, cube_single_dataset):
    """Tiny files where the commands look: `<dir>/<family>-v0.npz` for OGBench (cube-single's the other tests' own
    file), one AntMaze-format hdf5."""
    folder = tmp_path_factory.mktemp('data')
    for path in (cube_single_dataset, validation_path(cube_single_dataset)):
        shutil.copy(path, folder)
    write_ogbench_dataset(str(folder / 'cube-double-play-v0.npz'), env_id='cube-double-v0')
    return {'dir': str(folder), 'd4rl': write_antmaze_file(folder / 'antmaze.hdf5', episodes=2, steps=20)}


def test_readme_names_the_commands_this_test_runs():
    """The parser itself: the first block is the quick run after its install; each skipped kind of setup exists."""
    with open(os.path.join(ROOT, 'README.md')) as file:
        commands = readme_commands(file.read())
    assert [words[:2] for words in commands[:3]] == [
        ['python3', '-m'],
        ['.venv/bin/pip', 'install'],
        ['.venv/bin/python', 'main.py'],
    ]
    assert sum(words[1] == 'main.py' for words in commands) >= 8
    assert all(any(shlex.join(words).startswith(step) for words in commands) for step in SETUP)


def test_readme_commands_run_in_order_on_a_fresh_clone(d4rl_extra, fresh_clone, tiny_data):
    with open(fresh_clone / 'README.md') as file:
        commands = [words for words in readme_commands(file.read()) if not shlex.join(words).startswith(SETUP)]
    for words in commands:
        if is_pixel_command(words):
            continue  # Run by tests/test_pixel_runs.py (module docstring).
        command = tiny(words, tiny_data)
        if command[0] == '.venv/bin/python':  # Started warm: the clone's code is this tree's, byte for byte.
            result = run_python(*command[1:], cwd=fresh_clone)
        else:
            result = subprocess.run(
                command, cwd=fresh_clone, env=program_env(), capture_output=True, text=True, timeout=600
            )
        assert result.returncode == 0, (
            f'README command\n  {shlex.join(words)}\nrun as\n  {shlex.join(command)}\nexited {result.returncode}:\n'
            f'{result.stdout[-3000:]}\n{result.stderr[-3000:]}'
        )
