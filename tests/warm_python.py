"""`python main.py ARGS` or `python -m MODULE ARGS` for the tests, started warm: the same process, minus the imports.

Why: the suite starts main.py, the scripts and the benchmarks about 200 times, and a fresh Python
spends about 2 s of CPU importing jax, flax, optax, MuJoCo, OGBench and the project before a
program's first line. A server process imports those once, without starting JAX (a JAX runtime does
not survive `fork`), then forks one child per program. The child is the process `python ARGS` would
be: its own pid, working directory, environment, stdin (empty), stdout and stderr, signal handlers,
JAX runtime, exit handlers and exit status, and the program runs as `__main__` (runpy, as `python`
runs it); only the modules already imported differ. Modules that define command-line flags when
imported are never imported by the server, so a program defines its flags once, as it would.

Variables that a module reads when it is imported (JAX's, MuJoCo's OpenGL choice) are frozen in the
server, so a program whose environment sets them differently starts cold, as a plain subprocess.

The server also builds one OGBench manipulation environment (no rendering, no threads) before it forks:
MuJoCo keeps what it made of the robot's and the cubes' mesh files in memory, and a process's first
OGBench environment otherwise takes 1.2 s to build instead of 0.5 s (every manipulation task shares
those meshes). The models a program builds are the ones it would build cold.
"""

import atexit
import contextlib
import json
import os
import runpy
import signal
import subprocess
import sys
import tempfile
import threading
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Read when jax, mujoco or OpenGL is imported, or by the loader when the process starts (LD_LIBRARY_PATH, which
# the D4RL extra's mujoco_py needs): the server's values hold for every child.
IMPORT_TIME_VARIABLES = ('JAX_', 'MUJOCO_GL', 'PYOPENGL_PLATFORM', 'TF_CPP_', 'PYTHONHASHSEED', 'LD_LIBRARY_PATH')
# What main.py, the scripts and the benchmarks import before their first line: no module here defines flags.
PRELOADED = (
    'jax', 'flax', 'optax', 'ml_collections.config_flags', 'mujoco', 'ogbench', 'gymnasium', 'matplotlib.pyplot',
    'agents', 'envs.env_utils', 'utils.checkpoints', 'utils.config_checks', 'utils.evaluator', 'utils.fused_updates',
    'utils.log_utils', 'utils.online', 'utils.presets', 'utils.run_dir', 'utils.run_state', 'utils.stop_signals',
)  # fmt: skip


def _frozen(env):
    return {key: value for key, value in env.items() if key.startswith(IMPORT_TIME_VARIABLES)}


class WarmPython:
    """The caller's side: one server per test process, started at first use."""

    def __init__(self):
        # The environment when the tests start, before any test changes os.environ; the server starts with it.
        self.server, self.frozen = None, None
        self.env = {**os.environ, 'JAX_PLATFORMS': 'cpu'}  # The tests' programs run on the CPU.

    def start(self, args, env, cwd=ROOT):
        """The pid of a started `python *args` (args[0] a script path or '-m'), and its output files; None
        when `env` changes a variable the server froze at import."""
        if self.server is None:
            self._start_server()
        if not self._fits(env):
            return None
        folder = tempfile.mkdtemp(prefix='warm-python-')
        outputs = os.path.join(folder, 'stdout'), os.path.join(folder, 'stderr')
        request = dict(args=[str(arg) for arg in args], env=env, cwd=str(cwd), stdout=outputs[0], stderr=outputs[1])
        self.server.stdin.write(json.dumps(request) + '\n')
        self.server.stdin.flush()
        return self._reply()['pid'], outputs

    def wait(self, pid, timeout=None):
        """The exit status of the program `start` began; on timeout it is killed and TimeoutExpired raised."""
        timed_out = threading.Event()

        def kill():
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):  # It ended just now.
                os.kill(pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill) if timeout else None
        if timer is not None:
            timer.start()
        returncode = self._reply()['returncode']
        if timer is not None:
            timer.cancel()
        if timed_out.is_set():
            raise subprocess.TimeoutExpired(['python', f'pid {pid}'], timeout)
        return returncode

    def run(self, args, env, cwd=ROOT, timeout=600):
        """As subprocess.run(['python', *args], capture_output=True, text=True), or None (see `start`)."""
        started = self.start(args, env, cwd)
        return None if started is None else self.finish(*started, timeout=timeout)

    def finish(self, pid, outputs, timeout=600):
        """The finished program `start` began, as subprocess.run gives it (exit status, stdout, stderr)."""
        returncode = self.wait(pid, timeout)
        texts = []
        for path in outputs:
            with open(path) as file:
                texts.append(file.read())
            os.remove(path)
        os.rmdir(os.path.dirname(outputs[0]))
        return subprocess.CompletedProcess(['python', f'pid {pid}'], returncode, *texts)

    def _fits(self, env):
        """Whether `env` agrees with the server on every import-time variable; one that the server's own
        imports set (MuJoCo sets PYOPENGL_PLATFORM) may be absent, as it is before the test process imports them."""
        asked, frozen = _frozen(env), self.frozen
        added = frozen.keys() - _frozen(self.env).keys()
        keys = asked.keys() | frozen.keys()
        return all(asked.get(key) == frozen.get(key) or (key in added and key not in asked) for key in keys)

    def _reply(self):
        line = self.server.stdout.readline()
        if not line:
            raise RuntimeError(f'the warm Python server died (exit {self.server.wait()})')
        return json.loads(line)

    def _start_server(self):
        self.server = subprocess.Popen(
            [sys.executable, '-m', 'tests.warm_python'], cwd=ROOT, env=self.env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        atexit.register(self._stop_server)
        self.frozen = self._reply()['frozen']

    def _stop_server(self):
        self.server.stdin.close()
        self.server.wait()


def serve():
    """The server: imports, then one forked child per request line; replies with its pid, then its exit status."""
    import importlib

    for name in PRELOADED:
        importlib.import_module(name)
    _fill_mujoco_mesh_cache()
    replies = os.fdopen(os.dup(1), 'w', buffering=1)
    os.dup2(2, 1)  # Anything the server itself prints stays out of the replies.
    replies.write(json.dumps({'frozen': _frozen(os.environ)}) + '\n')
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            replies.close()
            _child(request)
        replies.write(json.dumps({'pid': pid}) + '\n')
        _, status = os.waitpid(pid, 0)
        replies.write(json.dumps({'returncode': os.waitstatus_to_exitcode(status)}) + '\n')


def _fill_mujoco_mesh_cache():
    """Builds and drops one state-based OGBench environment (module docstring)."""
    import gymnasium

    gymnasium.make('cube-single-v0').close()


def _child(request):
    """Becomes `python ARGS` as the request describes it; never returns."""
    code = 1
    try:
        os.chdir(request['cwd'])
        os.environ.clear()
        os.environ.update(request['env'])
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        for fd, path in ((1, request['stdout']), (2, request['stderr'])):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
        code = _run_program(request['args'])
        atexit._run_exitfuncs()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _run_program(args):
    """`python *args` from here on: the program as `__main__`; the exit status Python would give."""
    try:
        if args[0] == '-m':
            sys.argv, sys.path[0] = [args[1], *args[2:]], os.getcwd()
            sys.modules.pop(args[1], None)  # Preloaded as a dependency: `python -m` finds it unimported.
            runpy.run_module(args[1], run_name='__main__', alter_sys=True)
        elif not os.path.isfile(args[0]):  # Python's own words and status for a missing script.
            print(f"{sys.executable}: can't open file {os.path.abspath(args[0])!r}: [Errno 2] No such file or "
                  'directory', file=sys.stderr)  # fmt: skip
            return 2
        else:
            sys.argv, sys.path[0] = list(args), os.path.dirname(os.path.abspath(args[0]))
            runpy.run_path(args[0], run_name='__main__')
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            return done.code or 0
        print(done.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Python's own exit: the traceback, then death by SIGINT.
        traceback.print_exc()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


if __name__ == '__main__':
    serve()
