"""Offline datasets as dicts of arrays, kept on the accelerator and sampled there.

The FQL codebase samples every batch with NumPy on the host and copies it over; here the
whole dataset is copied once and batches are gathered on the device with `jax.random`,
so a fused `lax.scan` of many updates never leaves the device.

Every batch also carries `next_actions`, the dataset's action at the row after each sampled
transition (the last row repeats its own), as the FQL codebase gives ReBRAC's critic BC term. Like
the reference, this ignores episode boundaries: at an episode's last step it is the next episode's
first action.

Image datasets (uint8 observations (N, H, W, C)) stay uint8 on the device, and each frame is stored
once: a transition's next observation is the next row's observation, except at an episode's end,
whose final frame is kept apart (`end_frames`). A 64 x 64 x 3 frame then costs 12,288 bytes plus 8
bytes of row indices (`next_rows`, `episode_starts`) and its action, reward and mask, instead of
twice 49,152 bytes as float32 observations and next observations. Stacks of the last N frames
(`--frame_stack`) are gathered by index when a batch is sampled, never stored.
"""

import jax
import jax.numpy as jnp
import numpy as np

from utils.augmentations import augment
from utils.dataset_keys import TASK_KEYS, TRAINING_KEYS

CHECK_ROWS = 4096  # Rows compared at a time when finding which next observations repeat a stored frame.


def is_image_dataset(dataset):
    """Whether the observations are uint8 images (N, H, W, C)."""
    observations = dataset['observations']
    return observations.dtype == np.uint8 and observations.ndim == 4


def to_device(dataset):
    """The training keys of a host dataset as device arrays: float32 for state vectors; for images,
    the frames once as uint8 (`image_data`)."""
    if is_image_dataset(dataset):
        return image_data(dataset)
    return {key: jax.device_put(np.asarray(dataset[key], dtype=np.float32)) for key in TRAINING_KEYS}


def image_data(dataset):
    """The device form of an image dataset: uint8 `observations`, `end_frames` (the next observations
    that are no stored observation, an episode's last), `next_rows` (each transition's next
    observation: a row of `observations`, or N + its row of `end_frames`), `episode_starts` (the row
    of each transition's episode start, from `terminals` as the FQL codebase finds it), and float32
    actions, rewards and masks."""
    observations, next_observations = dataset['observations'], dataset['next_observations']
    size = len(observations)
    follows = np.zeros(size, dtype=bool)
    for start in range(0, size - 1, CHECK_ROWS):
        stop = min(start + CHECK_ROWS, size - 1)
        follows[start:stop] = np.all(
            next_observations[start:stop] == observations[start + 1 : stop + 1], axis=(1, 2, 3)
        )
    ends = np.flatnonzero(~follows)
    next_rows = np.arange(1, size + 1)
    next_rows[ends] = size + np.arange(len(ends))
    terminal_rows = np.flatnonzero(np.asarray(dataset['terminals']) > 0)
    initial_rows = np.concatenate([[0], terminal_rows[:-1] + 1])
    episode_starts = initial_rows[np.searchsorted(initial_rows, np.arange(size), side='right') - 1]
    data = {key: np.asarray(dataset[key], dtype=np.float32) for key in ('actions', 'rewards', 'masks')}
    data.update(
        observations=observations,
        end_frames=next_observations[ends],
        next_rows=next_rows.astype(np.int32),
        episode_starts=episode_starts.astype(np.int32),
    )
    return {key: jax.device_put(value) for key, value in data.items()}


def stacked_images(data, rows, frame_stack):
    """Observations and next observations of the transitions at `rows` (B,), each the last
    `frame_stack` frames of its episode concatenated on the channel axis, oldest first; the
    episode's first frame stands in for frames before it. As the FQL codebase's `Dataset.sample`."""
    frames = data['observations']
    starts = data['episode_starts'][rows]
    stack_rows = jnp.stack([jnp.maximum(rows - back, starts) for back in range(frame_stack - 1, -1, -1)])
    size = frames.shape[0]
    next_rows = data['next_rows'][rows]
    next_frames = jnp.where(
        (next_rows < size)[:, None, None, None],
        frames[jnp.minimum(next_rows, size - 1)],
        data['end_frames'][jnp.maximum(next_rows - size, 0)],
    )
    stacked = jnp.moveaxis(frames[stack_rows], 0, -2)  # (B, H, W, frame_stack, C)
    next_stacked = jnp.concatenate([stacked[..., 1:, :], next_frames[..., None, :]], axis=-2)
    return stacked.reshape((*stacked.shape[:-2], -1)), next_stacked.reshape((*next_stacked.shape[:-2], -1))


def example_observations(dataset, frame_stack=None):
    """One observation as the agent sees it (a batch of one): stacked `frame_stack` times on the
    channel axis, as a stack at an episode's start is."""
    example = np.asarray(dataset['observations'][:1])
    return example if frame_stack is None else np.concatenate([example] * frame_stack, axis=-1)


def sample_batch(data, rng, batch_size, task=None, frame_stack=None, p_aug=None):
    """Uniform batch (with replacement) of transitions from a device dataset.

    With `task`, the dataset holds several tasks' `rewards` and `masks` (a leading task axis over
    one copy of everything else) and the batch takes task `task`'s; the indices are drawn first,
    so only the batch's rows of that task are gathered, never a whole row per agent.

    Image datasets give stacks of `frame_stack` frames (one frame without it), randomly cropped with
    probability `p_aug` (`utils.augmentations`, its key folded from `rng`).
    """
    size = data['observations'].shape[0]
    indices = jax.random.randint(rng, (batch_size,), 0, size)
    batch = {}
    if 'next_rows' in data:
        batch['observations'], batch['next_observations'] = stacked_images(data, indices, frame_stack or 1)
    for key in TRAINING_KEYS:
        if key not in batch:
            batch[key] = data[key][task, indices] if task is not None and key in TASK_KEYS else data[key][indices]
    batch['next_actions'] = data['actions'][jnp.minimum(indices + 1, size - 1)]
    if p_aug is not None:
        batch = augment(batch, jax.random.fold_in(rng, 1), p_aug)
    return batch


def sample_batch_numpy(dataset, rng: np.random.Generator, batch_size):
    """Host-side sampling as the FQL codebase does it (kept for the benchmark's baseline)."""
    size = len(dataset['observations'])
    indices = rng.integers(0, size, size=batch_size)
    batch = {key: dataset[key][indices] for key in TRAINING_KEYS}
    batch['next_actions'] = dataset['actions'][np.minimum(indices + 1, size - 1)]
    return batch
