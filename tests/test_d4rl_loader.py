"""D4RL dataset loading from hdf5 files written here, on the base install (no d4rl, no MuJoCo).

The files mimic D4RL's layout: flat observations, actions, rewards, terminals, optional
timeouts, and infos/* that the loader ignores. Expected values are worked out by hand, and a
property test compares the vectorised loader with a line-by-line transcription of
d4rl.qlearning_dataset followed by FQL's loop.
"""

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs import d4rl_utils
from utils.errors import UserError

pytestmark = pytest.mark.d4rl

ANT_OBS, ANT_ACT = d4rl_utils.expected_dims('antmaze-umaze-v2')
PEN_OBS, PEN_ACT = d4rl_utils.expected_dims('pen-human-v1')
KEYS = ('observations', 'actions', 'next_observations', 'rewards', 'masks', 'terminals')


def write_hdf5(path, **arrays):
    with h5py.File(path, 'w') as file:
        for key, value in arrays.items():
            file.create_dataset(key, data=value)
    return str(path)


def rows(n, obs_dim, act_dim, seed=0):
    """Rows whose first observation entry is the row index, so transitions can be traced back."""
    rng = np.random.default_rng(seed)
    observations = rng.normal(size=(n, obs_dim))
    observations[:, 0] = np.arange(n)
    return observations, rng.uniform(-1.5, 1.5, size=(n, act_dim))


def antmaze_file(path):
    """Three episodes of 5, 4 and 6 rows, each closed by a timeout; goal rows mid-episode are terminal."""
    n = 15
    observations, actions = rows(n, ANT_OBS, ANT_ACT)
    timeouts = np.zeros(n, bool)
    timeouts[[4, 8, 14]] = True
    terminals = np.zeros(n, bool)
    terminals[[2, 3, 11]] = True
    return write_hdf5(
        path,
        observations=observations,
        actions=actions,
        rewards=terminals.astype(np.float64),
        terminals=terminals,
        timeouts=timeouts,
        **{'infos/goal': np.zeros((n, 2)), 'infos/qpos': np.zeros((n, 15))},
    )


def test_names():
    assert len(d4rl_utils.D4RL_ENV_NAMES) == len(set(d4rl_utils.D4RL_ENV_NAMES)) == 18
    assert d4rl_utils.is_d4rl_env('antmaze-large-diverse-v2') and d4rl_utils.is_d4rl_env('relocate-cloned-v1')
    assert not d4rl_utils.is_d4rl_env('antmaze-large-navigate-v0')
    assert not d4rl_utils.is_d4rl_env('halfcheetah-medium-v2')


def test_antmaze_transitions(tmp_path):
    data = d4rl_utils.load_dataset('antmaze-umaze-v2', antmaze_file(tmp_path / 'ant.hdf5'))
    assert set(data) == set(KEYS)
    assert all(value.dtype == np.float32 for value in data.values())

    # Timeout rows (4, 8, 14) are dropped; 14 is also the last row.
    kept = np.array([0, 1, 2, 3, 5, 6, 7, 9, 10, 11, 12, 13])
    np.testing.assert_array_equal(data['observations'][:, 0], kept)
    np.testing.assert_array_equal(data['next_observations'][:, 0], kept + 1)
    # Episode ends where the next kept row does not continue: before each dropped timeout row.
    np.testing.assert_array_equal(np.flatnonzero(data['terminals']), [3, 6, 11])
    # Goal rows are terminal in the data but do not end the episode (AntMaze).
    np.testing.assert_array_equal(np.flatnonzero(data['masks'] == 0), [2, 3, 9])
    np.testing.assert_array_equal(data['rewards'], np.where(data['masks'] == 0, 0.0, -1.0))


def test_actions_are_clipped(tmp_path):
    path = antmaze_file(tmp_path / 'ant.hdf5')
    data = d4rl_utils.load_dataset('antmaze-umaze-v2', path)
    with h5py.File(path) as file:
        raw = file['actions'][()]
    limit = np.float32(1 - 1e-5)
    assert np.abs(data['actions']).max() == limit
    inside = np.abs(raw[data['observations'][:, 0].astype(int)]) < limit
    np.testing.assert_allclose(data['actions'][inside], raw[data['observations'][:, 0].astype(int)][inside], rtol=1e-6)


def test_adroit_terminal_ends_episode(tmp_path):
    """Pen: episode 1 drops the pen at row 3 (terminal), episode 2 times out at row 9."""
    n = 10
    observations, actions = rows(n, PEN_OBS, PEN_ACT)
    terminals = np.zeros(n, bool)
    terminals[3] = True
    timeouts = np.zeros(n, bool)
    timeouts[9] = True
    path = write_hdf5(
        tmp_path / 'pen.hdf5',
        observations=observations,
        actions=actions,
        rewards=np.arange(n, dtype=np.float64).reshape(n, 1),  # (N, 1), as some files store it
        terminals=terminals,
        timeouts=timeouts,
    )
    data = d4rl_utils.load_dataset('pen-human-v1', path)
    # The terminal row stays (qlearning_dataset keeps it; its next observation is the next
    # episode's first); only the last row goes.
    np.testing.assert_array_equal(data['observations'][:, 0], np.arange(9))
    # Rows 3 and 4 are consecutive, so only the dataset terminal marks the end (Adroit rule).
    np.testing.assert_array_equal(np.flatnonzero(data['terminals']), [3, 8])
    np.testing.assert_array_equal(np.flatnonzero(data['masks'] == 0), [3])
    np.testing.assert_array_equal(data['rewards'], np.arange(9))  # Adroit rewards are not shifted.


def test_file_without_timeouts_uses_time_limit(tmp_path):
    """Without timeouts, d4rl drops each episode's 100th pen step, counting steps itself."""
    n = 250
    observations, actions = rows(n, PEN_OBS, PEN_ACT)
    path = write_hdf5(
        tmp_path / 'pen.hdf5', observations=observations, actions=actions, rewards=np.zeros(n), terminals=np.zeros(n)
    )
    data = d4rl_utils.load_dataset('pen-human-v1', path)
    kept = np.setdiff1d(np.arange(n - 1), [99, 199])
    np.testing.assert_array_equal(data['observations'][:, 0], kept)
    np.testing.assert_array_equal(np.flatnonzero(data['terminals']), [98, 197, len(kept) - 1])


def reference_fql_dataset(env_name, raw, max_steps):
    """d4rl.qlearning_dataset (terminate_on_end=False) and FQL's loop, transcribed row by row."""
    n = len(raw['rewards'])
    use_timeouts = 'timeouts' in raw
    obs, next_obs, actions, rewards, done = [], [], [], [], []
    episode_step = 0
    for i in range(n - 1):
        final = raw['timeouts'][i] if use_timeouts else episode_step == max_steps - 1
        if final:
            episode_step = 0
            continue
        if raw['terminals'][i] or final:
            episode_step = 0
        obs.append(raw['observations'][i].astype(np.float32))
        next_obs.append(raw['observations'][i + 1].astype(np.float32))
        actions.append(raw['actions'][i])
        rewards.append(raw['rewards'][i])
        done.append(bool(raw['terminals'][i]))
        episode_step += 1
    m = len(obs)
    terminals, masks = np.zeros(m), np.zeros(m)
    for i in range(m - 1):
        jump = np.linalg.norm(obs[i + 1] - next_obs[i]) > 1e-6
        terminals[i] = jump if env_name.startswith('antmaze') else (jump or done[i])
        masks[i] = 1 - done[i]
    if m:
        masks[-1], terminals[-1] = 1 - done[-1], 1
    rewards = np.array(rewards) - (1.0 if env_name.startswith('antmaze') else 0.0)
    return np.array(obs), np.array(next_obs), rewards, masks, terminals


@settings(max_examples=60, deadline=None)
@given(
    env_name=st.sampled_from(['antmaze-umaze-v2', 'door-cloned-v1']),
    flags=st.lists(st.tuples(st.booleans(), st.integers(0, 5)), min_size=2, max_size=40),
    with_timeouts=st.booleans(),
    max_steps=st.integers(1, 6),
)
def test_matches_row_by_row_reference(env_name, flags, with_timeouts, max_steps):
    obs_dim, act_dim = d4rl_utils.expected_dims(env_name)
    n = len(flags)
    observations, actions = rows(n, obs_dim, act_dim, seed=n)
    raw = {
        'observations': observations,
        'actions': actions,
        'rewards': np.arange(n, dtype=np.float64),
        'terminals': np.array([terminal for terminal, _ in flags]),
    }
    if with_timeouts:
        raw['timeouts'] = np.array([draw == 0 for _, draw in flags])
    transitions = d4rl_utils.qlearning_transitions(raw, max_steps)
    expected = reference_fql_dataset(env_name, raw, max_steps)
    if len(expected[0]) == 0:
        assert len(transitions['rewards']) == 0
        return
    data = d4rl_utils.fql_preprocess(env_name, transitions)
    for key, value in zip(
        ('observations', 'next_observations', 'rewards', 'masks', 'terminals'), expected, strict=True
    ):
        np.testing.assert_array_equal(data[key], value.astype(np.float32), err_msg=key)


@pytest.mark.parametrize(
    'change, message',
    [
        (lambda a: a.pop('terminals'), 'lacks the key(s) terminals'),
        (lambda a: a.update(rewards=a['rewards'][:-1]), 'rewards has shape (14,), expected (15,)'),
        (lambda a: a.update(actions=a['actions'][:, :3]), 'actions has shape (15, 3), expected (15, 8)'),
        (lambda a: a.update(observations=a['observations'][:, :-1]), 'observations has shape (15, 28)'),
        (lambda a: a.update(timeouts=a['timeouts'][:3]), 'timeouts has shape (3,)'),
    ],
)
def test_bad_files_name_file_and_problem(tmp_path, change, message):
    with h5py.File(antmaze_file(tmp_path / 'good.hdf5')) as file:
        arrays = {key: file[key][()] for key in ('observations', 'actions', 'rewards', 'terminals', 'timeouts')}
    change(arrays)
    path = write_hdf5(tmp_path / 'bad.hdf5', **arrays)
    with pytest.raises(UserError, match='bad.hdf5') as error:
        d4rl_utils.load_dataset('antmaze-umaze-v2', path)
    assert message in str(error.value)


def test_unreadable_and_empty_files(tmp_path):
    with pytest.raises(UserError, match='does not exist'):
        d4rl_utils.load_dataset('pen-human-v1', str(tmp_path / 'missing.hdf5'))
    not_hdf5 = tmp_path / 'notes.hdf5'
    not_hdf5.write_text('not an hdf5 file')
    with pytest.raises(UserError, match='notes.hdf5.*as hdf5'):
        d4rl_utils.load_dataset('pen-human-v1', str(not_hdf5))
    observations, actions = rows(1, PEN_OBS, PEN_ACT)
    one_row = write_hdf5(
        tmp_path / 'one.hdf5', observations=observations, actions=actions, rewards=np.zeros(1), terminals=np.zeros(1)
    )
    with pytest.raises(UserError, match='one.hdf5 holds no transitions'):
        d4rl_utils.load_dataset('pen-human-v1', one_row)


def test_unknown_env_name(tmp_path):
    with pytest.raises(UserError, match='Unknown D4RL environment'):
        d4rl_utils.load_dataset('antmaze-umaze-v0', antmaze_file(tmp_path / 'ant.hdf5'))


def test_missing_mujoco_names_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setenv('MUJOCO_PY_MUJOCO_PATH', str(tmp_path / 'no-mujoco'))
    with pytest.raises(UserError, match='bash scripts/install_d4rl.sh'):
        d4rl_utils._prepare_mujoco_libraries()
