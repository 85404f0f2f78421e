"""The target critic is a network of its own, moved by Polyak averaging in the references' order."""

import jax
import numpy as np
import pytest

from tests.helpers import random_batch, tiny_agent


def train(agent, steps):
    for step in range(steps):
        agent, _ = agent.update(random_batch(seed=100 + step))
    return agent


@pytest.mark.parametrize('agent_name', ['drol', 'fql'])
def test_tau_changes_training(agent_name):
    """With a dead target (one that reads the critic's own parameters) tau would change nothing."""
    batch = random_batch()
    slow = train(tiny_agent(agent_name, batch, tau=1e-3), 5)
    fast = train(tiny_agent(agent_name, batch, tau=1.0), 5)
    slow_loss, _ = slow.critic_loss(batch, slow.network.params, jax.random.PRNGKey(0))
    fast_loss, _ = fast.critic_loss(batch, fast.network.params, jax.random.PRNGKey(0))
    assert abs(float(slow_loss) - float(fast_loss)) > 1e-4


@pytest.mark.parametrize('agent_name', ['drol', 'fql'])
def test_target_follows_polyak_recursion_of_pre_update_critic(agent_name):
    """bar_theta_{n+1} = tau * theta_n + (1 - tau) * bar_theta_n, theta_n the critic *before* step n's Adam update."""
    tau, steps = 0.3, 4
    agent = tiny_agent(agent_name, random_batch(), tau=tau)
    expected = jax.tree_util.tree_map(np.asarray, agent.network.params['modules_target_critic'])
    for step in range(steps):
        critic_before = jax.tree_util.tree_map(np.asarray, agent.network.params['modules_critic'])
        expected = jax.tree_util.tree_map(lambda c, t: tau * c + (1 - tau) * t, critic_before, expected)
        agent, _ = agent.update(random_batch(seed=step))
    target = agent.network.params['modules_target_critic']
    leaves = jax.tree_util.tree_leaves(target)
    for actual, wanted in zip(leaves, jax.tree_util.tree_leaves(expected), strict=True):
        np.testing.assert_allclose(actual, wanted, rtol=1e-6, atol=1e-7)
    critic = jax.tree_util.tree_leaves(agent.network.params['modules_critic'])
    assert max(float(np.abs(a - b).max()) for a, b in zip(leaves, critic, strict=True)) > 1e-4


@pytest.mark.parametrize('agent_name', ['drol', 'fql'])
def test_td_target_reads_target_parameters(agent_name):
    """Changing only the target critic's parameters changes the critic loss."""
    batch = random_batch()
    agent = tiny_agent(agent_name, batch)
    params = dict(agent.network.params)
    params['modules_target_critic'] = jax.tree_util.tree_map(lambda x: x + 0.1, params['modules_target_critic'])
    moved = agent.replace(network=agent.network.replace(params=params))
    rng = jax.random.PRNGKey(0)
    before, _ = agent.critic_loss(batch, agent.network.params, rng)
    after, _ = moved.critic_loss(batch, moved.network.params, rng)
    assert abs(float(before) - float(after)) > 1e-4
