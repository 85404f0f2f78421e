"""Latent priors for one-step actors."""

import jax
import jax.numpy as jnp


def sample_ball(rng, batch_shape, dim):
    """Uniform samples in the `dim`-ball of radius sqrt(dim) (DROL's bounded prior).

    Direction v/|v| with v ~ N(0, I); radius R * u^(1/dim), u ~ U(0, 1), which makes the
    density uniform in volume rather than concentrated near the centre.
    """
    direction_rng, radius_rng = jax.random.split(rng)
    v = jax.random.normal(direction_rng, (*batch_shape, dim))
    direction = v / jnp.maximum(jnp.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
    u = jax.random.uniform(radius_rng, (*batch_shape, 1))
    return direction * jnp.sqrt(dim) * u ** (1.0 / dim)


def sample_gaussian(rng, batch_shape, dim):
    """Standard normal latents (FQL's prior)."""
    return jax.random.normal(rng, (*batch_shape, dim))
