"""Shared fixtures: tiny OGBench-format datasets made from real environment rollouts; float32
matrix products, one compilation cache, XLA's cheap passes (tests/compile_flags.py) and single-threaded
software rendering in every test and in every process a test starts."""

import atexit
import os
import shutil
import sys
import tempfile

import pytest

from tests.compile_flags import with_fast_compile

# One persistent JAX compilation cache for the whole session: the test processes (pytest-xdist's
# workers), every main.py, script and benchmark they start. They compile the same tiny networks again
# and again, and compiling is most of a tiny run's cost (a 20-step main.py run: 27 s of CPU without
# the cache, 9 s with it). A cached program is the one XLA compiled, so no number changes. No size limit
# (JAX's default): with one, every write listed the whole folder and read each entry's access time under a
# lock that every other process's reads waited on (88 ms a write once it held the suite's 1,800 programs;
# the suite took about 60 worker-seconds more, one run each way). Without it, a process that reads an
# entry while another is still writing it finds it damaged: JAX warns and compiles that program again,
# the same program. The variables are set before jax is imported: pytest's first process sets them (and
# XLA's cheap passes, tests/compile_flags.py) and removes the folder at exit; the workers it starts
# inherit them.
if 'DROL_TEST_COMPILATION_CACHE' not in os.environ:
    _cache = tempfile.mkdtemp(prefix='drol-tests-jax-cache-')
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    os.environ.update(
        DROL_TEST_COMPILATION_CACHE=_cache,
        JAX_COMPILATION_CACHE_DIR=_cache,
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0',
        XLA_FLAGS=with_fast_compile(os.environ.get('XLA_FLAGS')),
    )

import jax  # noqa: E402  (after the cache variables, which jax reads when imported)


def end_worker_without_jax_clean_up():
    """An xdist worker's last exit handler: the process ends before JAX's own (jax.clean_up), which destroys every
    program and buffer the worker made one by one: 7-9 s in the worker that finished last (two instrumented runs
    of the suite), and pytest waits for that worker to exit. Its results have been sent by then, every handler
    registered after jax was imported (the warm server's stop, multiprocessing's, MuJoCo's) has run, and the
    operating system frees the memory at once."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if 'PYTEST_XDIST_WORKER' in os.environ:
    atexit.register(end_worker_without_jax_clean_up)  # Exit handlers run last-registered first: before jax's.

from utils.precision import PRECISION_VARIABLE  # noqa: E402

os.environ.setdefault('MUJOCO_GL', 'egl')
# Without a GPU, EGL renders with Mesa's llvmpipe, which by default splits each frame over every core: a
# 64 x 64 OGBench frame then costs 0.18 CPU-s instead of 0.15 in the rendering thread alone (the same pixels),
# and the tests' two workers already keep both cores busy. Read when a process first renders.
os.environ.setdefault('LP_NUM_THREADS', '0')

# Tests compare numbers with the CPU fixtures or with another computation, so they pin float32
# matrix products: a GPU's default (TF32) or a TPU's (bfloat16 passes) moves a product by ~1e-3,
# far beyond the golden tolerances. The variable is jax's own, read when jax is imported, so every
# main.py, script or worker a test starts inherits it; XLA on the CPU computes float32 either way.
MATMUL_PRECISION = 'highest'


def pin_float32_matrix_products():
    """float32 products, and no bfloat16 cast of the networks' operands (`--precision=bf16`: PRECISION_VARIABLE,
    read when a network is traced; a test of it that left it set made every later test's networks bfloat16)."""
    os.environ['JAX_DEFAULT_MATMUL_PRECISION'] = MATMUL_PRECISION
    os.environ.pop(PRECISION_VARIABLE, None)
    jax.config.update('jax_default_matmul_precision', MATMUL_PRECISION)


pin_float32_matrix_products()

# After the variables above: the server that starts the tests' programs warm keeps the environment it sees here.
from tests.helpers import write_ogbench_dataset  # noqa: E402


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


def pytest_collection_modifyitems(items):
    """The end-to-end tests (marked slow: up to two minutes each) first, the others in their order after them.

    Why: pytest-xdist hands each worker a contiguous half of this list and lets an idle worker take tests from
    the end of the other's. In file order, README's commands and the pixel runs came last, where one worker could
    be left running a long test while the other had nothing left; started first, short tests fill the time around
    them. (A simulation of the scheduling with measured durations puts the gain at a few seconds.)"""
    items.sort(key=lambda item: item.get_closest_marker('slow') is None)


@pytest.hookimpl(optionalhook=True)  # Without pytest-xdist, pytest does not know this hook.
def pytest_xdist_auto_num_workers(config):
    """`-n auto` (pyproject's addopts): one worker per core, at most four, since each worker and the
    programs it starts hold a JAX process (1-2 GB) and more workers than cores only wait on each other."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1
    return min(4, cores)
