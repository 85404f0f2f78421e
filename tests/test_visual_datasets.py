"""Pixel-based OGBench data: generated with the oracles and rendered frames, found by name, checked against its task.

A rendered step costs about 0.15 s on a CPU core (envs/rendering.py), so the generated set is
tiny: one training and one validation episode of STEPS steps.
"""

import os
import shutil
import struct
import subprocess
import sys
import types
import urllib.error
import zipfile

import numpy as np
import ogbench
import pytest

from envs import env_utils
from envs.dataset_files import check_ogbench_file
from envs.generate_dataset import _draw_p_stack, family_of, generate_dataset, make_oracles
from envs.ogbench_names import STATE_GENERATABLE_FAMILIES, parse_ogbench_name
from envs.rendering import use_headless_rendering
from tests.helpers import ROOT
from utils.errors import UserError

pytestmark = pytest.mark.slow

STEPS = 4
FRAME = (64, 64, 3)
VISUAL_TASK = 'visual-cube-single-play-singletask-v0'


@pytest.fixture(scope='module')
def visual_set(tmp_path_factory):
    """A tiny visual-cube-single-play set made by the command line, as a user runs it: without MUJOCO_GL set."""
    folder = tmp_path_factory.mktemp('visual')
    env = {key: value for key, value in os.environ.items() if key != 'MUJOCO_GL'}
    command = [
        sys.executable,
        '-m',
        'envs.generate_dataset',
        '--env_name=visual-cube-single-play',
        '--num_episodes=1',
        '--num_val_episodes=1',
        f'--max_episode_steps={STEPS}',
        f'--dataset_dir={folder}',
    ]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return str(folder / 'generated' / 'visual-cube-single-play-v0.npz')


@pytest.fixture(scope='module')
def state_set(tmp_path_factory):
    """The state-based set with the same settings: the same recipe, seeds and so episodes."""
    folder = tmp_path_factory.mktemp('state')
    return generate_dataset(
        'cube-single', num_episodes=1, num_val_episodes=1, max_episode_steps=STEPS, dataset_dir=str(folder)
    )


@pytest.fixture(scope='module')
def loaded(visual_set):
    """make_env_and_datasets of the visual task on the generated set: (env, train, validation, provenance)."""
    return env_utils.make_env_and_datasets('visual-cube-single-play', dataset_path=visual_set)


@pytest.fixture(scope='module')
def visual_env(loaded):
    return loaded[0]


def _arrays(path):
    with np.load(path) as file:
        return {key: file[key] for key in file.files}


def _save(path, arrays):
    np.savez(path, **arrays)
    return str(path)


def test_generated_frames_are_uint8_images_of_the_state_sets_episodes(visual_set, state_set):
    for suffix, episodes in (('.npz', 1), ('-val.npz', 1)):
        visual = _arrays(visual_set.replace('.npz', suffix))
        state = _arrays(state_set.replace('.npz', suffix))
        assert set(visual) == set(state) == {'observations', 'actions', 'terminals', 'qpos', 'qvel'}
        assert visual['observations'].dtype == np.uint8
        assert visual['observations'].shape == (episodes * STEPS, *FRAME)
        # Frames change as the arm moves: they are rendered at every step, not repeated.
        frames = visual['observations'].reshape(episodes * STEPS, -1)
        assert len(np.unique(frames, axis=0)) == episodes * STEPS
        for key in ('actions', 'terminals', 'qpos', 'qvel'):
            assert visual[key].dtype == state[key].dtype and np.array_equal(visual[key], state[key]), key


@pytest.mark.parametrize('family', STATE_GENERATABLE_FAMILIES)
@pytest.mark.parametrize('dataset_type', ['play', 'noisy'])
def test_every_visual_family_gets_its_state_familys_oracles_and_stacking_odds(family, dataset_type):
    """The short generation above reaches neither a second sub-task nor a scene redraw; this covers the recipe's
    per-family choices for every family."""
    env = types.SimpleNamespace(unwrapped=types.SimpleNamespace(_control_timestep=0.05))

    def settings(oracles):
        return {
            task: (type(oracle), {k: v for k, v in vars(oracle).items() if k != '_env'})
            for task, oracle in oracles.items()
        }

    assert settings(make_oracles(env, f'visual-{family}', dataset_type)) == settings(
        make_oracles(env, family, dataset_type)
    )
    odds = []
    for name in (family, f'visual-{family}'):
        np.random.seed(0)
        odds.append(_draw_p_stack(name))
    assert odds[0] == odds[1]


def test_a_visual_set_loads_as_uint8_through_the_normal_lookup(loaded):
    env, train, val, provenance = loaded
    assert env.observation_space.shape == FRAME
    for dataset, transitions in ((train, STEPS - 1), (val, STEPS - 1)):
        assert dataset['observations'].dtype == dataset['next_observations'].dtype == np.uint8
        assert dataset['observations'].shape == dataset['next_observations'].shape == (transitions, *FRAME)
        assert dataset['rewards'].shape == (transitions,)
    assert provenance['transitions'] == STEPS - 1


def test_visual_names_parse_and_resolve_to_the_official_file_or_its_download(visual_set, tmp_path, monkeypatch):
    assert parse_ogbench_name('visual-cube-single-play-task2') == ('visual-cube-single-play', 2)
    assert env_utils.canonical_env_name('visual-scene-play') == 'visual-scene-play-singletask-v0'
    assert family_of('visual-puzzle-3x3-noisy-singletask-task1-v0') == 'visual-puzzle-3x3'
    assert parse_ogbench_name('visual-antmaze-large-navigate') == ('visual-antmaze-large-navigate', None)
    asked = []

    def download(family, folder):
        asked.append(family)
        for suffix in ('.npz', '-val.npz'):
            shutil.copy(visual_set.replace('.npz', suffix), os.path.join(folder, f'{family}-v0{suffix}'))

    monkeypatch.setattr(env_utils, 'download', download)
    path, provenance = env_utils.resolve_ogbench_dataset('visual-cube-single-play', str(tmp_path), None, 1, 1)
    assert asked == ['visual-cube-single-play'] and provenance['source'] == 'downloaded'
    assert path == str(tmp_path / 'visual-cube-single-play-v0.npz')
    assert env_utils.resolve_ogbench_dataset('visual-cube-single-play', str(tmp_path), None, 1, 1)[1] == {
        'source': 'local file',
        'path': path,
    }


def test_a_visual_locomotion_set_that_cannot_be_downloaded_is_one_line(tmp_path, monkeypatch):
    def unreachable(family, folder):
        raise urllib.error.URLError('no network')

    monkeypatch.setattr(env_utils, 'download', unreachable)
    with pytest.raises(UserError, match='locomotion datasets cannot be generated'):
        env_utils.resolve_ogbench_dataset('visual-antmaze-large-navigate', str(tmp_path), None, None, 1)


def test_a_visual_set_generated_when_the_download_fails_says_what_rendering_costs(tmp_path, monkeypatch, capsys):
    def unreachable(family, folder):
        raise urllib.error.URLError('no network')

    generated = []
    monkeypatch.setattr(env_utils, 'download', unreachable)
    monkeypatch.setattr(env_utils, 'generate_dataset', lambda *args, **kwargs: generated.append((args, kwargs)))
    env_utils.resolve_ogbench_dataset('visual-cube-single-play', str(tmp_path), None, None, 2)
    assert [args for args, _ in generated] == [('visual-cube-single', 'play')]
    assert generated[0][1]['num_episodes'] == 100 and generated[0][1]['workers'] == 2
    stderr = capsys.readouterr().err
    assert 'GENERATED LOCALLY' in stderr
    assert '110 episodes (validation included) of 1001 steps take about 2.3 h with 2 worker(s)' in stderr
    assert '--gen_episodes=2' in stderr


def test_a_state_file_for_a_visual_task_and_the_reverse_are_one_line_errors(visual_set, state_set, visual_env):
    with pytest.raises(UserError, match=r'state vectors for a pixel-based task.*\(64, 64, 3\) images'):
        check_ogbench_file(state_set, env=visual_env, env_name=VISUAL_TASK)
    with pytest.raises(UserError, match='images for a state-based task'):
        check_ogbench_file(
            visual_set, env=ogbench.make_env_and_datasets('cube-single-play-singletask-v0', env_only=True)
        )


def test_wrong_image_size_or_dtype_is_a_one_line_error(visual_set, visual_env, tmp_path):
    arrays = _arrays(visual_set)
    small = _save(tmp_path / 'small.npz', {**arrays, 'observations': arrays['observations'][:, ::2, ::2]})
    with pytest.raises(UserError, match=r"'observations' of shape \(32, 32, 3\) per step .* needs \(64, 64, 3\)"):
        check_ogbench_file(small, env=visual_env, env_name=VISUAL_TASK)
    scaled = _save(tmp_path / 'scaled.npz', {**arrays, 'observations': arrays['observations'] / np.float32(255)})
    with pytest.raises(UserError, match='has float32 images but the environment .* renders uint8 frames'):
        check_ogbench_file(scaled, env=visual_env, env_name=VISUAL_TASK)
    check_ogbench_file(visual_set, env=visual_env, env_name=VISUAL_TASK)


def test_damaged_frames_are_found_although_the_check_keeps_none(visual_set, visual_env, tmp_path):
    """The frames are read through, not kept (a full set is 12 GB), so their checksum is still verified."""
    damaged = str(tmp_path / 'damaged.npz')
    shutil.copy(visual_set, damaged)
    with zipfile.ZipFile(damaged) as archive:
        info = archive.getinfo('observations.npy')
    with open(damaged, 'r+b') as file:
        file.seek(info.header_offset + 26)  # The local header's name and extra field lengths.
        name_length, extra_length = struct.unpack('<HH', file.read(4))
        file.seek(info.header_offset + 30 + name_length + extra_length + info.compress_size // 2)
        byte = file.read(1)
        file.seek(-1, os.SEEK_CUR)
        file.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(UserError, match=r'damaged\.npz (is not a readable \.npz archive|is damaged)'):
        check_ogbench_file(damaged, env=visual_env, env_name=VISUAL_TASK)


def test_rendering_is_headless_by_default_and_a_chosen_backend_is_kept(monkeypatch):
    monkeypatch.delenv('MUJOCO_GL', raising=False)
    use_headless_rendering()
    assert os.environ['MUJOCO_GL'] == 'egl'
    monkeypatch.setenv('MUJOCO_GL', 'osmesa')
    use_headless_rendering()
    assert os.environ['MUJOCO_GL'] == 'osmesa'
