"""Shared fixtures: tiny OGBench-format datasets made from real environment rollouts."""

import os

import pytest

from tests.helpers import write_ogbench_dataset

os.environ.setdefault('MUJOCO_GL', 'egl')


@pytest.fixture(scope='session')
def cube_single_dataset(tmp_path_factory):
    """Path of a tiny cube-single-play-v0.npz (with its -val file)."""
    folder = tmp_path_factory.mktemp('ogbench')
    return write_ogbench_dataset(str(folder / 'cube-single-play-v0.npz'))
