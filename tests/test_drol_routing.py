"""DROL's efficient routing equals the naive form that backpropagates through all K candidates."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import random_batch, tiny_agent
from utils.losses import aggregate_heads

K = 8


def naive_actor_loss(agent, batch, grad_params, rng):
    """Spec form: all K*B candidates with gradient; the argmin picks which term survives."""
    observations, actions = batch['observations'], batch['actions']
    _, noise_rng = jax.random.split(rng)  # The first half of the key is for the `mse` diagnostic.
    latents = agent.sample_latents(noise_rng, (actions.shape[0], K))
    repeated = jnp.broadcast_to(observations[:, None], (*latents.shape[:-1], observations.shape[-1]))
    candidates = agent.policy_actions(repeated, latents, params=grad_params)
    return loss_from_candidates(agent, batch, candidates)


def loss_from_candidates(agent, batch, candidates):
    observations, actions = batch['observations'], batch['actions']
    distances = jnp.square(candidates - actions[:, None]).mean(-1)
    winners = jnp.argmin(jax.lax.stop_gradient(distances), axis=-1)
    winner_actions = jnp.take_along_axis(candidates, winners[:, None, None], axis=1)[:, 0]
    bc_loss = jnp.take_along_axis(distances, winners[:, None], axis=1).mean()
    q = aggregate_heads(agent.network.select('critic')(observations, winner_actions), agent.config['actor_q_agg'])
    q_loss = -q.mean()
    if agent.config['normalize_q_loss']:
        q_loss = q_loss * jax.lax.stop_gradient(1.0 / jnp.maximum(jnp.abs(q).mean(), 1e-6))
    return agent.config['bc_coef'] * bc_loss + agent.config['q_coef'] * q_loss


@pytest.mark.parametrize('actor_q_agg', ['min', 'mean'])
@pytest.mark.parametrize('normalize_q_loss', [True, False])
def test_efficient_loss_and_gradients_equal_naive(actor_q_agg, normalize_q_loss):
    batch = random_batch()
    agent = tiny_agent(
        'drol',
        batch,
        num_candidates=K,
        actor_q_agg=actor_q_agg,
        normalize_q_loss=normalize_q_loss,
        bc_coef=0.7,
        q_coef=1.3,
    )
    rng = jax.random.PRNGKey(3)
    params = agent.network.params

    efficient, efficient_grads = jax.value_and_grad(lambda p: agent.actor_loss(batch, p, rng)[0])(params)
    naive, naive_grads = jax.value_and_grad(lambda p: naive_actor_loss(agent, batch, p, rng))(params)

    np.testing.assert_allclose(efficient, naive, rtol=1e-5, atol=1e-6)
    grad_norm = optax_global_norm(naive_grads['modules_actor'])
    assert grad_norm > 1e-3  # The comparison is not vacuous.
    for a, b in zip(jax.tree_util.tree_leaves(efficient_grads), jax.tree_util.tree_leaves(naive_grads), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def optax_global_norm(tree):
    return float(jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree_util.tree_leaves(tree))))


def test_winner_is_nearest_candidate():
    batch = random_batch(batch_size=32)
    agent = tiny_agent('drol', batch, num_candidates=K)
    candidates, _, distances, winners = agent.route(
        batch['observations'], batch['actions'], agent.network.params, jax.random.PRNGKey(0)
    )
    brute = np.square(np.asarray(candidates) - batch['actions'][:, None]).mean(-1)
    np.testing.assert_allclose(distances, brute, rtol=1e-6)
    np.testing.assert_array_equal(winners, brute.argmin(-1))


def test_losing_candidates_get_exactly_zero_gradient():
    batch = random_batch()
    agent = tiny_agent('drol', batch, num_candidates=K)
    candidates, _, distances, winners = agent.route(
        batch['observations'], batch['actions'], agent.network.params, jax.random.PRNGKey(0)
    )
    grads = np.asarray(jax.grad(lambda c: loss_from_candidates(agent, batch, c))(candidates))
    is_winner = np.zeros(grads.shape[:2], bool)
    is_winner[np.arange(len(winners)), np.asarray(winners)] = True
    assert np.all(grads[~is_winner] == 0.0)
    assert np.all(np.abs(grads[is_winner]).sum(-1) > 0)


def test_routing_diagnostics_are_consistent():
    batch = random_batch(batch_size=64)
    agent = tiny_agent('drol', batch, num_candidates=K)
    _, info = agent.actor_loss(batch, agent.network.params, jax.random.PRNGKey(0))
    assert 0 < float(info['best_idx_max_prob']) <= 1
    assert 0 <= float(info['best_idx_entropy']) <= np.log(K) + 1e-6
    np.testing.assert_allclose(info['min_d2'], info['bc_loss'], rtol=1e-5)
    pairwise_from_spread = 2 * K / (K - 1) * info['candidate_divergence']
    np.testing.assert_allclose(info['candidate_pairwise_dist2'], pairwise_from_spread, rtol=1e-5)
    np.testing.assert_allclose(info['candidate_pairwise_dist'] ** 2, info['candidate_pairwise_dist2'], rtol=1e-5)
    assert float(info['duplicate_share']) < 0.05 and float(info['routing_margin']) > 0


def test_collapse_alarms_see_identical_candidates():
    """An actor that all but ignores its latent gives K near-identical candidates: the slot-index
    entropy stays near log K (it cannot see the collapse); duplicate_share is 1, routing_margin ~0."""
    batch = random_batch(batch_size=256)
    agent = tiny_agent('drol', batch, num_candidates=K)
    params = jax.tree_util.tree_map(lambda x: x, agent.network.params)
    first_kernel = params['modules_actor']['mlp']['Dense_0']['kernel']
    observation_dim = batch['observations'].shape[-1]
    params['modules_actor']['mlp']['Dense_0']['kernel'] = first_kernel.at[observation_dim:].multiply(1e-5)
    _, info = agent.actor_loss(batch, params, jax.random.PRNGKey(0))
    np.testing.assert_allclose(info['duplicate_share'], 1.0)
    np.testing.assert_allclose(info['routing_margin'], 0.0, atol=1e-6)
    assert float(info['best_idx_entropy']) > 0.9 * np.log(K)
