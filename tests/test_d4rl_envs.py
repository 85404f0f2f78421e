"""D4RL environments through the D4RL extra (`bash scripts/install_d4rl.sh`).

Without the extra these tests skip on a developer machine, but fail under CI (CI set), so a
broken install can never pass there as a row of skips.
"""

import csv
import os

import h5py
import numpy as np
import pytest

from envs import d4rl_utils
from tests.helpers import run_python
from utils.errors import UserError

pytestmark = pytest.mark.d4rl


@pytest.fixture(scope='module')
def d4rl():
    try:
        return d4rl_utils.import_d4rl()
    except UserError as error:
        if os.environ.get('CI'):
            pytest.fail(f'CI needs the D4RL extra: {error}')
        pytest.skip(str(error))


def run_episode(env, action, seed=0):
    """Steps a constant action to the episode's end; (return, steps, final info)."""
    env.reset(seed=seed)
    total, steps, done = 0.0, 0, False
    while not done:
        _, reward, terminated, truncated, info = env.step(action)
        total, steps, done = total + reward, steps + 1, terminated or truncated
    return total, steps, info


def test_all_environments_match_the_loader_dimensions(d4rl):
    for name in d4rl_utils.D4RL_ENV_NAMES:
        env = d4rl_utils.make_env(name)
        observation, _ = env.reset(seed=0)
        assert (observation.shape[0], env.action_space.shape[0]) == d4rl_utils.expected_dims(name), name
        assert observation.dtype == np.float32
        assert env.unwrapped.gym_env.spec.max_episode_steps == d4rl_utils.max_episode_steps(name), name
        env.close()


def test_antmaze_failure_scores_zero(d4rl):
    env = d4rl_utils.make_env('antmaze-umaze-v2')
    total, steps, info = run_episode(env, np.zeros(8, np.float32))
    assert (total, steps) == (0.0, 700)  # Standing still never reaches the goal; the time limit ends it.
    assert info['normalized_return'] == 0.0 and info['success'] == 0.0


def test_antmaze_goal_scores_100_and_ends_the_episode(d4rl):
    env = d4rl_utils.make_env('antmaze-umaze-v2')
    env.reset(seed=0)
    ant = env.unwrapped.gym_env.unwrapped
    for _step in range(3):
        ant.set_xy(ant.target_goal)  # Teleported onto the goal after a few ordinary steps.
        _, reward, terminated, truncated, info = env.step(np.zeros(8, np.float32))
        if terminated or truncated:
            break
    assert reward == 1.0 and terminated
    assert info['normalized_return'] == 100.0 and info['success'] == 1.0
    # A new episode starts from nothing.
    total, _, info = run_episode(env, np.zeros(8, np.float32), seed=1)
    assert total == 0.0 and info['success'] == 0.0


def test_pen_normalized_score(d4rl):
    env = d4rl_utils.make_env('pen-human-v1')
    assert env.action_space.shape == (24,)
    total, steps, info = run_episode(env, np.full(24, 0.1, np.float32))
    low, high = d4rl.infos.REF_MIN_SCORE['pen-human-v1'], d4rl.infos.REF_MAX_SCORE['pen-human-v1']
    assert steps <= 100
    assert info['normalized_return'] == pytest.approx(100 * (total - low) / (high - low))
    assert 'success' not in info


def test_seeded_resets_repeat(d4rl):
    env = d4rl_utils.make_env('door-expert-v1')
    first, _ = env.reset(seed=3)
    other, _ = env.reset(seed=4)
    again, _ = env.reset(seed=3)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize('env_name', ['antmaze-medium-play-v2', 'hammer-cloned-v1'])
def test_loader_matches_d4rl_qlearning_dataset(d4rl, env_name):
    """The vectorised loader against d4rl's own qlearning_dataset, with and without timeouts."""
    import gym

    rng = np.random.default_rng(0)
    obs_dim, act_dim = d4rl_utils.expected_dims(env_name)
    n = 2500
    raw = {
        'observations': rng.normal(size=(n, obs_dim)),
        'actions': rng.uniform(-1, 1, size=(n, act_dim)),
        'rewards': rng.normal(size=n),
        'terminals': rng.uniform(size=n) < 0.01,
    }
    env = gym.make(env_name)
    for timeouts in (None, rng.uniform(size=n) < 0.02):
        if timeouts is not None:
            raw['timeouts'] = timeouts
        expected = d4rl.qlearning_dataset(env, dataset=raw)
        ours = d4rl_utils.qlearning_transitions(raw, d4rl_utils.max_episode_steps(env_name))
        for key in ('observations', 'actions', 'next_observations', 'rewards', 'terminals'):
            np.testing.assert_array_equal(ours[key], expected[key], err_msg=key)


def write_antmaze_file(path, episodes=4, steps=50, seed=0):
    """Random AntMaze-format rows: episodes closed by timeouts, a few goal rows (reward and terminal 1)."""
    rng = np.random.default_rng(seed)
    n = episodes * steps
    goal = rng.uniform(size=n) < 0.05
    with h5py.File(path, 'w') as file:
        file['observations'] = rng.normal(size=(n, 29))
        file['actions'] = rng.uniform(-1, 1, size=(n, 8))
        file['rewards'] = goal.astype(np.float64)
        file['terminals'] = goal
        file['timeouts'] = np.arange(n) % steps == steps - 1
    return str(path)


@pytest.mark.parametrize('agent_name', ['drol', 'fql'])
def test_main_trains_and_evaluates_on_antmaze(d4rl, agent_name, tmp_path):
    dataset = write_antmaze_file(tmp_path / 'antmaze-tiny.hdf5')
    command = [
        'main.py',
        f'--agent={agent_name}',
        '--env_name=antmaze-umaze-v2',
        f'--dataset_path={dataset}',
        f'--save_dir={tmp_path}',
        '--run_group=d4rl',
        '--offline_steps=20',
        '--log_interval=10',
        '--eval_interval=20',
        '--save_interval=20',
        '--eval_episodes=1',
        '--agent.actor_hidden_dims=(32,32)',
        '--agent.value_hidden_dims=(32,32)',
        '--agent.batch_size=32',
    ]
    result = run_python(*command)
    assert result.returncode == 0, f'main.py failed:\n{result.stdout}\n{result.stderr}'
    with open(tmp_path / 'd4rl' / f'{agent_name}_antmaze-umaze-v2_sd0' / 'eval.csv', newline='') as file:
        first, row = csv.DictReader(file)  # Step 1 (as the references evaluate) and the final step.
    assert int(float(first['step'])) == 1
    assert float(row['evaluation/normalized_return']) in (0.0, 100.0)
    assert float(row['evaluation/success']) == float(row['evaluation/normalized_return']) / 100
