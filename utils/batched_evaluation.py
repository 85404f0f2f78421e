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
never import JAX (`utils/env_slots.py`): each owns a fixed range of slots, builds their environments once, and exchanges
actions and observations through a Pipe at every step. A pixel-based task's frames are rendered
there too (about 0.15 s each on a CPU core: the workers are what speeds its evaluation up) and
cross the Pipe as uint8 images, (height, width, channels) per slot. Workers are reused by every
`evaluate` and ended by `close()`, which also runs when constructing or evaluating fails.
"""

import contextlib
import multiprocessing

import jax
import numpy as np

from utils.env_slots import LocalSlots, WorkerSlots
from utils.evaluation import act, episode_key


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
