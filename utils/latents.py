"""Latent priors for one-step actors."""

import jax
import jax.numpy as jnp


def sample_ball(rng, batch_shape, dim):
    """Uniform samples in the `dim`-ball of radius sqrt(dim) (DROL's bounded prior).

    Direction v/|v| with v ~ N(0, I); radius R * u^(1/dim), u ~ U(0, 1), which makes the
    density uniform in volume rather than concentrated near the centre. The small constants
    are the DROL authors' (|v| = sqrt(sum v^2 + 1e-6), then + 1e-8), so the same key gives
    the same latents as their code.
    """
    direction_rng, radius_rng = jax.random.split(rng)
    v = jax.random.normal(direction_rng, (*batch_shape, dim))
    direction = v / (jnp.sqrt(jnp.sum(v**2, axis=-1, keepdims=True) + 1e-6) + 1e-8)
    u = jax.random.uniform(radius_rng, (*batch_shape, 1))
    return jnp.sqrt(jnp.float32(dim)) * u ** (1.0 / (dim + 1e-8)) * direction


def sample_gaussian(rng, batch_shape, dim):
    """Standard normal latents (FQL's prior)."""
    return jax.random.normal(rng, (*batch_shape, dim))
