"""What DROL and FQL share: the critic, its target, the update step and one-pass inference.

Both agents are one-step actors pi(s, z) trained against an ensembled critic; they differ
only in the latent prior and the actor loss, which subclasses provide through
`sample_latents` and `actor_loss`.
"""

import functools
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from utils.flax_utils import ModuleDict, TrainState, nonpytree_field
from utils.networks import LatentActor, Value

AGGREGATIONS = ('mean', 'min')


def aggregate_heads(qs, how):
    """Combines critic heads (axis 0) by 'mean' or 'min'."""
    if how == 'min':
        return qs.min(axis=0)
    if how == 'mean':
        return qs.mean(axis=0)
    raise ValueError(f'Unknown aggregation {how!r}; use one of {AGGREGATIONS}.')


def base_config():
    """Settings common to both agents (spec defaults)."""
    return ml_collections.ConfigDict(
        dict(
            agent_name='',
            lr=3e-4,
            batch_size=256,
            actor_hidden_dims=(512, 512, 512, 512),
            value_hidden_dims=(512, 512, 512, 512),
            layer_norm=True,  # Critic layer norm.
            actor_layer_norm=False,
            discount=0.99,
            tau=0.005,
            q_agg='mean',  # Heads' aggregation in the critic target.
            critic_num_candidates=1,  # N > 1: best of N next actions under the target critic.
            critic_selection_q_agg='min',
            normalize_q_loss=True,
        )
    )


@functools.lru_cache(maxsize=None)
def adam(learning_rate):
    """One optimiser object per learning rate: agents of different seeds then share their static
    fields, so they can be stacked into one pytree and trained together under `vmap`."""
    return optax.adam(learning_rate=learning_rate)


class OneStepActorCritic(flax.struct.PyTreeNode):
    """Base agent; subclasses add `sample_latents`, `actor_loss`, extra modules and `get_config`."""

    rng: Any
    network: TrainState
    config: Any = nonpytree_field()

    def sample_latents(self, rng, batch_shape):
        raise NotImplementedError

    def actor_loss(self, batch, grad_params, rng):
        raise NotImplementedError

    def policy_actions(self, observations, latents, params=None):
        """clip(pi(s, z)) with the given parameters (current ones by default)."""
        return jnp.clip(self.network.select('actor')(observations, latents, params=params), -1, 1)

    def critic_loss(self, batch, grad_params, rng):
        """TD loss toward r + gamma * mask * agg_j barQ_j(s', a'), a' the best of N prior samples."""
        num_candidates = self.config['critic_num_candidates']
        next_observations = batch['next_observations']
        batch_shape = next_observations.shape[:-1]
        next_observations = jnp.broadcast_to(next_observations, (num_candidates, *next_observations.shape))
        latents = self.sample_latents(rng, (num_candidates, *batch_shape))
        next_actions = self.policy_actions(next_observations, latents)
        next_qs = self.network.select('target_critic')(next_observations, next_actions)  # (heads, N, B)
        best = jnp.argmax(aggregate_heads(next_qs, self.config['critic_selection_q_agg']), axis=0)  # (B,)
        next_qs = jnp.take_along_axis(next_qs, best[None, None], axis=1)[:, 0]  # (heads, B)
        next_q = aggregate_heads(next_qs, self.config['q_agg'])

        target_q = batch['rewards'] + self.config['discount'] * batch['masks'] * next_q
        q = self.network.select('critic')(batch['observations'], batch['actions'], params=grad_params)
        critic_loss = jnp.square(q - target_q).mean()
        return critic_loss, {'critic_loss': critic_loss, 'q_mean': q.mean(), 'q_max': q.max(), 'q_min': q.min()}

    def total_loss(self, batch, grad_params, rng=None):
        rng = self.rng if rng is None else rng
        critic_rng, actor_rng = jax.random.split(rng)
        critic_loss, critic_info = self.critic_loss(batch, grad_params, critic_rng)
        actor_loss, actor_info = self.actor_loss(batch, grad_params, actor_rng)
        info = {f'critic/{k}': v for k, v in critic_info.items()}
        info.update({f'actor/{k}': v for k, v in actor_info.items()})
        return critic_loss + actor_loss, info

    def update_step(self, batch):
        """One gradient step on critic + actor, then Polyak averaging of the target critic.

        Not jitted, so that fused loops (`lax.scan`) and multi-seed `vmap` can wrap it.
        """
        new_rng, rng = jax.random.split(self.rng)
        network, info = self.network.apply_loss_fn(lambda params: self.total_loss(batch, params, rng))
        tau = self.config['tau']
        params = dict(network.params)
        params['modules_target_critic'] = jax.tree_util.tree_map(
            lambda p, tp: p * tau + tp * (1 - tau), params['modules_critic'], params['modules_target_critic']
        )
        return self.replace(network=network.replace(params=params), rng=new_rng), info

    @jax.jit
    def update(self, batch):
        return self.update_step(batch)

    @jax.jit
    def sample_actions(self, observations, seed=None):
        """One latent, one forward pass, clipped; works for one observation or a batch."""
        latents = self.sample_latents(self.rng if seed is None else seed, observations.shape[:-1])
        return self.policy_actions(observations, latents)

    @classmethod
    def build(cls, seed, ex_observations, ex_actions, config, extra_modules):
        """Creates the agent with actor, critic, target critic and `extra_modules`.

        `extra_modules` maps a name to (module, example inputs) for agent-specific networks.
        """
        rng, init_rng = jax.random.split(jax.random.PRNGKey(seed))
        action_dim = ex_actions.shape[-1]
        ex_latents = jnp.zeros((*ex_actions.shape[:-1], action_dim))
        critic = Value(config['value_hidden_dims'], layer_norm=config['layer_norm'], num_ensembles=2)
        modules = {
            'actor': (
                LatentActor(config['actor_hidden_dims'], action_dim, layer_norm=config['actor_layer_norm']),
                (ex_observations, ex_latents),
            ),
            'critic': (critic, (ex_observations, ex_actions)),
            'target_critic': (critic, (ex_observations, ex_actions)),
            **extra_modules,
        }
        network_def = ModuleDict({name: module for name, (module, _) in modules.items()})
        params = network_def.init(init_rng, **{name: args for name, (_, args) in modules.items()})['params']
        params = dict(params)
        params['modules_target_critic'] = params['modules_critic']
        network = TrainState.create(network_def, params, adam(config['lr']))
        frozen = flax.core.FrozenDict(**config.to_dict(), action_dim=action_dim)
        return cls(rng=rng, network=network, config=frozen)
