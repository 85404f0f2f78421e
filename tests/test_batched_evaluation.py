"""Batched evaluation gives, episode by episode, exactly what the serial loop gives."""

import functools
import multiprocessing
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import ROOT, tiny_agent
from tests.worker_envs import failing_env, short_env
from utils.batched_evaluation import BatchedEvaluator
from utils.evaluation import run_episodes
from utils.fused_updates import stack_seeds

TASKS = ('cube-single-play-task1', 'cube-single-play-task2')
SEEDS, EPISODES = [5, 6, 7, 8], 3


@pytest.fixture(scope='module')
def two_tasks_two_seeds():
    """Four tiny DROL agents (tasks 1 and 2, agent seeds 0 and 1) and their environments, whose episodes
    end after 12 steps on task 1 and 7 on task 2 (finished slots wait while others run)."""
    batch = {'observations': np.zeros((1, 28), np.float32), 'actions': np.zeros((1, 5), np.float32)}
    agents = [tiny_agent('drol', batch, seed=seed) for _ in TASKS for seed in (0, 1)]
    make_envs = [
        functools.partial(short_env, task, steps) for task, steps in zip(TASKS, (12, 7), strict=True) for _ in (0, 1)
    ]
    return agents, make_envs


@pytest.fixture(scope='module')
def serial_episodes(two_tasks_two_seeds):
    """Each agent's EPISODES episodes from `run_episodes`, the reference."""
    agents, make_envs = two_tasks_two_seeds
    return [
        run_episodes(agent, make(), EPISODES, seed)[0]
        for agent, make, seed in zip(agents, make_envs, SEEDS, strict=True)
    ]


@pytest.mark.parametrize(
    'workers, max_envs',
    [(1, 8), (2, 4), (2, 64)],
    ids=['in-process-2-waves', 'two-workers-3-waves', 'two-workers-one-wave'],
)
def test_batched_episodes_equal_serial(two_tasks_two_seeds, serial_episodes, workers, max_envs):
    agents, make_envs = two_tasks_two_seeds
    with BatchedEvaluator(make_envs, EPISODES, workers=workers, max_envs=max_envs) as evaluator:
        batched = evaluator.evaluate(stack_seeds(agents), SEEDS)
    assert [[e['episode.length'] for e in agent] for agent in batched] == [[12] * 3] * 2 + [[7] * 3] * 2
    assert {'episode.return', 'episode.length', 'success', 'action_digest'} <= set(batched[0][0])
    assert batched == serial_episodes


def test_workers_are_reused_and_closed(two_tasks_two_seeds):
    agents, make_envs = two_tasks_two_seeds
    evaluator = BatchedEvaluator(make_envs, 2, workers=2, max_envs=4)
    try:
        processes = [group.process for group in evaluator.groups]
        first = evaluator.evaluate(stack_seeds(agents), [1, 2, 3, 4])
        pids = [process.pid for process in processes]
        second = evaluator.evaluate(stack_seeds(agents), [1, 2, 3, 4])
        assert [group.process.pid for group in evaluator.groups] == pids
        assert all(process.is_alive() for process in processes)
        assert second == first
    finally:
        evaluator.close()
    assert [process.exitcode for process in processes] == [0, 0]
    assert not set(multiprocessing.active_children()) & set(processes)
    with pytest.raises(RuntimeError, match='closed'):
        evaluator.evaluate(stack_seeds(agents), [1, 2, 3, 4])


def test_a_failing_worker_raises_and_every_worker_ends(two_tasks_two_seeds):
    _, make_envs = two_tasks_two_seeds
    before = set(multiprocessing.active_children())
    with pytest.raises(RuntimeError, match='no such task'):
        BatchedEvaluator([*make_envs[:3], failing_env], 1, workers=2)
    assert set(multiprocessing.active_children()) <= before


def test_a_worker_imports_no_jax():
    """What a spawned worker imports (the environment side and the environment factories, main.py's and these
    tests') leaves jax unimported: it cost each worker about 2.3 s of CPU (utils/env_slots.py)."""
    imports = 'import sys, utils.env_slots, envs.env_utils, tests.worker_envs; print(*sorted(sys.modules))'
    result = subprocess.run([sys.executable, '-c', imports], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    packages = {name.split('.')[0] for name in result.stdout.split()}
    assert 'numpy' in packages and not packages & {'jax', 'flax', 'optax'}, sorted(packages)
