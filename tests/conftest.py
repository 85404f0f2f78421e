"""Shared fixtures: tiny OGBench-format datasets made from real environment rollouts; float32
matrix products in every test and in every process a test starts."""

import os

import jax
import pytest

from tests.helpers import write_ogbench_dataset

os.environ.setdefault('MUJOCO_GL', 'egl')

# Tests compare numbers with the CPU fixtures or with another computation, so they pin float32
# matrix products: a GPU's default (TF32) or a TPU's (bfloat16 passes) moves a product by ~1e-3,
# far beyond the golden tolerances. The variable is jax's own, read when jax is imported, so every
# main.py, script or worker a test starts inherits it; XLA on the CPU computes float32 either way.
MATMUL_PRECISION = 'highest'


def pin_float32_matrix_products():
    os.environ['JAX_DEFAULT_MATMUL_PRECISION'] = MATMUL_PRECISION
    jax.config.update('jax_default_matmul_precision', MATMUL_PRECISION)


pin_float32_matrix_products()


@pytest.fixture(autouse=True)
def float32_matrix_products():
    """Pins the precision again before every test, so that a test that chose another one cannot
    leave it to the tests after it."""
    pin_float32_matrix_products()


@pytest.fixture(scope='session')
def cube_single_dataset(tmp_path_factory):
    """Path of a tiny cube-single-play-v0.npz (with its -val file)."""
    folder = tmp_path_factory.mktemp('ogbench')
    return write_ogbench_dataset(str(folder / 'cube-single-play-v0.npz'))
