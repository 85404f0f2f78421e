"""Image batches on the device: uint8 frames stored once, next observations and frame stacks by index,
the random crop's statistics, and the pixel flags' one-line errors."""

import types

import jax
import numpy as np
import pytest

from agents import AGENTS
from utils.augmentations import PADDING, augment, random_crop
from utils.config_checks import check_pixel_flags
from utils.datasets import sample_batch, stacked_images, to_device
from utils.errors import UserError

stack = jax.jit(stacked_images, static_argnums=2)  # Compiled once: op by op it takes seconds.


def image_dataset(lengths=(3, 1, 5), shape=(4, 4, 3), seed=0):
    """Episodes of distinct uint8 frames as OGBench lays them out (observations, next observations and
    terminals), with float actions, rewards and masks."""
    rng = np.random.default_rng(seed)
    observations, next_observations, terminals = [], [], []
    for length in lengths:
        frames = rng.integers(0, 256, (length + 1, *shape), dtype=np.uint8)
        observations.append(frames[:-1])
        next_observations.append(frames[1:])
        terminals.append(np.eye(length)[-1])
    size = sum(lengths)
    return {
        'observations': np.concatenate(observations),
        'next_observations': np.concatenate(next_observations),
        'terminals': np.concatenate(terminals),
        'actions': rng.uniform(-1, 1, (size, 2)),
        'rewards': rng.normal(size=size),
        'masks': np.ones(size),
    }


def test_device_dataset_keeps_images_uint8_and_each_frame_once():
    dataset = image_dataset()
    data = to_device(dataset)
    assert data['observations'].dtype == data['end_frames'].dtype == np.uint8
    assert 'next_observations' not in data
    assert len(data['end_frames']) == 3  # One final frame per episode; the others are stored observations.
    assert data['actions'].dtype == np.float32
    state = to_device({**dataset, 'observations': np.zeros((9, 5)), 'next_observations': np.zeros((9, 5))})
    assert state['observations'].dtype == state['next_observations'].dtype == np.float32


def test_next_observations_by_index_equal_the_dataset():
    """Also where a next observation is no stored observation in mid-episode (a file that skips a
    frame): that frame is kept apart, never replaced by the next row's."""
    dataset = image_dataset()
    dataset['next_observations'][1] = 255 - dataset['next_observations'][1]
    data = to_device(dataset)
    assert len(data['end_frames']) == 4
    observations, next_observations = stack(data, np.arange(9), 1)
    np.testing.assert_array_equal(observations, dataset['observations'])
    np.testing.assert_array_equal(next_observations, dataset['next_observations'])


def test_frame_stacks_stay_in_their_episode():
    """A stack of 3 at an episode's second row repeats its first frame, never the previous episode's."""
    dataset = image_dataset()
    observations, next_observations = stack(to_device(dataset), np.array([4]), 3)  # Third episode, row 0.
    first = dataset['observations'][4]
    np.testing.assert_array_equal(observations[0], np.concatenate([first] * 3, axis=-1))
    np.testing.assert_array_equal(
        next_observations[0], np.concatenate([first, first, dataset['next_observations'][4]], axis=-1)
    )
    batch = sample_batch(to_device(dataset), jax.random.PRNGKey(0), 16, frame_stack=3)
    assert batch['observations'].shape == batch['next_observations'].shape == (16, 4, 4, 9)
    assert batch['observations'].dtype == np.uint8


def test_crop_statistics():
    """Over 4000 batches with p_aug 0.3: the share of cropped batches is 0.3 within 5 standard
    deviations; each of the 7 x 7 offsets is drawn about equally often (each within 25% of its
    expected count); an observation and its next observation share their offset."""
    size, batches, p_aug = 10, 4000, 0.3
    rows, columns = np.meshgrid(np.arange(size), np.arange(size), indexing='ij')
    image = (rows * size + columns).astype(np.uint8)[..., None]  # Each pixel names its position.
    batch = {'observations': np.stack([image] * 8), 'next_observations': np.stack([image + 100] * 8)}
    keys = jax.random.split(jax.random.PRNGKey(0), batches)
    out = jax.jit(jax.vmap(lambda key: augment(batch, key, p_aug)))(keys)
    # The pixel at (3, 3) of a crop at offset (r, c) is the image's (r, c) (padding 3).
    seen = np.asarray(out['observations'][:, :, PADDING, PADDING, 0])
    np.testing.assert_array_equal(np.asarray(out['next_observations'][:, :, PADDING, PADDING, 0]), seen + 100)
    cropped = np.any(np.asarray(out['observations']) != batch['observations'], axis=(1, 2, 3, 4))
    share = cropped.mean()
    assert abs(share - p_aug) < 5 * np.sqrt(p_aug * (1 - p_aug) / batches), share
    uncropped = seen[~cropped]
    assert np.all(uncropped == PADDING * size + PADDING)
    counts = np.bincount(seen[cropped].ravel(), minlength=size * size).reshape(size, size)
    window = 2 * PADDING + 1
    expected = cropped.sum() * 8 / window**2
    assert np.all(np.abs(counts[:window, :window] - expected) < 0.25 * expected), counts[:window, :window]
    assert counts[window:].sum() + counts[:, window:].sum() == 0


def test_crop_pads_with_edge_pixels():
    """A 4 x 4 image cropped at the far corners of its padding shows only its corner pixels."""
    image = np.arange(1, 17, dtype=np.uint8).reshape(1, 4, 4, 1)
    assert np.all(random_crop(image, np.array([[0, 0]])) == image[0, 0, 0, 0])
    assert np.all(random_crop(image, np.array([[6, 6]])) == image[0, -1, -1, 0])


def flags(env_name='visual-cube-single-play', frame_stack=None, p_aug=None, online_steps=0):
    return types.SimpleNamespace(env_name=env_name, frame_stack=frame_stack, p_aug=p_aug, online_steps=online_steps)


@pytest.mark.parametrize(
    'run_flags, encoder, visual, message',
    [
        (flags('cube-single-play'), 'impala_small', False, 'has state observations'),
        (flags(), None, True, 'choose an encoder'),
        (flags('cube-single-play', frame_stack=3), None, False, '--frame_stack acts on images'),
        (flags('cube-single-play', p_aug=0.5), None, False, '--p_aug acts on images'),
        (flags(frame_stack=0), 'impala_small', True, '--frame_stack must be at least 1'),
        (flags(p_aug=1.5), 'impala_small', True, '--p_aug is a probability'),
        (flags(online_steps=10), 'impala_small', True, 'offline only'),
    ],
)
def test_pixel_flag_errors_are_one_line(run_flags, encoder, visual, message):
    with pytest.raises(UserError, match=message) as error:
        check_pixel_flags(run_flags, encoder, visual)
    assert '\n' not in str(error.value)


def test_pixel_flags_that_work_pass():
    check_pixel_flags(flags(frame_stack=3, p_aug=0.5), 'impala_small', True)
    check_pixel_flags(flags('cube-single-play'), None, False)


def test_unknown_encoder_names_the_close_ones():
    config = AGENTS['drol'].default_config()
    config.encoder = 'impala_smal'
    (problem,) = AGENTS['drol'].config_problems(config)
    assert "Unknown encoder 'impala_smal'. Did you mean impala_small" in problem and '\n' not in problem
