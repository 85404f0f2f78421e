"""The one-step actor-critic DROL and FQL share: the critic, its target, the update step and
one-pass inference.

Both agents are one-step actors pi(s, z) trained against an ensembled critic; they differ
in the latent prior, the actor loss and any extra networks, which subclasses provide.

The random keys are split exactly as in the reference code (seohongpark/fql and
muzhancun/DROL), so that from the same parameters and key the project draws the same
noise and computes the same update; `tests/test_golden_references.py` checks this.
"""

import flax
import jax
import jax.numpy as jnp

from agents.agent import Agent, common_config, init_network, with_target_update
from utils.encoders import make_encoder
from utils.losses import aggregate_heads
from utils.networks import LatentActor, Value


def base_config():
    """Settings common to both agents (the references' defaults)."""
    return common_config(
        '',
        q_agg='mean',  # Heads' aggregation in the critic target.
        critic_num_candidates=1,  # N > 1: best of N next actions under the target critic.
        critic_selection_q_agg='min',
        normalize_q_loss=True,
    )


class OneStepActorCritic(Agent):
    """Subclasses add `sample_latents`, `actor_loss`, extra modules and `get_config`."""

    aggregation_keys = ('q_agg', 'critic_selection_q_agg')

    def sample_latents(self, rng, batch_shape):
        raise NotImplementedError

    def actor_loss(self, batch, grad_params, rng):
        raise NotImplementedError

    def policy_latents(self, seed, batch_shape):
        """The latents of one policy sample per state (acting, critic backup, `mse` diagnostic)."""
        return self.sample_latents(seed, batch_shape)

    def policy_actions(self, observations, latents, params=None):
        """clip(pi(s, z)) with the given parameters (current ones by default)."""
        return jnp.clip(self.network.select('actor')(observations, latents, params=params), -1, 1)

    def backup_actions(self, next_observations, rng):
        """a' for the TD target: one policy sample, or the target critic's best of N."""
        num_candidates = self.config['critic_num_candidates']
        if num_candidates <= 1:
            return self.policy_actions(next_observations, self.policy_latents(rng, self.batch_shape(next_observations)))
        latents = self.sample_latents(rng, (*self.batch_shape(next_observations), num_candidates))  # (B, N, d)
        candidates = self.policy_actions(next_observations, latents)  # Each state paired with its N latents.
        scores = aggregate_heads(
            self.network.select('target_critic')(next_observations, candidates), self.config['critic_selection_q_agg']
        )
        best = jnp.argmax(scores, axis=-1)
        return jnp.take_along_axis(candidates, best[..., None, None], axis=-2)[..., 0, :]

    def critic_loss(self, batch, grad_params, rng):
        """TD loss toward r + gamma * mask * agg_j barQ_j(s', a')."""
        _, sample_rng = jax.random.split(rng)
        next_actions = self.backup_actions(batch['next_observations'], sample_rng)
        next_qs = self.network.select('target_critic')(batch['next_observations'], next_actions)
        next_q = aggregate_heads(next_qs, self.config['q_agg'])

        target_q = batch['rewards'] + self.config['discount'] * batch['masks'] * next_q
        q = self.network.select('critic')(batch['observations'], batch['actions'], params=grad_params)
        critic_loss = jnp.square(q - target_q).mean()
        return critic_loss, {'critic_loss': critic_loss, 'q_mean': q.mean(), 'q_max': q.max(), 'q_min': q.min()}

    def update_step(self, batch):
        """One Adam step on critic + actor, then Polyak averaging of the target critic.

        As in both references, the target moves toward the critic parameters from *before*
        this step's Adam update. Not jitted, so that fused loops (`lax.scan`) and multi-seed
        `vmap` can wrap it.
        """
        new_rng, rng = jax.random.split(self.rng)
        network, info = self.network.apply_loss_fn(lambda params: self.total_loss(batch, params, rng))
        network = with_target_update(network, self.network.params, 'critic', self.config['tau'])
        return self.replace(network=network, rng=new_rng), info

    @jax.jit
    def sample_actions(self, observations, seed=None, temperature=1.0):
        """One latent, one forward pass, clipped; works for one observation or a batch. `temperature`
        is accepted, as in the references, and has no effect on a one-step latent policy."""
        latents = self.policy_latents(self.rng if seed is None else seed, self.batch_shape(observations))
        return self.policy_actions(observations, latents)

    @classmethod
    def build(cls, seed, ex_observations, ex_actions, config, extra_modules):
        """Creates the agent with actor, critic, target critic and `extra_modules`. On pixels each of
        the three has an encoder of its own, as the FQL codebase's one-step actor and critic.

        `extra_modules` maps a name to (module, example inputs) for agent-specific networks.
        The target critic is a module of its own (its own parameters), initialised as a copy
        of the critic's, as in the references.
        """
        rng, init_rng = jax.random.split(jax.random.PRNGKey(seed))
        action_dim = ex_actions.shape[-1]
        ex_latents = jnp.zeros((*ex_actions.shape[:-1], action_dim))

        def critic():
            return Value(
                config['value_hidden_dims'],
                layer_norm=config['layer_norm'],
                num_ensembles=2,
                encoder=make_encoder(config['encoder']),
            )

        actor = LatentActor(
            config['actor_hidden_dims'],
            action_dim,
            layer_norm=config['actor_layer_norm'],
            encoder=make_encoder(config['encoder']),
        )
        modules = {
            'actor': (actor, (ex_observations, ex_latents)),
            'critic': (critic(), (ex_observations, ex_actions)),
            'target_critic': (critic(), (ex_observations, ex_actions)),
            **extra_modules,
        }
        network = init_network(modules, init_rng, config['lr'])
        frozen = flax.core.FrozenDict(**config.to_dict(), action_dim=action_dim)
        return cls(rng=rng, network=network, config=frozen)

    @classmethod
    def config_problems(cls, config):
        problems = super().config_problems(config)
        if config.critic_num_candidates < 1:
            problems.append(f'critic_num_candidates must be at least 1 (got {config.critic_num_candidates}).')
        return problems
