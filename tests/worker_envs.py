"""Environment factories that the evaluation tests hand to worker processes.

Why a module of their own: a spawned worker imports the module that defines each factory it unpickles.
Defined in a test module, that meant the test's imports too (tests.helpers, the agents, flax, optax,
distrax: about 0.9 s of every worker's start); here only gymnasium, numpy and the environments.
"""

import zlib

import gymnasium
import numpy as np

from envs.env_utils import make_env


class ActionDigest(gymnasium.Wrapper):
    """Puts a CRC of every action taken so far into the info: one differing bit anywhere in an episode
    changes it, where returns and success alone would hide drifting trajectories. Refuses a step after
    the episode ended, as finished slots must wait."""

    def reset(self, **kwargs):
        self.digest, self.ended = 0, False
        return self.env.reset(**kwargs)

    def step(self, action):
        assert not self.ended, 'stepped after the episode ended'
        self.digest = zlib.crc32(np.asarray(action, np.float32).tobytes(), self.digest)
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.ended = terminated or truncated
        return observation, reward, terminated, truncated, {**info, 'action_digest': self.digest}


def short_env(name, steps):
    """A task cut to `steps` steps (picklable through functools.partial), so a test takes seconds."""
    return ActionDigest(gymnasium.wrappers.TimeLimit(make_env(name), max_episode_steps=steps))


def failing_env():
    raise ValueError('no such task')


class Traced(gymnasium.Wrapper):
    """Puts the reset seed and the sum of the actions taken into the info, so that statistics tell
    apart episodes and policies (untrained agents all fail with the same return)."""

    def reset(self, *, seed=None, options=None):
        self.reset_seed, self.action_sum = float(seed), 0.0
        return self.env.reset(seed=seed, options=options)

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.action_sum += float(np.sum(action))
        return observation, reward, terminated, truncated, {**info, 'seed': self.reset_seed, 'sum': self.action_sum}


def traced_env(name, **kwargs):
    """Episodes of 30 steps of task `name`, traced."""
    return Traced(gymnasium.wrappers.TimeLimit(make_env(name, 'post', **kwargs), 30))
