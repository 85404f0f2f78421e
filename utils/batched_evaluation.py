"""Batched evaluation: the episodes of A stacked agents stepped together, one policy call per step.

Evaluating A agents episode by episode costs one policy dispatch per agent, episode and step.
Here each agent gets W environment slots, all A x W slots step side by side, and one jitted
call (`batched_actions`) computes every slot's action. Episode i of agent a uses the policy key,
environment seed and step counter that `utils.evaluation.run_episodes(agent_a, env, n, seeds[a])`
gives it, so every per-episode result equals the serial loop's. Agents are any `flax.struct`
pytrees stacked on a leading axis whose `sample_actions(observations, seed=, temperature=)` acts
on one observation.

Why the actions are bitwise those of `act`: vmapping over an agent's episodes turns the actor's
vector-matrix products into matrix products, which XLA on CPU sums in another order; for most
slots the actions then differed from `act`'s in the last bits (up to 3.6e-7), and each episode's
trajectory with them. Batched over agents alone, with each agent's own parameters, the
products stay vector-matrix ones and were measured bit-identical. So only the agent axis is
vmapped (it also follows a seed axis sharded over devices) and an agent's episodes go through
`lax.map`, one observation at a time, exactly as `act` sees them. On the 2-core CPU this call
took 0.47 ms for 8 agents x 10 slots of 2x256 actors (a full vmap 0.25 ms; 80 calls of `act`
about 16 ms).

Memory: an OGBench manipulation environment holds about 150 MB, so the number of environments is
capped (`max_envs`, by default `default_max_envs(workers)`): each agent gets W = min(episodes, max(1, max_envs
// A)) slots, and slot j runs that agent's episodes j, j + W, j + 2W, ... in turn, each slot moving
on as soon as its episode ends. Finished slots stay in the fixed-shape policy call, masked, so it
compiles once per evaluator.

Environments live in the main process (`workers <= 1`) or in `workers` spawned processes that
never run JAX: each owns a fixed range of slots, builds their environments once, and exchanges
actions and observations through a Pipe at every step. A pixel-based task's frames are rendered
there too (about 0.15 s each on a CPU core: the workers are what speeds its evaluation up) and
cross the Pipe as uint8 images, (height, width, channels) per slot. Workers are reused by every
`evaluate` and ended by `close()`, which also runs when constructing or evaluating fails.
"""

import contextlib
import multiprocessing
import signal
import traceback

import jax
import numpy as np

from utils.evaluation import act, episode_env_seed, episode_key, final_info_stats
from utils.quiet_output import quiet_third_party_output


def default_max_envs(workers):
    """Two environments per worker process (the main process counts as one).

    Why so few: an OGBench manipulation environment holds about 150 MB, and the per-step costs that
    batching shares (one policy call, one message per worker) are already small beside the
    environment steps (about 0.9 ms each for cube-single on a CPU core), so more environments per
    worker buy little; more workers are what make evaluation faster. Every agent still gets one
    environment, however many agents there are.
    """
    return 2 * max(1, workers)


@jax.jit
def batched_actions(agents, seeds, episodes, steps, observations):
    """Actions (A, W, action_dim) of `act(agent_a, observation, fold_in(PRNGKey(seeds[a]), episode), step)`
    for every slot; vmapped over agents, `lax.map` over an agent's slots (module docstring: why)."""

    def agent_actions(agent, seed, episodes, steps, observations):
        def slot_action(slot):
            episode, step, observation = slot
            return act(agent, observation, episode_key(seed, episode), step)

        return jax.lax.map(slot_action, (episodes, steps, observations))

    return jax.vmap(agent_actions)(agents, seeds, episodes, steps, observations)


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


class BatchedEvaluator:
    """Per-episode stats of `episodes` episodes for each of A stacked agents, `make_envs[a]` making agent a's
    environments (picklable zero-argument factories when `workers > 1`); use it as a context manager or
    call `close()`."""

    def __init__(self, make_envs, episodes, workers=1, max_envs=None):
        if episodes < 1:
            raise ValueError(f'episodes must be at least 1, got {episodes}')
        self.num_agents, self.episodes = len(make_envs), episodes
        max_envs = default_max_envs(workers) if max_envs is None else max_envs
        self.envs_per_agent = min(episodes, max(1, max_envs // self.num_agents))
        slot_envs = [make_env for make_env in make_envs for _ in range(self.envs_per_agent)]
        self.groups = []
        try:
            if workers <= 1:
                self.bounds = [0, len(slot_envs)]
                self.groups.append(LocalSlots(slot_envs))
            else:
                self.bounds = np.linspace(0, len(slot_envs), min(workers, len(slot_envs)) + 1).astype(int).tolist()
                context = multiprocessing.get_context('spawn')
                for lo, hi in zip(self.bounds[:-1], self.bounds[1:], strict=True):
                    self.groups.append(WorkerSlots(context, slot_envs[lo:hi]))
            for group in self.groups:
                group.receive()
        except BaseException:
            self.close()
            raise

    def evaluate(self, agents, seeds):
        """[agent][episode] -> the dict `run_episodes(agent, make_envs[agent](), episodes, seeds[agent])`
        gives for that episode. An error here closes the evaluator (workers may be mid-request)."""
        if not self.groups:
            raise RuntimeError('this BatchedEvaluator is closed')
        if len(seeds) != self.num_agents:
            raise ValueError(f'{len(seeds)} seeds for {self.num_agents} agents')
        try:
            return self._evaluate(agents, [int(seed) for seed in seeds])
        except BaseException:
            self.close()
            raise

    def _evaluate(self, agents, seeds):
        width = self.envs_per_agent
        schedules = [
            (a, seeds[a], range(j, self.episodes, width)) for a in range(self.num_agents) for j in range(width)
        ]
        results = [{} for _ in range(self.num_agents)]
        state = self._request('start', schedules)
        seed_array = np.asarray(seeds, np.int32)
        while True:
            (observations, episodes, steps), ended = state
            for agent, episode, stats in ended:
                results[agent][episode] = stats
            if np.all(episodes < 0):
                return [[result[e] for e in range(self.episodes)] for result in results]
            grid = (self.num_agents, width)
            # Observations keep their shape per slot: a pixel-based task's are (height, width, channels) images.
            observations = observations.reshape(*grid, *observations.shape[1:])
            actions = batched_actions(agents, seed_array, episodes.reshape(grid), steps.reshape(grid), observations)
            state = self._request('step', np.asarray(actions).reshape(self.num_agents * width, -1))

    def _request(self, method, per_slot):
        """Sends every group its slots' rows of `per_slot`, then joins the answers in slot order."""
        for group, lo, hi in zip(self.groups, self.bounds[:-1], self.bounds[1:], strict=True):
            group.send(method, per_slot[lo:hi])
        answers = [group.receive() for group in self.groups]
        states = [state for state, _ in answers]
        joined = tuple(np.concatenate(parts) for parts in zip(*states, strict=True))
        return joined, [item for _, ended in answers for item in ended]

    def close(self):
        """Ends the workers (or closes the local environments); safe to call more than once."""
        groups, self.groups = self.groups, []
        with contextlib.ExitStack() as stack:  # Every group is closed even if one fails to.
            for group in groups:
                stack.callback(group.close)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
