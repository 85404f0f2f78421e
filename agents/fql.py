"""FQL: Flow Q-Learning, the one-step flow baseline DROL is compared against.

A behaviour-cloning flow field v(s, x_t, t) is trained by flow matching; a one-step actor
mu(s, z) is distilled from its 10-step Euler solution and pushed up the critic.
"""

import jax
import jax.numpy as jnp

from agents.base import OneStepActorCritic, base_config
from utils.latents import sample_gaussian
from utils.networks import ActorVectorField


class FQLAgent(OneStepActorCritic):
    def sample_latents(self, rng, batch_shape):
        return sample_gaussian(rng, batch_shape, self.config['action_dim'])

    def flow_actions(self, observations, noises, params=None):
        """Euler integration of the BC flow from x_0 = noises over `flow_steps` steps, clipped."""
        flow = self.network.select('actor_bc_flow')
        steps = self.config['flow_steps']

        def euler_step(actions, i):
            times = jnp.full((*observations.shape[:-1], 1), i / steps)
            return actions + flow(observations, actions, times, params=params) / steps, None

        actions, _ = jax.lax.scan(euler_step, noises, jnp.arange(steps))
        return jnp.clip(actions, -1, 1)

    def flow_matching_loss(self, observations, actions, grad_params, rng):
        """mean |v(s, x_t, t) - (x_1 - x_0)|^2 on the linear path x_t = (1 - t) x_0 + t x_1."""
        noise_rng, time_rng = jax.random.split(rng)
        x_0 = jax.random.normal(noise_rng, actions.shape)
        t = jax.random.uniform(time_rng, (*actions.shape[:-1], 1))
        x_t = (1 - t) * x_0 + t * actions
        velocity = self.network.select('actor_bc_flow')(observations, x_t, t, params=grad_params)
        return jnp.square(velocity - (actions - x_0)).mean()

    def actor_loss(self, batch, grad_params, rng):
        observations, actions = batch['observations'], batch['actions']
        flow_rng, noise_rng = jax.random.split(rng)
        bc_flow_loss = self.flow_matching_loss(observations, actions, grad_params, flow_rng)

        noises = self.sample_latents(noise_rng, actions.shape[:-1])
        target = jax.lax.stop_gradient(self.flow_actions(observations, noises))
        onestep = self.network.select('actor')(observations, noises, params=grad_params)
        distill_loss = jnp.square(onestep - target).mean()

        onestep = jnp.clip(onestep, -1, 1)
        q = self.network.select('critic')(observations, onestep).mean(axis=0)
        q_loss = -q.mean()
        if self.config['normalize_q_loss']:
            q_loss = q_loss * jax.lax.stop_gradient(1.0 / jnp.maximum(jnp.abs(q).mean(), 1e-6))

        actor_loss = bc_flow_loss + self.config['alpha'] * distill_loss + q_loss
        return actor_loss, {
            'actor_loss': actor_loss,
            'bc_flow_loss': bc_flow_loss,
            'distill_loss': distill_loss,
            'q_loss': q_loss,
            'q': q.mean(),
            'mse': jnp.square(onestep - actions).mean(),
        }

    @classmethod
    def create(cls, seed, ex_observations, ex_actions, config):
        flow = ActorVectorField(config['actor_hidden_dims'], ex_actions.shape[-1], config['actor_layer_norm'])
        ex_times = ex_actions[..., :1]
        extra = {'actor_bc_flow': (flow, (ex_observations, ex_actions, ex_times))}
        return cls.build(seed, ex_observations, ex_actions, config, extra_modules=extra)


def get_config():
    config = base_config()
    config.update(dict(agent_name='fql', alpha=10.0, flow_steps=10, normalize_q_loss=False))
    return config
