"""The tests run with float32 matrix products, in this process and in the processes they start.

tests/conftest.py sets it. XLA on the CPU ignores precision hints (a 'bfloat16' and a 'highest'
product are equal there), so these tests read the configuration in force rather than numbers: on a
GPU or a TPU, the same configuration is what keeps the golden comparisons at float32.
"""

import os
import subprocess
import sys

import jax

from tests.conftest import pin_float32_matrix_products
from tests.helpers import ROOT, run_main
from utils.precision import PRECISION_VARIABLE, compute_dtype

READ_PRECISION = 'import jax; print(jax.config.jax_default_matmul_precision)'


def test_this_process_multiplies_in_float32():
    assert jax.config.jax_default_matmul_precision == 'highest'


def test_every_test_starts_pinned_whatever_the_test_before_chose(request):
    """conftest re-pins before every test (an autouse fixture), so a test that set another precision,
    as a test of `--precision` may, cannot leave it to the tests after it (in any order, on any
    pytest-xdist worker)."""
    assert 'float32_matrix_products' in request.fixturenames
    jax.config.update('jax_default_matmul_precision', 'bfloat16')
    os.environ.pop('JAX_DEFAULT_MATMUL_PRECISION', None)
    os.environ[PRECISION_VARIABLE] = 'bf16'
    pin_float32_matrix_products()
    assert jax.config.jax_default_matmul_precision == 'highest'
    assert os.environ['JAX_DEFAULT_MATMUL_PRECISION'] == 'highest' and compute_dtype() is None


def test_a_process_started_by_a_test_multiplies_in_float32():
    """Started as tests start main.py and the scripts (tests.helpers.run_main): the test's
    environment with JAX_PLATFORMS added."""
    result = subprocess.run(
        [sys.executable, '-c', READ_PRECISION],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, 'JAX_PLATFORMS': 'cpu'},
        check=True,
    )
    assert result.stdout.strip() == 'highest'


def test_main_started_by_a_test_multiplies_in_float32():
    """main.py's default `--precision` keeps the exported pin and says so in its first line; an
    unknown environment ends the run right after it, before anything is written."""
    result = run_main('--env_name=no-such-env', check=False)
    assert result.stdout.splitlines()[0] == (
        'Precision default on cpu: jax_default_matmul_precision=highest, as exported in JAX_DEFAULT_MATMUL_PRECISION.'
    )
