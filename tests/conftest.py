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


@pytest.fixture(scope='session', autouse=True)
def compilation_cache_for_started_programs(tmp_path_factory):
    """A persistent JAX compilation cache shared by every main.py, script and benchmark the tests start.

    Those programs compile the same tiny networks again and again, and compiling is most of a tiny
    run's cost: a 20-step main.py run takes about 27 s of CPU without the cache and 9 s when an earlier
    run left its programs there. A cached program is the one XLA compiled, so every number is the same
    (train.csv, eval.csv and parameters compared). The folder is this worker's own: JAX writes entries
    in place, so two processes of parallel workers could otherwise read a half-written one. The tests'
    own process has read its JAX settings at import and keeps compiling in memory.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('JAX_COMPILATION_CACHE_DIR', str(tmp_path_factory.mktemp('jax_cache')))
        patch.setenv('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
        yield


@pytest.hookimpl(optionalhook=True)  # Without pytest-xdist, pytest does not know this hook.
def pytest_xdist_auto_num_workers(config):
    """`-n auto` (pyproject's addopts): one worker per core, at most four, since each worker and the
    programs it starts hold a JAX process (1-2 GB) and more workers than cores only wait on each other."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1
    return min(4, cores)
