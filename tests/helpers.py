"""What the tests share: tiny agents and batches, tiny OGBench-format datasets, running main.py."""

import contextlib
import csv
import functools
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import gymnasium
import numpy as np

from agents import AGENTS
from tests.compile_flags import with_fast_compile
from tests.warm_python import WarmPython


def tiny_config(agent_name, **overrides):
    config = AGENTS[agent_name].default_config()
    config.update(dict(actor_hidden_dims=(32, 32), value_hidden_dims=(32, 32), batch_size=16))
    config.update(overrides)
    return config


def random_batch(batch_size=16, observation_dim=7, action_dim=3, seed=0):
    rng = np.random.default_rng(seed)
    return {
        'observations': rng.normal(size=(batch_size, observation_dim)).astype(np.float32),
        'actions': rng.uniform(-0.99, 0.99, size=(batch_size, action_dim)).astype(np.float32),
        'next_observations': rng.normal(size=(batch_size, observation_dim)).astype(np.float32),
        'rewards': rng.normal(size=(batch_size,)).astype(np.float32),
        'masks': np.ones((batch_size,), np.float32),
        # Drawn last, so the other fields are those of earlier versions; ReBRAC's critic reads it.
        'next_actions': rng.uniform(-0.99, 0.99, size=(batch_size, action_dim)).astype(np.float32),
    }


def tiny_agent(agent_name, batch, seed=0, **overrides):
    config = tiny_config(agent_name, **overrides)
    return AGENTS[agent_name].create(seed, batch['observations'][:1], batch['actions'][:1], config)


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ['--agent.actor_hidden_dims=(32,32)', '--agent.value_hidden_dims=(32,32)', '--agent.batch_size=32']


WARM_PYTHON = WarmPython()


def program_env(env=None):
    """The environment of a program a test starts: the CPU, then `env`'s own values, and XLA's cheap passes
    (tests/compile_flags.py) in its XLA_FLAGS whatever they are. Its LD_LIBRARY_PATH, unless `env` gives one, is
    the one the tests started with, as a user's shell has it: importing the D4RL extra in a test process adds
    MuJoCo's bin folder there, and a program adds it itself (envs/d4rl_utils.py)."""
    started = {key: value for key, value in os.environ.items() if key != 'LD_LIBRARY_PATH'}
    if 'LD_LIBRARY_PATH' in WARM_PYTHON.env:
        started['LD_LIBRARY_PATH'] = WARM_PYTHON.env['LD_LIBRARY_PATH']
    env = {**started, 'JAX_PLATFORMS': 'cpu', **(env or {})}
    return {**env, 'XLA_FLAGS': with_fast_compile(env.get('XLA_FLAGS'))}


def run_python(*args, cwd=ROOT, env=None, timeout=600):
    """`python *args` (a script path or `-m MODULE` first) on the CPU, as subprocess.run(capture_output=True,
    text=True) gives it, started warm (tests/warm_python.py) unless `env` changes what the warm server froze."""
    env = program_env(env)
    result = WARM_PYTHON.run(args, env, cwd=cwd, timeout=timeout)
    if result is None:
        command = [sys.executable, *map(str, args)]
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    return result


def run_main(*args, check=True, env=None):
    result = run_python('main.py', *args, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f'main.py failed ({result.returncode}):\n{result.stdout}\n{result.stderr}')
    return result


def kill_main_when(ready, *args, poll=0.02, timeout=300):
    """Starts main.py with `args`, waits until `ready()` (e.g. a checkpoint exists), then SIGKILLs it,
    as a pre-empted job dies: no handler runs."""
    command, env = ['main.py', *args], program_env()
    started = WARM_PYTHON.start(command, env)
    if started is None:
        process = subprocess.Popen([sys.executable, *command], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)  # fmt: skip
        pid, finish = process.pid, process.wait
    else:
        pid, finish = started[0], functools.partial(WARM_PYTHON.finish, *started)
    deadline = time.time() + timeout
    while not ready() and time.time() < deadline:
        time.sleep(poll)
    with contextlib.suppress(ProcessLookupError):  # Finished before `ready()`: nothing left to kill.
        os.kill(pid, signal.SIGKILL)
    finish()


def read_csv(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def write_ogbench_dataset(path, env_id='cube-single-v0', episodes=2, steps=40, seed=0):
    """Random-action rollouts saved with OGBench's keys and dtypes (train and -val files)."""
    import ogbench  # noqa: F401  (registers the environments)

    env = gymnasium.make(env_id, terminate_at_goal=False, mode='data_collection', max_episode_steps=steps)
    rng = np.random.default_rng(seed)
    for file in (path, path.replace('.npz', '-val.npz')):
        record = {k: [] for k in ('observations', 'actions', 'terminals', 'qpos', 'qvel')}
        for episode in range(episodes):
            observation, info = env.reset(seed=seed * 1000 + episode + (file != path) * 500)
            for t in range(steps):
                action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
                next_observation, _, _, _, info = env.step(action)
                record['observations'].append(observation)
                record['actions'].append(action)
                record['terminals'].append(t == steps - 1)
                record['qpos'].append(info['prev_qpos'])
                record['qvel'].append(info['prev_qvel'])
                observation = next_observation
        np.savez_compressed(
            file,
            observations=np.asarray(record['observations'], np.float32),
            actions=np.asarray(record['actions'], np.float32),
            terminals=np.asarray(record['terminals'], bool),
            qpos=np.asarray(record['qpos'], np.float32),
            qvel=np.asarray(record['qvel'], np.float32),
        )
    return path


def readme_commands(text):
    """Every command of README.md's ```bash blocks, as argument lists: lines split at `&&`, comments dropped."""
    commands = []
    for block in re.findall(r'^```bash\n(.*?)^```', text, flags=re.S | re.M):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            while words:
                end = words.index('&&') if '&&' in words else len(words)
                commands.append(words[:end])
                words = words[end + 1 :]
    return commands


def with_flags(words, values):
    """`words` with each `--KEY=VALUE` of `values` replacing the command's own, or added when it has none."""
    words = [word for word in words if word.split('=')[0].lstrip('-') not in values]
    return words + [f'--{key}={value}' for key, value in values.items()]


def is_pixel_command(words):
    """Whether a README command trains on a pixel-based task (tests/test_pixel_runs.py runs those)."""
    return any(word.startswith('--env_name=visual-') for word in words)
