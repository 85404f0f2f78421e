"""The online phase's pieces: the replay buffer, balanced sampling, the environment replay that makes
resume exact, the online presets and the flag checks."""

import types

import gymnasium
import jax
import numpy as np
import pytest

from agents import AGENTS
from utils.config_checks import check_run_flags
from utils.errors import UserError
from utils.online import Explorer, online_batch
from utils.replay_buffer import ReplayBuffer


def transition(marker):
    """A transition whose every field holds `marker`, so a sampled row says where it came from."""
    return {
        'observations': np.full(2, marker, np.float32),
        'actions': np.full(1, marker, np.float32),
        'next_observations': np.full(2, marker, np.float32),
        'rewards': np.float32(marker),
        'masks': np.float32(1.0),
    }


def filled(capacity, markers):
    buffer = ReplayBuffer.create(observation_dim=2, action_dim=1, capacity=capacity)
    for marker in markers:
        buffer = buffer.add(transition(marker))
    return buffer


def offline_rows(markers):
    rows = [transition(marker) for marker in markers]
    return {key: jax.numpy.asarray(np.stack([row[key] for row in rows])) for key in rows[0]}


def drawn(batch):
    return set(np.asarray(batch['rewards']).tolist())


def test_buffer_wraps_when_full_and_samples_only_the_newest():
    buffer = filled(3, [1, 2, 3, 4, 5])
    assert int(buffer.count) == 5
    np.testing.assert_array_equal(buffer.data['rewards'], [4, 5, 3])  # 4 and 5 overwrote 1 and 2.
    batch = buffer.sample(jax.random.PRNGKey(0), 512, window=3)
    assert drawn(batch) == {3, 4, 5}
    # next_actions: the action of the transition added after the drawn one; the newest repeats its own.
    expected = {3: 4, 4: 5, 5: 5}
    for reward, next_action in zip(batch['rewards'], batch['next_actions'][:, 0], strict=True):
        assert expected[int(reward)] == int(next_action)


def test_buffer_before_it_is_full_samples_only_what_was_added():
    buffer = filled(8, [1, 2])
    assert drawn(buffer.sample(jax.random.PRNGKey(0), 256, window=8)) == {1, 2}


def test_offline_data_extended_by_the_buffer_is_first_in_first_out():
    """Without balanced sampling (the FQL codebase's buffer built from the dataset): the newest
    `window` of [offline rows, online transitions]; offline rows leave first once it is full."""
    offline = offline_rows([-1, -2, -3, -4])
    buffer = filled(3, [1, 2])
    assert drawn(buffer.sample(jax.random.PRNGKey(0), 512, window=7, offline=offline)) == {-1, -2, -3, -4, 1, 2}
    buffer = buffer.add(transition(3))
    batch = buffer.sample(jax.random.PRNGKey(1), 512, window=5, offline=offline)
    assert drawn(batch) == {-3, -4, 1, 2, 3}
    # The last offline row's next action is the first online transition's.
    assert set(np.asarray(batch['next_actions'][batch['rewards'] == -4, 0]).tolist()) == {1}


@pytest.mark.parametrize('batch_size', [16, 17])
def test_balanced_sampling_draws_half_from_each_source(batch_size):
    offline = offline_rows([-1, -2, -3])
    buffer = filled(4, [1, 2, 3])
    batch = online_batch(offline, buffer, jax.random.PRNGKey(0), batch_size, window=4, balanced=True)
    rewards = np.asarray(batch['rewards'])
    assert rewards.shape == (batch_size,)
    assert (rewards[: batch_size // 2] < 0).all() and (rewards[batch_size // 2 :] > 0).all()
    unbalanced = online_batch(offline, buffer, jax.random.PRNGKey(0), 4096, window=7, balanced=False)
    share = float(np.mean(np.asarray(unbalanced['rewards']) > 0))
    assert 0.4 < share < 0.6  # 3 online of 6 rows: uniform over both, not half by construction.


class CountingEnv(gymnasium.Env):
    """A deterministic environment whose state is the sum of the actions since reset (plus a seeded start)."""

    observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    action_space = gymnasium.spaces.Box(-1, 1, (1,), np.float32)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.state, self.t = self.np_random.uniform(size=1).astype(np.float32), 0
        return self.state.copy(), {}

    def step(self, action):
        self.state, self.t = self.state + action, self.t + 1
        return self.state.copy(), float(self.state[0]), False, self.t == 5, {'success': float(self.t == 5)}


def test_explorer_restores_the_episode_by_replaying_its_actions():
    rng = np.random.default_rng(0)
    explorer = Explorer(CountingEnv(), seed=3)
    for _ in range(7):  # One finished episode of 5 steps, then 2 steps into the next.
        explorer.step(rng.uniform(-1, 1, 1).astype(np.float32))
    state = explorer.state()
    restored = Explorer(CountingEnv(), seed=3)
    restored.restore(state)
    assert restored.episode == explorer.episode == 1
    np.testing.assert_array_equal(restored.observation, explorer.observation)
    assert restored.episode_return == explorer.episode_return and restored.finished == explorer.finished
    action = np.float32([0.25])
    assert explorer.step(action)['rewards'] == restored.step(action)['rewards']
    row = restored.log_row()
    assert row['online/episodes'] == 1 and row['online/episode_length'] == 5 and row['online/episode_success'] == 1


def test_explorer_that_cannot_replay_starts_the_next_episode(capsys):
    explorer = Explorer(CountingEnv(), seed=3)
    explorer.step(np.float32([0.5]))
    state = explorer.state()
    state['observation'] = state['observation'] + 1  # As if the simulator had changed.
    restored = Explorer(CountingEnv(), seed=3)
    restored.restore(state)
    assert restored.episode == 1 and restored.actions == []
    assert 'did not replay exactly' in capsys.readouterr().err


# The FQL README's "Offline-to-online RL" commands (github.com/seohongpark/fql), transcribed here
# apart from agents/fql.py: environment -> what its flags set beyond the offline preset's keys.
FQL_README_ONLINE = {
    'humanoidmaze-medium-navigate': {'discount': 0.995, 'alpha': 100.0},
    'antsoccer-arena-navigate': {'discount': 0.995, 'alpha': 30.0},
    'cube-double-play': {'alpha': 300.0},
    'scene-play': {'alpha': 300.0},
    'puzzle-4x4-play': {'alpha': 1000.0},
    'antmaze-umaze-v2': {'alpha': 10.0},
    'antmaze-umaze-diverse-v2': {'alpha': 10.0},
    'antmaze-medium-play-v2': {'alpha': 10.0},
    'antmaze-medium-diverse-v2': {'alpha': 10.0},
    'antmaze-large-play-v2': {'alpha': 3.0},
    'antmaze-large-diverse-v2': {'alpha': 3.0},
    'pen-cloned-v1': {'q_agg': 'min', 'alpha': 1000.0},
    'door-cloned-v1': {'q_agg': 'min', 'alpha': 1000.0},
    'hammer-cloned-v1': {'q_agg': 'min', 'alpha': 1000.0},
    'relocate-cloned-v1': {'q_agg': 'min', 'alpha': 10000.0},
}


@pytest.mark.parametrize('env', sorted(FQL_README_ONLINE))
def test_fql_online_presets_are_the_fql_readme_commands(env):
    fql = AGENTS['fql']
    assert fql.online_preset_overrides('paper', env) == FQL_README_ONLINE[env]
    assert fql.online_preset_overrides('none', env) == {}


def test_online_presets_come_from_the_fql_paper_and_readme_only():
    """FQL's follow its README; IQL, ReBRAC and IFQL's the FQL paper's Table 7 (tests/test_presets.py);
    RLPD's README command sets what its offline preset sets; DROL has no published online settings."""
    assert set(AGENTS['fql'].online_presets) == set(FQL_README_ONLINE)
    for name in set(AGENTS) - {'fql', 'iql', 'rebrac', 'ifql'}:
        assert AGENTS[name].online_presets == {}, name


def run_flags(**changes):
    values = dict(
        offline_steps=100, online_steps=0, buffer_size=10, log_interval=10, eval_interval=0, save_interval=0,
        eval_episodes=0, video_episodes=0, seed=0, save_minutes=1.0, num_seeds=1, eval_workers=1, updates_per_call=1,
    )  # fmt: skip
    return types.SimpleNamespace(**{**values, **changes})


@pytest.mark.parametrize(
    'changes, message',
    [({'online_steps': -1}, '--online_steps must not be negative'), ({'buffer_size': 0}, '--buffer_size must be at')],
)
def test_bad_online_flags_are_one_message(changes, message):
    check_run_flags(run_flags())
    with pytest.raises(UserError, match=message):
        check_run_flags(run_flags(**changes))
