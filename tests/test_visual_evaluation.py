"""Evaluation of pixel-based tasks: frame-stacked observations as the FQL FrameStackWrapper builds them, and the
batched evaluator (frames rendered in its worker processes) giving the serial loop's episodes."""

import functools
import zlib

import flax
import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs.env_utils import make_env
from envs.frame_stack import ChannelFrameStack
from utils.batched_evaluation import BatchedEvaluator
from utils.evaluation import run_episodes
from utils.fused_updates import stack_seeds

TASK = 'visual-cube-single-play-task1'


class CountingFrames(gymnasium.Env):
    """2 x 2 x 3 uint8 frames filled with 10 * (resets so far) + (steps in the episode)."""

    observation_space = gymnasium.spaces.Box(0, 255, (2, 2, 3), np.uint8)
    action_space = gymnasium.spaces.Box(-1, 1, (1,), np.float32)

    def __init__(self):
        self.resets, self.steps = 0, 0

    def _frame(self):
        return np.full((2, 2, 3), 10 * self.resets + self.steps, np.uint8)

    def reset(self, *, seed=None, options=None):
        self.resets, self.steps = self.resets + 1, 0
        return self._frame(), {}

    def step(self, action):
        self.steps += 1
        return self._frame(), 0.0, False, False, {}


def _frames_in(observation):
    """The value of each stacked frame, oldest first (each frame is constant)."""
    return [int(observation[0, 0, 3 * i]) for i in range(observation.shape[-1] // 3)]


def test_frames_stack_on_the_channel_axis_with_the_first_repeated_after_reset():
    env = ChannelFrameStack(CountingFrames(), 3)
    assert env.observation_space.shape == (2, 2, 9) and env.observation_space.dtype == np.uint8
    observation, _ = env.reset()
    assert observation.shape == (2, 2, 9) and observation.dtype == np.uint8
    assert observation in env.observation_space
    assert _frames_in(observation) == [10, 10, 10]
    seen = [_frames_in(env.step(np.zeros(1))[0]) for _ in range(4)]
    assert seen == [[10, 10, 11], [10, 11, 12], [11, 12, 13], [12, 13, 14]]
    assert _frames_in(env.reset()[0]) == [20, 20, 20]  # Nothing of the previous episode stays.
    assert _frames_in(env.step(np.zeros(1))[0]) == [20, 20, 21]
    assert _frames_in(ChannelFrameStack(CountingFrames(), 1).reset()[0]) == [10]


class PixelSums(flax.struct.PyTreeNode):
    """A stand-in policy that acts on every pixel of every stacked frame, in integers (exact in any order), so
    that equal actions mean equal observations."""

    scale: jax.Array

    def sample_actions(self, observations, seed=None, temperature=1.0):
        sums = jnp.sum(observations.astype(jnp.int32), axis=(0, 1))[:5]
        return ((sums * self.scale) % 2001 - 1000).astype(jnp.float32) / 1000


class ObservationDigest(gymnasium.Wrapper):
    """A CRC of every observation of the episode in the last info: one differing pixel changes it."""

    def reset(self, **kwargs):
        observation, info = self.env.reset(**kwargs)
        self.digest = zlib.crc32(observation.tobytes())
        return observation, info

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.digest = zlib.crc32(observation.tobytes(), self.digest)
        return observation, reward, terminated, truncated, {**info, 'observation_digest': self.digest}


def short_visual_env(steps):
    """The visual task with 3 stacked frames, cut to `steps` steps (picklable through functools.partial)."""
    env = make_env(TASK, frame_stack=3)
    return ObservationDigest(gymnasium.wrappers.TimeLimit(env, max_episode_steps=steps))


SEEDS, EPISODES, STEPS = [3, 4], 1, 3


@pytest.mark.slow
def test_reading_the_observation_space_renders_no_frame(monkeypatch):
    """OGBench renders a frame for every read of a pixel-based task's observation space (0.15 to 0.3 s on a CPU);
    the environments made here read it once, so checking a dataset and wrapping the environment render nothing."""
    env = make_env(TASK)
    renders = []
    render = type(env.unwrapped).render
    monkeypatch.setattr(type(env.unwrapped), 'render', lambda self, *args: renders.append(1) or render(self, *args))
    space = ChannelFrameStack(env, 3).observation_space
    assert [env.observation_space for _ in range(3)] and renders == []
    assert space.shape == (64, 64, 9) and space.dtype == np.uint8
    assert env.reset(seed=0)[0].shape == env.observation_space.shape


@pytest.mark.slow
def test_batched_visual_episodes_rendered_in_workers_equal_serial():
    agents = [PixelSums(scale=jnp.asarray(scale, jnp.int32)) for scale in ([1, 3, 5, 7, 9], [2, 4, 6, 8, 10])]
    make_envs = [functools.partial(short_visual_env, STEPS)] * 2
    serial_env = make_envs[0]()
    first, _ = serial_env.reset(seed=0)
    assert first.shape == (64, 64, 9) and first.dtype == np.uint8
    assert np.array_equal(first[..., :3], first[..., 3:6]) and np.array_equal(first[..., :3], first[..., 6:])
    serial = [run_episodes(agent, serial_env, EPISODES, seed)[0] for agent, seed in zip(agents, SEEDS, strict=True)]
    with BatchedEvaluator(make_envs, EPISODES, workers=2, max_envs=2) as evaluator:
        batched = evaluator.evaluate(stack_seeds(agents), SEEDS)
    assert [[episode['episode.length'] for episode in agent] for agent in batched] == [[STEPS] * EPISODES] * 2
    assert len({episode['observation_digest'] for agent in batched for episode in agent}) == 2 * EPISODES
    assert batched == serial
