"""FQL: flow-matching loss as in the spec, and a distillation target without gradient."""

import jax
import jax.numpy as jnp
import numpy as np

from tests.helpers import random_batch, tiny_agent


def test_flow_loss_matches_spec():
    batch = random_batch()
    agent = tiny_agent('fql', batch)
    rng = jax.random.PRNGKey(5)
    noise_rng, time_rng = jax.random.split(rng)
    loss = agent.flow_matching_loss(batch['observations'], batch['actions'], agent.network.params, noise_rng, time_rng)

    x_0 = jax.random.normal(noise_rng, batch['actions'].shape)
    t = jax.random.uniform(time_rng, (batch['actions'].shape[0], 1))
    x_1 = batch['actions']
    x_t = (1 - t) * x_0 + t * x_1
    v = agent.network.select('actor_bc_flow')(batch['observations'], x_t, t)
    np.testing.assert_allclose(loss, jnp.mean(jnp.square(v - (x_1 - x_0))), rtol=1e-6)


def test_flow_actions_are_euler_steps_clipped():
    batch = random_batch()
    agent = tiny_agent('fql', batch, flow_steps=4)
    noises = jax.random.normal(jax.random.PRNGKey(0), batch['actions'].shape)
    x = noises
    for i in range(4):
        t = jnp.full((x.shape[0], 1), i / 4)
        x = x + agent.network.select('actor_bc_flow')(batch['observations'], x, t) / 4
    np.testing.assert_allclose(
        agent.flow_actions(batch['observations'], noises), jnp.clip(x, -1, 1), rtol=1e-5, atol=1e-6
    )


def test_distillation_target_carries_no_gradient():
    """The flow field's gradient does not depend on alpha; the one-step actor's does."""
    batch = random_batch()
    rng = jax.random.PRNGKey(1)

    def actor_grads(alpha):
        agent = tiny_agent('fql', batch, alpha=alpha)
        return jax.grad(lambda p: agent.actor_loss(batch, p, rng)[0])(agent.network.params)

    low, high = actor_grads(0.0), actor_grads(100.0)
    for a, b in zip(
        jax.tree_util.tree_leaves(low['modules_actor_bc_flow']),
        jax.tree_util.tree_leaves(high['modules_actor_bc_flow']),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    differences = [
        np.abs(a - b).max()
        for a, b in zip(
            jax.tree_util.tree_leaves(low['modules_actor']),
            jax.tree_util.tree_leaves(high['modules_actor']),
            strict=True,
        )
    ]
    assert max(differences) > 1e-4
