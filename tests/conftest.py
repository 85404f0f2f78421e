"""Shared fixtures: tiny OGBench-format datasets made from real environment rollouts."""

import os

import gymnasium
import numpy as np
import pytest

os.environ.setdefault('MUJOCO_GL', 'egl')


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


@pytest.fixture(scope='session')
def cube_single_dataset(tmp_path_factory):
    """Path of a tiny cube-single-play-v0.npz (with its -val file)."""
    folder = tmp_path_factory.mktemp('ogbench')
    return write_ogbench_dataset(str(folder / 'cube-single-play-v0.npz'))
