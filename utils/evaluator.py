"""The evaluator of a run: every agent's episodes stepped together, plus optional videos.

A run stacks its (task, seed) agents; `utils/batched_evaluation.py` steps all their episodes
side by side (one policy call per environment step for all of them, environments in `workers`
processes), with the seeds of the serial loop, so each agent's statistics are those
`run_episodes` gives it alone. Videos are rendered serially per agent, as before, from
`video_episodes` extra episodes.

The evaluator knows no agent or environment: it is given one picklable factory per agent,
`make_envs[i](**kwargs)` (kwargs: `render_mode` for videos). It builds the environments (and starts
their workers) at the first evaluation, not before: a run that never evaluates (`--eval_interval=0`)
builds none (an OGBench manipulation environment takes about 1.2 s to build and holds ~150 MB).
"""

import os
import sys

from utils.batched_evaluation import BatchedEvaluator
from utils.evaluation import run_episodes, summarize
from utils.fused_updates import unstack_seed
from utils.video import save_gif


class Evaluator:
    """`evaluation/...` statistics of stacked agents (one dict per agent); GIFs on request."""

    def __init__(self, make_envs, episodes, workers=1, video_episodes=0):
        self.make_envs, self.episodes, self.workers, self.video_episodes = make_envs, episodes, workers, video_episodes
        self.batched = None  # Built at the first evaluation (module docstring).
        self.video_envs = {}

    def evaluate(self, agents, seeds, step, run_dirs):
        """[stats of agent i] for the stacked `agents`, agent i acting with evaluation seed `seeds[i]`;
        its video (if any) goes to `run_dirs[i]/videos/step_<step>.gif`."""
        if self.batched is None and self.episodes:
            self.batched = BatchedEvaluator(self.make_envs, self.episodes, workers=self.workers)
        results = self.batched.evaluate(agents, seeds) if self.batched is not None else [[] for _ in seeds]
        stats = [{f'evaluation/{k}': v for k, v in summarize(episodes).items()} for episodes in results]
        for i, (seed, run_dir) in enumerate(zip(seeds, run_dirs, strict=True)):
            if self.video_episodes:
                self.save_video(i, unstack_seed(agents, i), seed, os.path.join(run_dir, 'videos', f'step_{step}.gif'))
        return stats

    def save_video(self, index, agent, seed, path):
        """Renders the video episodes to a GIF; a rendering failure (e.g. no OpenGL) is a warning and
        turns videos off for the rest of the run instead of ending it."""
        try:
            make_env = self.make_envs[index]  # Agents sharing a factory (one task's) share its video environment.
            if make_env not in self.video_envs:
                self.video_envs[make_env] = make_env(render_mode='rgb_array')
            _, videos = run_episodes(agent, self.video_envs[make_env], self.video_episodes, seed + 1, render=True)
            save_gif([frame for frames in videos for frame in frames], path)
        except Exception as error:  # Renderers fail in many ways (GL, EGL, display, codecs).
            self.video_episodes = 0
            print(
                f'warning: video rendering failed ({type(error).__name__}: {error}); continuing without videos.',
                file=sys.stderr,
            )

    def close(self):
        if self.batched is not None:
            self.batched.close()
