"""Evaluation spread over worker processes means the same as the serial loop."""

import functools

import numpy as np

from agents import AGENTS
from envs.env_utils import make_env
from tests.helpers import tiny_agent, tiny_config
from utils.evaluation import run_episodes, summarize
from utils.evaluator import EvalPool


def test_parallel_evaluation_matches_serial():
    observations, actions = np.zeros((1, 28), np.float32), np.zeros((1, 5), np.float32)
    agent = tiny_agent('drol', {'observations': observations, 'actions': actions})
    serial, _ = run_episodes(agent, make_env('cube-single-play'), 3, seed=4)

    make_agent = functools.partial(AGENTS['drol'].create, 0, observations, actions, tiny_config('drol'))
    pool = EvalPool(2, functools.partial(make_env, 'cube-single-play', 'post'), make_agent)
    try:
        parallel = pool.run_episodes(agent, 3, seed=4)
    finally:
        pool.close()
    assert len(parallel) == 3
    assert summarize(parallel).keys() == summarize(serial).keys()
    assert {'episode.return', 'episode.length', 'success'} <= set(summarize(parallel))
    assert parallel == serial
