"""The environment side of evaluation: environments that run queues of episodes, in this process or in
worker processes, and how an evaluation episode's environment is seeded.

Why a module of its own, without JAX: a worker process (`WorkerSlots`) is spawned, so it imports what it
unpickles: this module and the environment factories. Importing jax there cost each worker about 2.3 s of CPU
(of about 5 s to start one) for code it never runs; the workers only step environments.
"""

import contextlib
import signal
import traceback

import numpy as np

from utils.quiet_output import quiet_third_party_output


def final_info_stats(info):
    """Scalar numeric entries of an episode's last info dict (e.g. success, normalized_return)."""
    stats = {}
    for key, value in info.items():
        if isinstance(value, (bool, int, float, np.bool_, np.number)) or (
            isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in 'biuf'
        ):
            stats[key] = float(value)
    return stats


def episode_env_seed(seed, episode):
    """The environment reset seed of evaluation episode `episode` of seed `seed`."""
    return seed * 100_003 + episode


class EnvSlots:
    """Environments that each run a queue of one agent's episodes, seeded as `run_episodes` seeds them.

    `start` and `step` return the slots' state: observations, current episode indices (-1 once a
    slot's queue is done) and step counters, plus the (agent, episode, stats) of episodes that ended.
    """

    def __init__(self, make_envs):
        self.envs = [make_env() for make_env in make_envs]

    def start(self, schedules):
        """`schedules[slot]` = (agent, seed, episode indices): resets every slot to its first episode."""
        self.queues = [(agent, seed, list(episodes)) for agent, seed, episodes in schedules]
        self.observations = [None] * len(self.envs)
        self.episodes = np.full(len(self.envs), -1)
        self.steps = np.zeros(len(self.envs), int)
        self.returns = [0.0] * len(self.envs)
        for slot in range(len(self.envs)):
            self._next_episode(slot)
        return self._state(), []

    def step(self, actions):
        """Steps every running slot with its row of `actions`; an ended episode's slot resets to its next."""
        ended = []
        for slot in np.flatnonzero(self.episodes >= 0):
            observation, reward, terminated, truncated, info = self.envs[slot].step(actions[slot])
            self.observations[slot] = observation
            self.returns[slot] += float(reward)
            self.steps[slot] += 1
            if terminated or truncated:
                stats = {'episode.return': self.returns[slot], 'episode.length': int(self.steps[slot])}
                ended.append((self.queues[slot][0], int(self.episodes[slot]), {**stats, **final_info_stats(info)}))
                self._next_episode(slot)
        return self._state(), ended

    def _next_episode(self, slot):
        agent, seed, queue = self.queues[slot]
        if not queue:
            self.episodes[slot] = -1  # Its last observation stays, a placeholder for the masked policy call.
            return
        episode = queue.pop(0)
        self.observations[slot], _ = self.envs[slot].reset(seed=episode_env_seed(seed, episode))
        self.episodes[slot], self.steps[slot], self.returns[slot] = episode, 0, 0.0

    def _state(self):
        return np.stack(self.observations), self.episodes.copy(), self.steps.copy()

    def close(self):
        for env in self.envs:
            env.close()


class LocalSlots:
    """EnvSlots in this process, behind the workers' send/receive interface."""

    def __init__(self, make_envs):
        self.slots = EnvSlots(make_envs)
        self.result = None  # Construction is the first request; its answer is empty.

    def send(self, method, *args):
        self.result = getattr(self.slots, method)(*args)

    def receive(self):
        return self.result

    def close(self):
        self.slots.close()


@contextlib.contextmanager
def _sigint_blocked():
    """Holds back SIGINT while a worker starts: it inherits the blocked signal until it ignores it,
    and the parent receives a Ctrl-C pressed meanwhile on leaving the block."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class WorkerSlots:
    """EnvSlots in a spawned process; `send` a request to all workers first, then `receive` each answer."""

    def __init__(self, context, make_envs):
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, make_envs), daemon=True)
        with _sigint_blocked():
            self.process.start()
        child.close()

    def send(self, method, *args):
        self.connection.send((method, args))

    def receive(self):
        status, value = self.connection.recv()
        if status == 'error':
            raise RuntimeError(f'an evaluation worker failed:\n{value}')
        return value

    def close(self):
        """Asks the worker to exit; one that does not within 10 s (stuck or dead) is terminated."""
        try:
            self.connection.send(('close', ()))
        except OSError:  # It already exited (after an error) and closed its end.
            pass
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()
        self.connection.close()


def _serve(connection, make_envs):
    """A worker: builds its environments, then answers EnvSlots requests until 'close' or an error.

    It ignores Ctrl-C: the parent alone handles it and closes the workers, so a terminal's SIGINT
    to the process group gives no traceback per worker.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # Blocked by the parent while spawning.
    quiet_third_party_output()
    slots = None
    try:
        slots = EnvSlots(make_envs)
        connection.send(('ok', None))
        method, args = connection.recv()
        while method != 'close':
            connection.send(('ok', getattr(slots, method)(*args)))
            method, args = connection.recv()
    except EOFError:  # The parent is gone.
        pass
    except Exception:
        connection.send(('error', traceback.format_exc()))
    finally:
        if slots is not None:
            slots.close()
        connection.close()
