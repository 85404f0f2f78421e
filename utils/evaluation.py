"""Policy evaluation: episodes in an environment, averaged into `evaluation/...` stats."""

from collections import defaultdict

import jax
import numpy as np


def final_info_stats(info):
    """Scalar numeric entries of an episode's last info dict (e.g. success, normalized_return)."""
    stats = {}
    for key, value in info.items():
        if isinstance(value, (bool, int, float, np.bool_, np.number)) or (
            isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in 'biuf'
        ):
            stats[key] = float(value)
    return stats


@jax.jit
def act(agent, observation, episode_key, step):
    """The policy's action at `step` of an episode, in one dispatch (key folding included).

    Temperature 0, as the references evaluate: stochastic actors (IQL, ReBRAC, SAC) act with
    their mean; one-step latent policies (DROL, FQL) still draw their latent.
    """
    return agent.sample_actions(observation, seed=jax.random.fold_in(episode_key, step), temperature=0.0)


def run_episodes(agent, env, num_episodes, seed, first_episode=0, render=False):
    """Runs episodes `first_episode ..` with policy keys and env seeds derived from `seed`.

    Episode i uses the same seeds wherever it runs, so splitting episodes over workers
    gives the same episodes as one serial loop. Returns per-episode stats and frames.
    """
    episodes, videos = [], []
    for episode in range(first_episode, first_episode + num_episodes):
        episode_key = jax.random.fold_in(jax.random.PRNGKey(seed), episode)
        observation, info = env.reset(seed=seed * 100_003 + episode)
        total_return, length, done, frames = 0.0, 0, False, []
        while not done:
            action = act(agent, observation, episode_key, length)
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
