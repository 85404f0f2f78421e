"""Loss pieces the agents share: critic-head aggregation and the normalised Q loss."""

import jax
import jax.numpy as jnp

AGGREGATIONS = ('mean', 'min')


def aggregate_heads(qs, how):
    """Combines critic heads (axis 0) by 'mean' or 'min'."""
    if how == 'min':
        return qs.min(axis=0)
    if how == 'mean':
        return qs.mean(axis=0)
    raise ValueError(f'Unknown aggregation {how!r}; use one of {AGGREGATIONS}.')


def q_loss(q, normalize):
    """-mean(q); with `normalize`, scaled by 1 / max(mean|q|, 1e-6) without gradient.

    The scale makes the Q term's size independent of the reward scale, so one bc_coef or
    alpha works across tasks. (FQL's reference divides by mean|q| with no floor; the two agree
    whenever mean|q| >= 1e-6.)
    """
    loss = -q.mean()
    if normalize:
        loss = loss * jax.lax.stop_gradient(1.0 / jnp.maximum(jnp.abs(q).mean(), 1e-6))
    return loss
