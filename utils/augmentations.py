"""Image augmentation on the device: the FQL codebase's random crop (`--p_aug`).

With probability `p_aug` a whole batch is shifted: every image is padded by 3 pixels on each side
(repeating its edge pixels) and cropped back to its size at an offset drawn per image, the same
offset for a transition's observation and next observation. It runs inside the fused update, so
the images never leave the device.
"""

import jax
import jax.numpy as jnp

PADDING = 3
AUGMENTED_KEYS = ('observations', 'next_observations')


def random_crop(images, offsets, padding=PADDING):
    """Each image (B, H, W, C) padded by `padding` in edge mode, then its H x W window starting at
    its (row, column) `offsets` (B, 2), each in [0, 2 * padding]."""
    padded = jnp.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)), mode='edge')

    def crop(image, offset):
        return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), images.shape[1:])

    return jax.vmap(crop)(padded, offsets)


def augment(batch, rng, p_aug):
    """`batch` whose observations and next observations are randomly cropped (the same offsets for
    both) with probability `p_aug`, else unchanged."""
    apply_rng, offset_rng = jax.random.split(rng)
    offsets = jax.random.randint(offset_rng, (batch['observations'].shape[0], 2), 0, 2 * PADDING + 1)
    apply = jax.random.uniform(apply_rng) < p_aug
    augmented = dict(batch)
    for key in AUGMENTED_KEYS:
        augmented[key] = jax.lax.cond(apply, random_crop, lambda images, _: images, batch[key], offsets)
    return augmented
