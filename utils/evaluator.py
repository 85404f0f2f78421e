"""The evaluator: episodes run serially or shared among worker processes, plus optional videos.

Workers are started once (spawn start method: JAX is not fork-safe) and kept for the
whole run; each evaluation ships only the parameters acting needs (the agent names them),
and each worker runs a contiguous slice of the episode indices. Episode i is seeded the
same way wherever it runs, so the results mean exactly what the serial loop's mean.

The evaluator knows no agent or environment: it is given two picklable factories,
`make_env(**kwargs)` and `make_agent()` (a template whose parameters are replaced).
"""

import multiprocessing
import os
import sys

import flax.serialization
import jax

from utils.evaluation import run_episodes, summarize
from utils.video import save_gif

_WORKER = {}


def inference_params(agent):
    """The parameter groups acting needs; optimiser state, target critic and other networks
    (most of the agent's bytes) stay behind."""
    return {name: agent.network.params[name] for name in agent.inference_module_names(agent.config)}


def _init_worker(make_env, make_agent):
    # Workers act on the CPU, one thread each: a policy forward pass is small, the workers
    # already fill the cores, and the accelerator stays with training.
    os.environ['XLA_FLAGS'] = os.environ.get('XLA_FLAGS', '') + ' --xla_cpu_multi_thread_eigen=false'
    jax.config.update('jax_platforms', 'cpu')
    _WORKER['env'] = make_env()
    _WORKER['template'] = make_agent()


def _run_slice(payload, seed, first_episode, num_episodes):
    template = _WORKER['template']
    params = {**template.network.params, **flax.serialization.from_bytes(inference_params(template), payload)}
    agent = template.replace(network=template.network.replace(params=params))
    episodes, _ = run_episodes(agent, _WORKER['env'], num_episodes, seed, first_episode=first_episode)
    return episodes


class EvalPool:
    """`workers` processes, each with its own environment and agent template."""

    def __init__(self, workers, make_env, make_agent):
        self.workers = workers
        context = multiprocessing.get_context('spawn')
        self.pool = context.Pool(workers, initializer=_init_worker, initargs=(make_env, make_agent))

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


class Evaluator:
    """`evaluation/...` statistics of an agent: serial, or over `workers` processes; GIFs on request."""

    def __init__(self, env, make_env, make_agent, episodes, workers=1, video_episodes=0):
        self.env, self.make_env, self.episodes, self.video_episodes = env, make_env, episodes, video_episodes
        self.pool = EvalPool(workers, make_env, make_agent) if workers > 1 and episodes else None
        self.video_env = None

    def evaluate(self, agent, seed, step, run_dir):
        if self.pool is not None:
            episodes = self.pool.run_episodes(agent, self.episodes, seed)
        else:
            episodes, _ = run_episodes(agent, self.env, self.episodes, seed)
        stats = {f'evaluation/{k}': v for k, v in summarize(episodes).items()}
        if self.video_episodes:
            self.save_video(agent, seed, os.path.join(run_dir, 'videos', f'step_{step}.gif'))
        return stats

    def save_video(self, agent, seed, path):
        """Renders the video episodes to a GIF; a rendering failure (e.g. no OpenGL) is a warning and
        turns videos off for the rest of the run instead of ending it."""
        try:
            if self.video_env is None:
                self.video_env = self.make_env(render_mode='rgb_array')
            _, videos = run_episodes(agent, self.video_env, self.video_episodes, seed + 1, render=True)
            save_gif([frame for frames in videos for frame in frames], path)
        except Exception as error:  # Renderers fail in many ways (GL, EGL, display, codecs).
            self.video_episodes = 0
            print(
                f'warning: video rendering failed ({type(error).__name__}: {error}); continuing without videos.',
                file=sys.stderr,
            )

    def close(self):
        if self.pool is not None:
            self.pool.close()
