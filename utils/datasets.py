"""Offline datasets as dicts of arrays, kept on the accelerator and sampled there.

The FQL codebase samples every batch with NumPy on the host and copies it over; here the
whole dataset is copied once and batches are gathered on the device with `jax.random`,
so a fused `lax.scan` of many updates never leaves the device.

Every batch also carries `next_actions`, the dataset's action at the row after each sampled
transition (the last row repeats its own), as the FQL codebase gives ReBRAC's critic BC term. Like
the reference, this ignores episode boundaries: at an episode's last step it is the next episode's
first action.
"""

import jax
import jax.numpy as jnp
import numpy as np

TRAINING_KEYS = ('observations', 'actions', 'next_observations', 'rewards', 'masks')
TASK_KEYS = ('rewards', 'masks')  # With several tasks of one family, these get a leading task axis.


def to_device(dataset):
    """The training keys of a host dataset as float32 device arrays."""
    return {key: jax.device_put(np.asarray(dataset[key], dtype=np.float32)) for key in TRAINING_KEYS}


def sample_batch(data, rng, batch_size, task=None):
    """Uniform batch (with replacement) of transitions from a device dataset.

    With `task`, the dataset holds several tasks' `rewards` and `masks` (a leading task axis over
    one copy of everything else) and the batch takes task `task`'s; the indices are drawn first,
    so only the batch's rows of that task are gathered, never a whole row per agent.
    """
    size = data['observations'].shape[0]
    indices = jax.random.randint(rng, (batch_size,), 0, size)
    if task is None:
        batch = jax.tree_util.tree_map(lambda x: x[indices], data)
    else:
        batch = {key: value[task, indices] if key in TASK_KEYS else value[indices] for key, value in data.items()}
    batch['next_actions'] = data['actions'][jnp.minimum(indices + 1, size - 1)]
    return batch


def sample_batch_numpy(dataset, rng: np.random.Generator, batch_size):
    """Host-side sampling as the FQL codebase does it (kept for the benchmark's baseline)."""
    size = len(dataset['observations'])
    indices = rng.integers(0, size, size=batch_size)
    batch = {key: dataset[key][indices] for key in TRAINING_KEYS}
    batch['next_actions'] = dataset['actions'][np.minimum(indices + 1, size - 1)]
    return batch
