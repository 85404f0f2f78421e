"""Local OGBench data generation: files ogbench loads, reproducible for any worker count, oracles that work.

Episodes are short (100 steps) so the whole module runs in well under a minute on 2 cores.
"""

import json
import os

import gymnasium
import numpy as np
import ogbench
import pytest

from envs.dataset_files import check_ogbench_file
from envs.dataset_report import report
from envs.generate_dataset import family_of, generate_dataset, make_oracles
from envs.ogbench_names import GENERATABLE_FAMILIES
from tests.helpers import run_python
from utils.errors import UserError

pytestmark = pytest.mark.slow

STEPS = 100
EPISODES = 3
VAL_EPISODES = 1
FAMILIES = ('cube-single', 'scene', 'puzzle-3x3')
BUTTON_FAMILIES = ('scene', 'puzzle-3x3')


def _generate(directory, family='cube-single', **kwargs):
    args = dict(num_episodes=EPISODES, num_val_episodes=VAL_EPISODES, max_episode_steps=STEPS, progress=False)
    return generate_dataset(family, dataset_dir=str(directory), **{**args, **kwargs})


def _arrays(path):
    with np.load(path) as file:
        return {key: file[key] for key in file.files}


@pytest.fixture(scope='module')
def generated(tmp_path_factory):
    """One small play dataset per tested family, generated once for the module."""
    return {family: _generate(tmp_path_factory.mktemp(family), family) for family in FAMILIES}


@pytest.mark.parametrize('family', FAMILIES)
def test_files_have_official_keys_and_dtypes(generated, family):
    path = generated[family]
    assert os.path.basename(path) == f'{family}-play-v0.npz'
    for file_path, episodes in ((path, EPISODES), (path.replace('.npz', '-val.npz'), VAL_EPISODES)):
        arrays = _arrays(file_path)
        expected = {'observations', 'actions', 'terminals', 'qpos', 'qvel'}
        expected |= {'button_states'} if family in BUTTON_FAMILIES else set()
        assert set(arrays) == expected
        assert arrays['observations'].dtype == np.float32 and arrays['actions'].dtype == np.float32
        assert arrays['qpos'].dtype == np.float32 and arrays['qvel'].dtype == np.float32
        assert arrays['terminals'].dtype == bool
        if family in BUTTON_FAMILIES:
            assert arrays['button_states'].dtype == np.int64
        assert all(len(array) == episodes * STEPS for array in arrays.values())
        assert np.flatnonzero(arrays['terminals']).tolist() == [STEPS * (i + 1) - 1 for i in range(episodes)]
        assert np.abs(arrays['actions']).max() <= 1.0
    # No temporary files are left behind; the sidecar describes the set.
    assert sorted(os.listdir(os.path.dirname(path))) == sorted(
        f'{family}-play-v0{suffix}' for suffix in ('.npz', '-val.npz', '.json')
    )
    metadata = json.loads(open(path.replace('.npz', '.json')).read())
    assert metadata['episodes'] == EPISODES and metadata['val_episodes'] == VAL_EPISODES
    assert metadata['transitions'] == EPISODES * STEPS and metadata['dataset_type'] == 'play'


@pytest.mark.parametrize('family', FAMILIES)
def test_files_load_through_ogbench_single_task(generated, family):
    env, train, val = ogbench.make_env_and_datasets(f'{family}-play-singletask-v0', dataset_path=generated[family])
    check_ogbench_file(generated[family], env=env, env_name=family)
    for dataset, episodes in ((train, EPISODES), (val, VAL_EPISODES)):
        transitions = episodes * (STEPS - 1)  # ogbench drops each episode's last observation
        assert {'observations', 'next_observations', 'actions', 'terminals', 'rewards', 'masks'} <= set(dataset)
        assert dataset['observations'].shape == (transitions, *env.observation_space.shape)
        assert dataset['next_observations'].shape == dataset['observations'].shape
        assert dataset['actions'].shape == (transitions, *env.action_space.shape)
        assert dataset['rewards'].shape == (transitions,) and (dataset['rewards'] <= 0).all()


def test_same_seed_gives_identical_files_and_other_seeds_differ(generated, tmp_path):
    again = _arrays(_generate(tmp_path / 'again'))
    other = _arrays(_generate(tmp_path / 'other', seed=1))
    first = _arrays(generated['cube-single'])
    assert all(np.array_equal(first[key], again[key]) for key in first)
    assert not np.array_equal(first['observations'], other['observations'])


def test_one_and_two_workers_give_identical_files(generated, tmp_path):
    # The scene keeps the most state between episodes, so it is the strictest case.
    two = _generate(tmp_path, 'scene', workers=2)
    for suffix in ('.npz', '-val.npz'):
        one_arrays = _arrays(generated['scene'].replace('.npz', suffix))
        two_arrays = _arrays(two.replace('.npz', suffix))
        assert all(np.array_equal(one_arrays[key], two_arrays[key]) for key in one_arrays)


def test_family_of_strips_dataset_and_task_words():
    assert family_of('cube-double') == 'cube-double'
    assert family_of('cube-double-play') == 'cube-double'
    assert family_of('cube-double-play-singletask-task2-v0') == 'cube-double'
    assert family_of('puzzle-4x4-noisy-singletask-v0') == 'puzzle-4x4'
    assert family_of('scene-play-v0') == 'scene'


@pytest.mark.parametrize('name', ['antmaze-large-navigate', 'cube-double-play'])
def test_unknown_family_is_a_user_error_listing_the_families(tmp_path, name):
    with pytest.raises(UserError, match=name) as error:
        generate_dataset(name, dataset_dir=str(tmp_path))
    assert all(family in str(error.value) for family in GENERATABLE_FAMILIES)


def test_command_line_reports_user_errors_with_status_2(tmp_path):
    result = run_python(
        '-m', 'envs.generate_dataset', '--env_name=humanoidmaze-medium-navigate', f'--dataset_dir={tmp_path}'
    )
    assert result.returncode == 2
    assert 'cube-double' in result.stderr and 'Traceback' not in result.stderr


def test_report_lists_every_single_task(generated):
    text = report(generated['cube-single'])
    assert f'transitions {EPISODES * (STEPS - 1)}' in text
    for name in ('task1_horizontal', 'task2_vertical1', 'task3_vertical2', 'task4_diagonal1', 'task5_diagonal2'):
        assert name in text


@pytest.mark.parametrize('seed', [0, 1])
def test_cube_plan_oracle_solves_the_single_task(seed):
    """The generator's oracle, told the single task's goal, must solve it: guards against silent breakage."""
    env = gymnasium.make('cube-single-singletask-v0')
    oracle = make_oracles(env, 'cube-single', 'play')['cube']
    np.random.seed(seed)
    ob, info = env.reset(seed=seed)
    # The task-mode env lacks the data-collection target keys; the task's goal is the target.
    goal = {
        'privileged/target_block': 0,
        'privileged/target_block_pos': env.unwrapped.cur_task_info['goal_xyzs'][0],
        'privileged/target_block_yaw': np.zeros(1),
    }
    oracle.reset(ob, {**info, **goal})
    for _ in range(STEPS):
        ob, _, _, _, info = env.step(np.clip(oracle.select_action(ob, info), -1, 1))
        if info['success']:
            break
    assert info['success']
