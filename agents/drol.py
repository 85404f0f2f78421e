"""DROL: Dynamic Routing for Offline RL.

A one-step actor pi(s, z) with a bounded latent prior. Each state gets K candidate actions;
each dataset action is routed to its nearest candidate (top-1) and only that winner is
trained, with behaviour cloning plus critic guidance. See ../shared/DROL_SPEC.md.

Cost: the K*B candidates are needed only for the argmin, which carries no gradient, so they
are formed under `stop_gradient` and the actor and critic are evaluated with gradient on
the B winners alone. The gradient equals that of backpropagating through all K*B
candidates (only winners receive any) at a fraction of the cost.
"""

import jax
import jax.numpy as jnp

from agents.base import OneStepActorCritic, aggregate_heads, base_config
from utils.latents import sample_ball


class DROLAgent(OneStepActorCritic):
    def sample_latents(self, rng, batch_shape):
        return sample_ball(rng, batch_shape, self.config['action_dim'])

    def route(self, observations, actions, grad_params, rng):
        """Draws K candidates per state without gradient; returns them, their latents, distances, winners."""
        num_candidates = self.config['num_candidates']
        latents = self.sample_latents(rng, (*actions.shape[:-1], num_candidates))  # (B, K, d)
        repeated = jnp.broadcast_to(observations[..., None, :], (*latents.shape[:-1], observations.shape[-1]))
        candidates = jax.lax.stop_gradient(self.policy_actions(repeated, latents, params=grad_params))
        distances = jnp.square(candidates - actions[..., None, :]).mean(axis=-1)  # (B, K)
        winners = jnp.argmin(distances, axis=-1)
        return candidates, latents, distances, winners

    def q_loss(self, observations, actions):
        """-mean Qagg(s, a), scaled by 1 / mean|Qagg| (no gradient) when `normalize_q_loss`."""
        qs = self.network.select('critic')(observations, actions)
        q = aggregate_heads(qs, self.config['actor_q_agg'])
        q_loss = -q.mean()
        if self.config['normalize_q_loss']:
            q_loss = q_loss * jax.lax.stop_gradient(1.0 / jnp.maximum(jnp.abs(q).mean(), 1e-6))
        return q_loss, q

    def actor_loss(self, batch, grad_params, rng):
        observations, actions = batch['observations'], batch['actions']
        candidates, latents, distances, winners = self.route(observations, actions, grad_params, rng)
        winner_latents = jnp.take_along_axis(latents, winners[:, None, None], axis=1)[:, 0]
        winner_actions = self.policy_actions(observations, winner_latents, params=grad_params)

        bc_loss = jnp.square(winner_actions - actions).mean()
        q_loss, q = self.q_loss(observations, winner_actions)
        actor_loss = self.config['bc_coef'] * bc_loss + self.config['q_coef'] * q_loss
        return actor_loss, {
            'actor_loss': actor_loss,
            'bc_loss': bc_loss,
            'q_loss': q_loss,
            'q': q.mean(),
            **routing_diagnostics(candidates, distances, winners),
        }

    @jax.jit
    def sample_actions(self, observations, seed=None):
        """One pass by default; with `best_of_n`, the critic's pick among N prior samples."""
        rng = self.rng if seed is None else seed
        if not self.config['best_of_n']:
            return self.policy_actions(observations, self.sample_latents(rng, observations.shape[:-1]))
        num = self.config['best_of_n_candidates']
        repeated = jnp.broadcast_to(observations[..., None, :], (*observations.shape[:-1], num, observations.shape[-1]))
        candidates = self.policy_actions(repeated, self.sample_latents(rng, repeated.shape[:-1]))  # (..., N, d)
        scores = self.network.select('critic')(repeated, candidates).mean(axis=0)  # (..., N)
        if self.config['density_filter']:
            pairwise = jnp.square(candidates[..., :, None, :] - candidates[..., None, :, :]).sum(-1).mean(-1)
            keep = self.config['density_keep']
            dense = jnp.argsort(pairwise, axis=-1)[..., :keep]
            candidates = jnp.take_along_axis(candidates, dense[..., None], axis=-2)
            scores = jnp.take_along_axis(scores, dense, axis=-1)
        best = jnp.argmax(scores, axis=-1)
        return jnp.take_along_axis(candidates, best[..., None, None], axis=-2)[..., 0, :]

    @classmethod
    def create(cls, seed, ex_observations, ex_actions, config):
        return cls.build(seed, ex_observations, ex_actions, config, extra_modules={})


def routing_diagnostics(candidates, distances, winners):
    """Spread of the K candidates and how the data is routed among them (collapse alarm)."""
    num_candidates = candidates.shape[-2]
    action_dim = candidates.shape[-1]
    centroid = candidates.mean(axis=-2, keepdims=True)
    spread = jnp.square(candidates - centroid).sum(-1).mean() / action_dim
    # Mean over k != l of |c_k - c_l|^2 / d equals 2K/(K-1) times the spread.
    pairwise = 2.0 * num_candidates / max(num_candidates - 1, 1) * spread
    shares = jnp.bincount(winners, length=num_candidates) / winners.shape[0]
    entropy = -jnp.sum(jnp.where(shares > 0, shares * jnp.log(jnp.where(shares > 0, shares, 1.0)), 0.0))
    return {
        'mse': distances[:, 0].mean(),  # One plain prior sample against the dataset action.
        'min_dist': distances.min(axis=-1).mean(),
        'candidate_spread': spread,
        'pairwise_dist': pairwise,
        'winner_entropy': entropy,
        'winner_max_share': shares.max(),
    }


def get_config():
    config = base_config()
    config.update(
        dict(
            agent_name='drol',
            num_candidates=16,  # K.
            bc_coef=1.0,
            q_coef=1.0,
            actor_q_agg='min',
            best_of_n=False,  # Inference only: pick the critic's best of N prior samples.
            best_of_n_candidates=32,
            density_filter=False,  # With best_of_n: keep the `density_keep` densest candidates first.
            density_keep=8,
        )
    )
    return config
