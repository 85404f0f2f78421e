"""Policy evaluation: episodes in an environment, averaged into `evaluation/...` stats."""

from collections import defaultdict

import jax
import numpy as np

from utils.env_slots import episode_env_seed, final_info_stats


def episode_key(seed, episode):
    """The policy key of evaluation episode `episode` of seed `seed` (traceable: used inside jit too)."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), episode)


@jax.jit
def act(agent, observation, key, step):
    """The policy's action at `step` of an episode, in one dispatch (key folding included).

    Temperature 0, as the references evaluate: stochastic actors (IQL, ReBRAC, SAC) act with
    their mean; one-step latent policies (DROL, FQL) still draw their latent.
    """
    return agent.sample_actions(observation, seed=jax.random.fold_in(key, step), temperature=0.0)


def run_episodes(agent, env, num_episodes, seed, render=False):
    """Runs episodes 0 .. num_episodes - 1 with policy keys and env seeds derived from `seed`.

    Episode i uses the same seeds wherever it runs, so the batched evaluation
    (`utils/batched_evaluation.py`) gives the same episodes as this serial loop. Returns
    per-episode stats and frames.
    """
    episodes, videos = [], []
    for episode in range(num_episodes):
        key = episode_key(seed, episode)
        observation, info = env.reset(seed=episode_env_seed(seed, episode))
        total_return, length, done, frames = 0.0, 0, False, []
        while not done:
            action = act(agent, observation, key, length)
            observation, reward, terminated, truncated, info = env.step(np.asarray(action))
            total_return += float(reward)
            length += 1
            done = terminated or truncated
            if render:
                frames.append(env.render())
        episodes.append({'episode.return': total_return, 'episode.length': length, **final_info_stats(info)})
        videos.append(frames)
    return episodes, videos


def summarize(episodes):
    """Means over episodes of every per-episode statistic."""
    values = defaultdict(list)
    for episode in episodes:
        for key, value in episode.items():
            values[key].append(value)
    return {key: float(np.mean(v)) for key, v in values.items()}
