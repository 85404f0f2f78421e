"""Offline datasets as dicts of arrays, kept on the accelerator and sampled there.

The FQL codebase samples every batch with NumPy on the host and copies it over; here the
whole dataset is copied once and batches are gathered on the device with `jax.random`,
so a fused `lax.scan` of many updates never leaves the device.
"""

import jax
import numpy as np

TRAINING_KEYS = ('observations', 'actions', 'next_observations', 'rewards', 'masks')


def to_device(dataset):
    """The training keys of a host dataset as float32 device arrays."""
    return {key: jax.device_put(np.asarray(dataset[key], dtype=np.float32)) for key in TRAINING_KEYS}


def sample_batch(data, rng, batch_size):
    """Uniform batch (with replacement) of transitions from a device dataset."""
    size = data['observations'].shape[0]
    indices = jax.random.randint(rng, (batch_size,), 0, size)
    return jax.tree_util.tree_map(lambda x: x[indices], data)


def sample_batch_numpy(dataset, rng: np.random.Generator, batch_size):
    """Host-side sampling as the FQL codebase does it (kept for the benchmark's baseline)."""
    indices = rng.integers(0, len(dataset['observations']), size=batch_size)
    return {key: dataset[key][indices] for key in TRAINING_KEYS}
