"""The online phase of a run: each seed acts in its own environment on the host, one step per
update, and its transitions go into its replay buffer on the device.

One online step, as in the FQL codebase: act on the current observation (temperature 1), step
the environment, add the transition, make one update on a batch from the buffer (or half from
the offline data, half from the buffer, with balanced sampling). Episodes end on termination or
time limit; the environment is then reset.

Exact resume: episode e of a seed starts from `env.reset(seed=episode_seed(seed, e))`, so its
state is a function of that seed and the episode's actions so far. A checkpoint stores those
actions (not the simulator), the buffer, the acting key and the finished-episode statistics not
yet logged; restoring resets the environment with the episode's seed and replays the actions.
The replayed observation is compared with the saved one; should a simulator ever fail to
replay exactly, the episode is abandoned with a warning and the next one starts.
"""

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np

from utils.datasets import sample_batch
from utils.env_slots import final_info_stats
from utils.fused_updates import host_seeds, nonfinite_flags, over_seeds, shard_seeds, stack_seeds
from utils.replay_buffer import ReplayBuffer


def acting_key(seed):
    """The key of a seed's exploration noise, distinct from its agent and data-order keys."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), 0x0411E)


def episode_seed(seed, episode):
    """The environment seed of online episode `episode` (evaluation uses seed * 100_003 + episode)."""
    return (seed + 1) * 1_000_003 + episode


class Explorer:
    """One seed's environment in the online phase: its current episode and the episodes not yet logged."""

    def __init__(self, env, seed, reward_shift=0.0):
        self.env, self.seed, self.reward_shift = env, seed, reward_shift
        self.episode, self.finished = 0, []
        self._start()

    def _start(self):
        self.observation, _ = self.env.reset(seed=episode_seed(self.seed, self.episode))
        self.actions, self.episode_return = [], 0.0

    def step(self, action):
        """Steps the environment with `action`; returns the transition (rewards shifted by `reward_shift`)."""
        next_observation, reward, terminated, truncated, info = self.env.step(action)
        transition = {
            'observations': self.observation,
            'actions': action,
            'next_observations': next_observation,
            'rewards': float(reward) + self.reward_shift,
            'masks': 1.0 - float(terminated),
        }
        self.actions.append(action)
        self.episode_return += float(reward)
        self.observation = next_observation
        if terminated or truncated:
            stats = {'return': self.episode_return, 'length': len(self.actions), **final_info_stats(info)}
            self.finished.append({f'episode_{key}': value for key, value in stats.items()})
            self.episode += 1
            self._start()
        return transition

    def log_row(self):
        """`online/...` means over the episodes finished since the last call (none: only the count)."""
        row = {'online/episodes': self.episode}
        for key in self.finished[0] if self.finished else ():
            row[f'online/{key}'] = float(np.mean([episode.get(key, np.nan) for episode in self.finished]))
        self.finished = []
        return row

    def state(self):
        actions = np.asarray(self.actions, np.float32).reshape(len(self.actions), *self.env.action_space.shape)
        return {
            'episode': self.episode,
            'actions': actions,
            'observation': np.asarray(self.observation),
            'finished': json.dumps(self.finished),
        }

    def restore(self, state):
        """Continues from `state()`: the same episode, replayed to the same step."""
        self.episode, self.finished = int(state['episode']), json.loads(state['finished'])
        self._start()
        for action in np.asarray(state['actions']):
            self.observation, reward, _, _, _ = self.env.step(action)
            self.actions.append(action)
            self.episode_return += float(reward)
        if not np.array_equal(np.asarray(self.observation), np.asarray(state['observation'])):
            print(
                f'warning: online episode {self.episode} of seed {self.seed} did not replay exactly; '
                'starting the next episode instead.',
                file=sys.stderr,
            )
            self.episode += 1
            self._start()


def online_batch(data, buffer, rng, batch_size, window, balanced):
    """A training batch of the online phase: from the offline data extended by the buffer, or (balanced
    sampling) its first half from the offline data and its second half from the buffer."""
    if not balanced:
        return buffer.sample(rng, batch_size, window, offline=data)
    offline_key, online_key = jax.random.split(rng)
    halves = (
        sample_batch(data, offline_key, batch_size // 2),
        buffer.sample(online_key, batch_size - batch_size // 2, window),
    )
    return jax.tree_util.tree_map(lambda *parts: jnp.concatenate(parts), *halves)


class Online:
    """The online phase of all seeds: their explorers on the host, their buffers and acting keys on the device.

    `step(agents, data_keys)` makes one environment step per seed and one update per seed, like
    one call of `make_train_fn` with a single update.
    """

    def __init__(
        self, envs, seeds, data, batch_size, buffer_size, online_steps, balanced, first_step, reward_shift=0.0
    ):
        rows, observation_dim = data['observations'].shape
        action_dim = data['actions'].shape[-1]
        # The FQL codebase's buffer: the offline data extended (at least one free row), or apart.
        window = buffer_size if balanced else max(buffer_size, rows + 1)
        buffer = ReplayBuffer.create(observation_dim, action_dim, capacity=min(window, online_steps))
        self.explorers = [Explorer(env, seed, reward_shift) for env, seed in zip(envs, seeds, strict=True)]
        self.buffers = shard_seeds(stack_seeds([buffer] * len(seeds)), len(seeds))
        self.keys = shard_seeds(stack_seeds([acting_key(seed) for seed in seeds]), len(seeds))
        self.data, self.first_step = data, first_step

        def act(agent, key, observation):
            key, action_key = jax.random.split(key)
            return agent.sample_actions(observation, seed=action_key, temperature=1.0), key

        def update(agent, data_key, buffer, transition, data):
            buffer = buffer.add(transition)
            data_key, batch_key = jax.random.split(data_key)
            agent, info = agent.update_step(online_batch(data, buffer, batch_key, batch_size, window, balanced))
            return agent, data_key, buffer, info, nonfinite_flags(info, agent)

        self.act_fn = over_seeds(act, len(seeds), in_axes=(0, 0, 0))
        self.update_fn = over_seeds(update, len(seeds), in_axes=(0, 0, 0, 0, None), donate=(0, 1, 2))

    def step(self, agents, data_keys):
        """(agents, data_keys, info, nonfinite) after one environment step and one update per seed."""
        observations = np.stack([explorer.observation for explorer in self.explorers])
        actions, self.keys = self.act_fn(agents, self.keys, observations)
        actions = np.asarray(actions)
        transitions = [explorer.step(action) for explorer, action in zip(self.explorers, actions, strict=True)]
        stacked = {key: np.asarray([t[key] for t in transitions], np.float32) for key in transitions[0]}
        agents, data_keys, self.buffers, info, nonfinite = self.update_fn(
            agents, data_keys, self.buffers, stacked, self.data
        )
        return agents, data_keys, info, nonfinite

    def log_row(self, index):
        """Seed `index`'s `online/...` training-log entries (`Explorer.log_row`)."""
        return self.explorers[index].log_row()

    def states(self):
        """What each seed's checkpoint holds: device state (buffer, acting key) and host state."""
        seeds = zip(host_seeds(self.buffers), host_seeds(self.keys), self.explorers, strict=True)
        return [
            {'device': {'buffer': buffer, 'key': key}, 'host': explorer.state(), 'first_step': self.first_step}
            for buffer, key, explorer in seeds
        ]

    def device_template(self):
        """One seed's `states()[i]['device']` in shapes and dtypes only, for loading it back: host zeros (never
        written, so the memory is not touched), not a copy of every seed's replay buffer."""

        def one_seed(stacked):
            return np.zeros(stacked.shape[1:], stacked.dtype)

        return jax.tree_util.tree_map(one_seed, {'buffer': self.buffers, 'key': self.keys})

    def restore(self, states):
        """Continues from `[state(i) for each seed]` as loaded from checkpoints."""
        self.buffers = shard_seeds(stack_seeds([s['device']['buffer'] for s in states]), len(states))
        self.keys = shard_seeds(stack_seeds([s['device']['key'] for s in states]), len(states))
        for explorer, state in zip(self.explorers, states, strict=True):
            explorer.restore(state['host'])
