"""Both agents: finite training, action shapes and bounds, one compilation of `update`."""

import jax
import numpy as np
import pytest

from agents import AGENTS
from tests.helpers import random_batch, tiny_agent


@pytest.mark.parametrize('agent_name', list(AGENTS))
def test_losses_stay_finite_and_update_compiles_once(agent_name, monkeypatch):
    traces = []
    update_step = AGENTS[agent_name].update_step
    monkeypatch.setattr(AGENTS[agent_name], 'update_step', lambda self, b: traces.append(1) or update_step(self, b))
    batch = random_batch()
    agent = tiny_agent(agent_name, batch, lr=1.2345e-4)  # A setting no other test uses: a fresh jit cache entry.
    for step in range(30):
        agent, info = agent.update(random_batch(seed=step))
        assert all(np.isfinite(np.asarray(v)).all() for v in info.values()), info
    assert len(traces) == 1  # `update` ran its Python body (was traced) once for 30 calls.
    assert int(agent.network.step) == 31


@pytest.mark.parametrize('agent_name', ['drol', 'fql'])
def test_sample_actions_single_and_batch_in_bounds(agent_name):
    batch = random_batch()
    agent = tiny_agent(agent_name, batch)
    single = np.asarray(agent.sample_actions(batch['observations'][0], seed=jax.random.PRNGKey(0)))
    many = np.asarray(agent.sample_actions(batch['observations'] * 100, seed=jax.random.PRNGKey(1)))
    assert single.shape == (3,) and many.shape == (16, 3)
    assert np.all(np.abs(single) <= 1) and np.all(np.abs(many) <= 1)


@pytest.mark.parametrize('density_filter', [False, True])
def test_drol_best_of_n_picks_highest_critic_value(density_filter):
    batch = random_batch()
    agent = tiny_agent(
        'drol', batch, best_of_n=True, best_of_n_candidates=12, density_filter=density_filter, density_keep=4
    )
    observation = batch['observations'][0]
    key = jax.random.PRNGKey(2)
    chosen = np.asarray(agent.sample_actions(observation, seed=key))
    candidates = agent.policy_actions(np.repeat(observation[None], 12, 0), agent.sample_latents(key, (12,)))
    scores = np.asarray(agent.network.select('critic')(np.repeat(observation[None], 12, 0), candidates).mean(0))
    candidates = np.asarray(candidates)
    if density_filter:
        pairwise = np.square(candidates[:, None] - candidates[None]).sum(-1).mean(-1)
        keep = np.argsort(pairwise)[:4]
        candidates, scores = candidates[keep], scores[keep]
    np.testing.assert_allclose(chosen, candidates[scores.argmax()], rtol=1e-5, atol=1e-6)


def test_critic_best_of_n_targets_use_highest_target_value():
    batch = random_batch()
    single = tiny_agent('drol', batch, critic_num_candidates=1)
    many = tiny_agent('drol', batch, critic_num_candidates=8)
    rng = jax.random.PRNGKey(0)
    loss_single, _ = single.critic_loss(batch, single.network.params, rng)
    loss_many, _ = many.critic_loss(batch, many.network.params, rng)
    assert np.isfinite(loss_single) and np.isfinite(loss_many) and float(loss_single) != float(loss_many)
