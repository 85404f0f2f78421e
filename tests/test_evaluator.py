"""A run's evaluator gives each stacked agent the statistics its own serial evaluation gives."""

import functools

import gymnasium
import numpy as np

from tests.helpers import tiny_agent
from tests.worker_envs import Traced, traced_env
from utils.evaluation import run_episodes, summarize
from utils.evaluator import Evaluator
from utils.fused_updates import stack_seeds


def test_each_agent_gets_the_statistics_of_its_serial_evaluation():
    observations, actions = np.zeros((1, 28), np.float32), np.zeros((1, 5), np.float32)
    batch = {'observations': observations, 'actions': actions}
    agents = [tiny_agent('drol', batch, seed=seed) for seed in (0, 1)]
    names, seeds = ['cube-single-play-task1', 'cube-single-play-task2'], [4, 5]
    evaluator = Evaluator([functools.partial(traced_env, name) for name in names], 3, workers=2)
    try:
        stats = evaluator.evaluate(stack_seeds(agents), seeds, step=10, run_dirs=['unused', 'unused'])
    finally:
        evaluator.close()
    for agent, name, seed, agent_stats in zip(agents, names, seeds, stats, strict=True):
        serial, _ = run_episodes(agent, traced_env(name), 3, seed=seed)
        assert agent_stats == {f'evaluation/{key}': value for key, value in summarize(serial).items()}
        assert {'evaluation/episode.return', 'evaluation/success', 'evaluation/sum'} <= set(agent_stats)
    assert stats[0]['evaluation/sum'] != stats[1]['evaluation/sum']


def test_environments_are_built_at_the_first_evaluation_and_not_before():
    """A run that never evaluates (--eval_interval=0) pays for no environment (about 1.2 s each)."""
    built = []

    def make(**kwargs):
        built.append(kwargs)
        return traced_env('cube-single-play-task1', **kwargs)

    unused = Evaluator([make], 2, workers=1)
    unused.close()
    assert built == []
    agent = tiny_agent('drol', {'observations': np.zeros((1, 28), np.float32), 'actions': np.zeros((1, 5), np.float32)})
    evaluator = Evaluator([make], 2, workers=1)
    try:
        assert built == []
        for step in (1, 2):
            stats = evaluator.evaluate(stack_seeds([agent]), [0], step=step, run_dirs=['unused'])
    finally:
        evaluator.close()
    assert built == [{}, {}]  # One environment per slot (two episodes), built once for both evaluations.
    serial, _ = run_episodes(agent, traced_env('cube-single-play-task1'), 2, seed=0)
    assert stats == [{f'evaluation/{key}': value for key, value in summarize(serial).items()}]


def test_the_environment_a_dataset_came_with_evaluates_as_a_new_one(cube_single_dataset):
    """main.py hands the evaluator the environment it loaded the data with (relabelling reset it once,
    unseeded): every episode's result equals that of freshly built environments."""
    from envs.env_utils import FirstCallReuses, make_env_and_datasets

    data_env = make_env_and_datasets('cube-single-play', dataset_path=cube_single_dataset)[0]
    built = []

    def make(**kwargs):
        built.append(kwargs)
        return traced_env('cube-single-play', **kwargs)

    reused = Traced(gymnasium.wrappers.TimeLimit(data_env, 30))
    agent = tiny_agent('drol', {'observations': np.zeros((1, 28), np.float32), 'actions': np.zeros((1, 5), np.float32)})
    evaluator = Evaluator([FirstCallReuses(reused, make)], 3, workers=1)
    try:
        stats = evaluator.evaluate(stack_seeds([agent]), [3], step=1, run_dirs=['unused'])
    finally:
        evaluator.close()
    assert len(built) == 1  # Two slots: the data's environment and one new one.
    serial, _ = run_episodes(agent, traced_env('cube-single-play'), 3, seed=3)
    assert stats == [{f'evaluation/{key}': value for key, value in summarize(serial).items()}]
