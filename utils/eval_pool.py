"""Evaluation episodes shared among worker processes.

Workers are started once (spawn start method: JAX is not fork-safe) and kept for the
whole run; each evaluation ships the agent's parameters as bytes and each worker runs a
contiguous slice of the episode indices. Episode i is seeded the same way wherever it
runs, so the results mean exactly what the serial loop's mean.
"""

import multiprocessing
import os

import flax.serialization
import jax

from utils.evaluation import run_episodes

_WORKER = {}


def inference_params(agent):
    """What acting needs (the agent says which parameter groups); optimiser state, target
    critic and other networks (most of the agent's bytes) stay behind."""
    return {name: agent.network.params[name] for name in agent.inference_module_names(agent.config)}


def _init_worker(env_name, success_timing, agent_name, config, ex_observations, ex_actions):
    # Workers act on the CPU, one thread each: a policy forward pass is small, the workers
    # already fill the cores, and the accelerator stays with training.
    os.environ['XLA_FLAGS'] = os.environ.get('XLA_FLAGS', '') + ' --xla_cpu_multi_thread_eigen=false'
    jax.config.update('jax_platforms', 'cpu')
    from agents import AGENTS
    from envs.env_utils import make_env

    _WORKER['env'] = make_env(env_name, success_timing)
    _WORKER['template'] = AGENTS[agent_name].create(0, ex_observations, ex_actions, config)


def _run_slice(payload, seed, first_episode, num_episodes):
    template = _WORKER['template']
    params = {**template.network.params, **flax.serialization.from_bytes(inference_params(template), payload)}
    agent = template.replace(network=template.network.replace(params=params))
    episodes, _ = run_episodes(agent, _WORKER['env'], num_episodes, seed, first_episode=first_episode)
    return episodes


class EvalPool:
    def __init__(self, workers, env_name, success_timing, agent_name, config, ex_observations, ex_actions):
        self.workers = workers
        context = multiprocessing.get_context('spawn')
        self.pool = context.Pool(
            workers,
            initializer=_init_worker,
            initargs=(env_name, success_timing, agent_name, config, ex_observations, ex_actions),
        )

    def run_episodes(self, agent, num_episodes, seed):
        """Per-episode stats of `num_episodes` episodes, in episode order."""
        payload = flax.serialization.to_bytes(jax.device_get(inference_params(agent)))
        base, extra = divmod(num_episodes, self.workers)
        jobs, first = [], 0
        for worker in range(self.workers):
            count = base + (worker < extra)
            if count:
                jobs.append((payload, seed, first, count))
            first += count
        return [episode for part in self.pool.starmap(_run_slice, jobs) for episode in part]

    def close(self):
        self.pool.close()
        self.pool.join()
