"""SAC with automatic entropy temperature, the FQL codebase's online agent (RLPD when the batches
mix prior data and online transitions).

A tanh-squashed Gaussian actor maximises mean_j Q_j(s, a) - alpha * log pi(a | s); twin critics
regress to r + gamma * m * agg_j Qbar_j(s', a'), a' ~ pi(s'), optionally minus the entropy term;
the temperature alpha (a `LogParam`) is tuned so that the policy's entropy tracks
`target_entropy` (default -target_entropy_multiplier * action_dim). Everything takes one Adam
step on one summed loss, as in the reference; `update_step` works on any batch, offline or online.

The random keys are split exactly as in the reference (seohongpark/fql, agents/sac.py), so that
from the same parameters and key the project draws the same samples and computes the same update;
`tests/test_golden_references.py` checks this.
"""

import flax
import jax
import jax.numpy as jnp
import ml_collections

from agents.agent import Agent, common_config, init_network, with_target_update
from agents.rebrac import policy_std
from utils.encoders import make_encoder
from utils.losses import aggregate_heads
from utils.networks import Actor, LogParam, Value

# Per-environment settings: only the discount. The FQL codebase gives SAC no offline settings; its
# README's RLPD command uses discount 0.995 on humanoidmaze-medium-navigate, the value its commands
# use on every long-horizon family listed here.
PRESETS = {
    'antmaze-giant-navigate': {'discount': 0.995},
    'humanoidmaze-medium-navigate': {'discount': 0.995},
    'humanoidmaze-large-navigate': {'discount': 0.995},
    'antsoccer-arena-navigate': {'discount': 0.995},
}


class SACAgent(Agent):
    presets = PRESETS

    def critic_loss(self, batch, grad_params, rng):
        """TD loss toward r + gamma * m * agg_j Qbar_j(s', a'), a' ~ pi(s') (current actor), with
        `backup_entropy` also - gamma * m * alpha * log pi(a' | s')."""
        _, sample_rng = jax.random.split(rng)
        next_dist = self.network.select('actor')(batch['next_observations'])
        next_actions, next_log_probs = next_dist.sample_and_log_prob(seed=sample_rng)
        next_qs = self.network.select('target_critic')(batch['next_observations'], next_actions)
        next_q = aggregate_heads(next_qs, self.config['q_agg'])

        target_q = batch['rewards'] + self.config['discount'] * batch['masks'] * next_q
        if self.config['backup_entropy']:
            alpha = self.network.select('alpha')()
            target_q = target_q - self.config['discount'] * batch['masks'] * next_log_probs * alpha

        q = self.network.select('critic')(batch['observations'], batch['actions'], params=grad_params)
        critic_loss = jnp.square(q - target_q).mean()
        return critic_loss, {'critic_loss': critic_loss, 'q_mean': q.mean(), 'q_max': q.max(), 'q_min': q.min()}

    def actor_loss(self, batch, grad_params, rng):
        """mean(alpha * log pi(a|s) - mean_j Q_j(s, a)), a ~ pi(s) reparameterised, with alpha and the
        critic held constant; plus the temperature loss alpha * (entropy - target_entropy), whose gradient
        reaches only alpha: alpha rises while the entropy is below its target and falls while above."""
        dist = self.network.select('actor')(batch['observations'], params=grad_params)
        actions, log_probs = dist.sample_and_log_prob(seed=rng)
        q = self.network.select('critic')(batch['observations'], actions).mean(axis=0)
        actor_loss = (log_probs * self.network.select('alpha')() - q).mean()

        alpha = self.network.select('alpha')(params=grad_params)
        entropy = -jax.lax.stop_gradient(log_probs).mean()
        alpha_loss = (alpha * (entropy - self.config['target_entropy'])).mean()
        total_loss = actor_loss + alpha_loss
        return total_loss, {
            'total_loss': total_loss,
            'actor_loss': actor_loss,
            'alpha_loss': alpha_loss,
            'alpha': alpha,
            'entropy': -log_probs.mean(),
            'std': policy_std(dist, self.config['tanh_squash']),
            'q': q.mean(),
        }

    def update_step(self, batch):
        """One Adam step on critic + actor + temperature, then Polyak averaging of the target critic
        toward the critic's pre-update parameters (as in the reference)."""
        new_rng, rng = jax.random.split(self.rng)
        network, info = self.network.apply_loss_fn(lambda params: self.total_loss(batch, params, rng))
        network = with_target_update(network, self.network.params, 'critic', self.config['tau'])
        return self.replace(network=network, rng=new_rng), info

    @jax.jit
    def sample_actions(self, observations, seed=None, temperature=1.0):
        """A sample of pi(s) with its standard deviation scaled by `temperature` (0: tanh of the mean), clipped."""
        dist = self.network.select('actor')(observations, temperature=temperature)
        return jnp.clip(dist.sample(seed=self.rng if seed is None else seed), -1, 1)

    @classmethod
    def create(cls, seed, ex_observations, ex_actions, config):
        """Actor, twin critic and its target (own parameters, initialised as a copy), temperature alpha = 1.

        An unset `target_entropy` becomes -target_entropy_multiplier * action_dim in the agent's config
        (the caller's config is left as it is). On pixels, which the FQL codebase's SAC does not take,
        the actor and each critic get an encoder of their own, wired as that codebase's ReBRAC."""
        rng, init_rng = jax.random.split(jax.random.PRNGKey(seed))
        action_dim = ex_actions.shape[-1]
        values = config.to_dict()
        if values['target_entropy'] is None:
            values['target_entropy'] = -values['target_entropy_multiplier'] * action_dim

        def critic():
            encoder = make_encoder(config['encoder'])
            return Value(config['value_hidden_dims'], layer_norm=config['layer_norm'], num_ensembles=2, encoder=encoder)

        actor = Actor(
            config['actor_hidden_dims'],
            action_dim,
            layer_norm=config['actor_layer_norm'],
            tanh_squash=config['tanh_squash'],
            state_dependent_std=config['state_dependent_std'],
            const_std=False,
            final_fc_init_scale=config['actor_fc_scale'],
            encoder=make_encoder(config['encoder']),
        )
        modules = {
            'critic': (critic(), (ex_observations, ex_actions)),
            'target_critic': (critic(), (ex_observations, ex_actions)),
            'actor': (actor, (ex_observations,)),
            'alpha': (LogParam(), ()),
        }
        network = init_network(modules, init_rng, config['lr'])  # It also makes LogParam's scalar strongly typed.
        frozen = flax.core.FrozenDict(**values, action_dim=action_dim)
        return cls(rng=rng, network=network, config=frozen)

    @classmethod
    def config_problems(cls, config):
        problems = super().config_problems(config)
        if config.target_entropy is None and config.target_entropy_multiplier < 0:
            problems.append(f'target_entropy_multiplier must not be negative (got {config.target_entropy_multiplier}).')
        if config.actor_fc_scale <= 0:
            problems.append(f'actor_fc_scale must be positive (got {config.actor_fc_scale}).')
        return problems


def get_config():
    """The reference's defaults."""
    return common_config(
        'sac',
        target_entropy=ml_collections.config_dict.placeholder(float),  # None: automatic (see below).
        target_entropy_multiplier=0.5,  # Automatic target entropy = -multiplier * action_dim.
        tanh_squash=True,
        state_dependent_std=True,  # Log-std head per state (else one learned vector).
        actor_fc_scale=0.01,  # Initial scale of the actor's last layers.
        q_agg='min',  # Heads' aggregation in the critic target (the actor always uses the mean).
        backup_entropy=False,  # Subtract the entropy term in the TD target.
    )
