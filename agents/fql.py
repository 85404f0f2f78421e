"""FQL: Flow Q-Learning, the one-step flow baseline DROL is compared against.

A behaviour-cloning flow field v(s, x_t, t) is trained by flow matching; a one-step actor
mu(s, z) is distilled from its 10-step Euler solution and pushed up the critic.
Equations: docs/algorithm.md.
"""

import functools

import jax
import jax.numpy as jnp

from agents.one_step import OneStepActorCritic, base_config
from utils.encoders import make_encoder
from utils.flow import euler_actions, flow_matching_loss
from utils.latents import sample_gaussian
from utils.losses import q_loss
from utils.networks import ActorVectorField

# Per-environment settings: the FQL README's exact commands (sources: docs/algorithm.md).
# OGBench family or D4RL dataset -> settings.
PRESETS = {
    'antmaze-large-navigate': {'q_agg': 'min', 'alpha': 10.0},
    'antmaze-giant-navigate': {'discount': 0.995, 'q_agg': 'min', 'alpha': 10.0},
    'humanoidmaze-medium-navigate': {'discount': 0.995, 'alpha': 30.0},
    'humanoidmaze-large-navigate': {'discount': 0.995, 'alpha': 30.0},
    'antsoccer-arena-navigate': {'discount': 0.995, 'alpha': 10.0},
    'cube-single-play': {'alpha': 300.0},
    'cube-double-play': {'alpha': 300.0},
    'scene-play': {'alpha': 300.0},
    'puzzle-3x3-play': {'alpha': 1000.0},
    'puzzle-4x4-play': {'alpha': 1000.0},
    # Pixel-based tasks: the FQL paper's Table 6 visual rows (the FQL README has no visual commands).
    'visual-cube-single-play': {'alpha': 300.0},
    'visual-cube-double-play': {'alpha': 100.0},
    'visual-scene-play': {'alpha': 100.0},
    'visual-puzzle-3x3-play': {'alpha': 300.0},
    'visual-puzzle-4x4-play': {'alpha': 300.0},
    **{f'antmaze-{maze}-v2': {'alpha': 10.0} for maze in ('umaze', 'umaze-diverse', 'medium-play', 'medium-diverse')},
    **{f'antmaze-{maze}-v2': {'alpha': 3.0} for maze in ('large-play', 'large-diverse')},
    **{
        f'{dataset}-v1': {'q_agg': 'min', 'alpha': alpha}
        for dataset, alpha in (
            ('pen-human', 10000.0), ('pen-cloned', 10000.0), ('pen-expert', 3000.0),
            ('door-human', 30000.0), ('door-cloned', 30000.0), ('door-expert', 30000.0),
            ('hammer-human', 30000.0), ('hammer-cloned', 10000.0), ('hammer-expert', 30000.0),
            ('relocate-human', 10000.0), ('relocate-cloned', 30000.0), ('relocate-expert', 30000.0),
        )
    },
}  # fmt: skip

# Offline-to-online runs: the FQL README's "Offline-to-online RL" commands (1M offline + 1M online
# steps), where they differ from or add to the offline ones. Its other agents' online commands
# (IQL, ReBRAC, IFQL, RLPD on humanoidmaze-medium-navigate) set what their offline presets set.
ONLINE_PRESETS = {
    'humanoidmaze-medium-navigate': {'discount': 0.995, 'alpha': 100.0},
    'antsoccer-arena-navigate': {'discount': 0.995, 'alpha': 30.0},
    'cube-double-play': {'alpha': 300.0},
    'scene-play': {'alpha': 300.0},
    'puzzle-4x4-play': {'alpha': 1000.0},
    **{f'antmaze-{maze}-v2': {'alpha': 10.0} for maze in ('umaze', 'umaze-diverse', 'medium-play', 'medium-diverse')},
    **{f'antmaze-{maze}-v2': {'alpha': 3.0} for maze in ('large-play', 'large-diverse')},
    **{
        f'{task}-cloned-v1': {'q_agg': 'min', 'alpha': alpha}
        for task, alpha in (('pen', 1000.0), ('door', 1000.0), ('hammer', 1000.0), ('relocate', 10000.0))
    },
}


class FQLAgent(OneStepActorCritic):
    presets = PRESETS
    online_presets = ONLINE_PRESETS

    def sample_latents(self, rng, batch_shape):
        return sample_gaussian(rng, batch_shape, self.config['action_dim'])

    def policy_latents(self, seed, batch_shape):
        # The reference's `sample_actions` splits its seed and draws the noise from the first half.
        return self.sample_latents(jax.random.split(seed)[0], batch_shape)

    def flow_actions(self, observations, noises, params=None):
        """Euler integration of the BC flow from x_0 = noises over `flow_steps` steps, clipped."""
        velocity = functools.partial(self.network.select('actor_bc_flow'), params=params)
        features = self.encoded('actor_bc_flow', observations, params)
        return euler_actions(velocity, features, noises, self.config['flow_steps'])

    def flow_matching_loss(self, observations, actions, grad_params, x_rng, t_rng):
        """mean |v(s, x_t, t) - (x_1 - x_0)|^2 on the linear path x_t = (1 - t) x_0 + t x_1."""
        velocity = functools.partial(self.network.select('actor_bc_flow'), params=grad_params)
        features = self.encoded('actor_bc_flow', observations, grad_params)
        return flow_matching_loss(velocity, features, actions, x_rng, t_rng)

    def actor_loss(self, batch, grad_params, rng):
        observations, actions = batch['observations'], batch['actions']
        rng, x_rng, t_rng = jax.random.split(rng, 3)
        bc_flow_loss = self.flow_matching_loss(observations, actions, grad_params, x_rng, t_rng)

        mse_rng, noise_rng = jax.random.split(rng)
        noises = self.sample_latents(noise_rng, actions.shape[:-1])
        target = jax.lax.stop_gradient(self.flow_actions(observations, noises))
        onestep = self.network.select('actor')(observations, noises, params=grad_params)
        distill_loss = jnp.square(onestep - target).mean()

        q = self.network.select('critic')(observations, jnp.clip(onestep, -1, 1)).mean(axis=0)
        actor_q_loss = q_loss(q, self.config['normalize_q_loss'])
        actor_loss = bc_flow_loss + self.config['alpha'] * distill_loss + actor_q_loss

        sample = self.policy_actions(observations, self.policy_latents(mse_rng, self.batch_shape(observations)))
        return actor_loss, {
            'actor_loss': actor_loss,
            'bc_flow_loss': bc_flow_loss,
            'distill_loss': distill_loss,
            'q_loss': actor_q_loss,
            'q': q.mean(),
            'mse': jnp.square(sample - actions).mean(),
        }

    @classmethod
    def create(cls, seed, ex_observations, ex_actions, config):
        """The one-step actor and critics (`build`), and the BC flow; on pixels the flow's encoder is a
        module of its own (`actor_bc_flow_encoder`), as in the FQL codebase."""
        flow = ActorVectorField(config['actor_hidden_dims'], ex_actions.shape[-1], config['actor_layer_norm'])
        extra = {}
        ex_features = ex_observations
        if config['encoder'] is not None:
            encoder = make_encoder(config['encoder'])
            extra['actor_bc_flow_encoder'] = (encoder, (ex_observations,))
            ex_features = jnp.zeros((*ex_observations.shape[:-3], encoder.mlp_hidden_dims[-1]))
        extra['actor_bc_flow'] = (flow, (ex_features, ex_actions, ex_actions[..., :1]))
        return cls.build(seed, ex_observations, ex_actions, config, extra_modules=extra)

    @classmethod
    def config_problems(cls, config):
        problems = super().config_problems(config)
        if config.flow_steps < 1:
            problems.append(f'flow_steps must be at least 1 (got {config.flow_steps}).')
        if config.alpha < 0:
            problems.append(f'alpha must not be negative (got {config.alpha}).')
        return problems


def get_config():
    config = base_config()
    config.update(dict(agent_name='fql', alpha=10.0, flow_steps=10, normalize_q_loss=False))
    return config
