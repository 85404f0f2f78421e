"""The warm start of the tests' programs (tests/warm_python.py) gives what a fresh `python` gives."""

import subprocess
import sys
import time

import pytest

from tests.helpers import WARM_PYTHON, program_env, run_python

SCRIPT = """import os, sys
print('out', sys.argv[1:], __name__, os.getcwd())
print('err', os.environ['WARM_TEST'], file=sys.stderr)
sys.exit(int(sys.argv[1]))
"""


def test_a_program_gets_the_exit_status_output_cwd_and_environment_a_fresh_python_gives(tmp_path):
    script = tmp_path / 'script.py'
    script.write_text(SCRIPT)
    for status in ('0', '3'):  # The second also finishes before its start is read, at times: no wait on it.
        warm = run_python(str(script), status, cwd=tmp_path, env={'WARM_TEST': 'x'})
        cold = subprocess.run([sys.executable, str(script), status], cwd=tmp_path, env=program_env({'WARM_TEST': 'x'}),
                              capture_output=True, text=True)  # fmt: skip
        assert (warm.returncode, warm.stdout, warm.stderr) == (cold.returncode, cold.stdout, cold.stderr)
        assert warm.returncode == int(status) and f"out ['{status}'] __main__ {tmp_path}" in warm.stdout


def test_a_program_past_its_timeout_is_killed(tmp_path):
    script = tmp_path / 'sleeps.py'
    script.write_text('import time\ntime.sleep(60)\n')
    start = time.time()
    with pytest.raises(subprocess.TimeoutExpired):
        WARM_PYTHON.run([str(script)], program_env(), timeout=1)
    assert time.time() - start < 30
    missing = tmp_path / 'missing.py'  # The server still serves, and a missing script fails as Python fails it.
    warm = run_python(str(missing))
    cold = subprocess.run([sys.executable, str(missing)], capture_output=True, text=True)
    assert (warm.returncode, warm.stdout, warm.stderr) == (cold.returncode, cold.stdout, cold.stderr)
    assert cold.returncode == 2
