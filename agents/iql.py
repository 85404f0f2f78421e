"""IQL: Implicit Q-Learning, one of the FQL paper's baselines (the FQL codebase's agents/iql.py).

Values are learned without ever querying an action outside the data: a state value V(s) is
the `expectile` of the target critic's min Q(s, a) over dataset actions, and the critics
regress to r + gamma * mask * V(s'). A Gaussian policy is then extracted by advantage-weighted
regression (AWR, weights exp(alpha * (Q - V)) capped at 100) or by DDPG+BC.

`ImplicitQLearning` holds the value learning that IFQL (agents/ifql.py) shares; the random keys
are split as in the reference, so equal parameters and keys give equal numbers
(tests/test_golden_references.py).
"""

import flax
import jax
import jax.numpy as jnp

from agents.agent import Agent, common_config, init_network, with_target_update
from utils.encoders import make_encoder
from utils.errors import closest
from utils.losses import aggregate_heads, q_loss
from utils.networks import Actor, Value

ACTOR_LOSSES = ('awr', 'ddpgbc')

# Per-environment settings of the 'paper' preset: the FQL paper's own IQL runs (Appendix E.2:
# Table 6 offline, Table 7 offline-to-online; transcribed in docs/algorithm.md). The AWR inverse
# temperature alpha per OGBench family, one value for its five tasks; expectile 0.9 everywhere (the
# default); [256] * 4 MLPs on the state-based manipulation families, where IQL overfits with 512;
# discount 0.995 on the long-horizon families, as the FQL README's IQL command on humanoidmaze. The
# paper gives no alpha for antsoccer offline nor for D4RL (its IQL numbers there come from prior work):
# those keep the default, and `paper_keys` lets a run say so.
LONG_HORIZON = ('antmaze-giant-navigate', 'humanoidmaze-medium-navigate', 'humanoidmaze-large-navigate')
SMALL_MLPS = {'actor_hidden_dims': (256, 256, 256, 256), 'value_hidden_dims': (256, 256, 256, 256)}
PRESETS = {
    'antmaze-large-navigate': {'alpha': 10.0},
    **{family: {'discount': 0.995, 'alpha': 10.0} for family in LONG_HORIZON},
    'antsoccer-arena-navigate': {'discount': 0.995},
    'cube-single-play': {'alpha': 1.0, **SMALL_MLPS},
    'cube-double-play': {'alpha': 0.3, **SMALL_MLPS},
    'scene-play': {'alpha': 10.0, **SMALL_MLPS},
    'puzzle-3x3-play': {'alpha': 10.0, **SMALL_MLPS},
    'puzzle-4x4-play': {'alpha': 3.0, **SMALL_MLPS},
    # Pixel-based tasks (Table 6's visual rows) keep the [512] * 4 MLPs.
    'visual-cube-single-play': {'alpha': 1.0},
    'visual-cube-double-play': {'alpha': 0.3},
    'visual-scene-play': {'alpha': 10.0},
    'visual-puzzle-3x3-play': {'alpha': 10.0},
    'visual-puzzle-4x4-play': {'alpha': 3.0},
}
# Table 7, applied on top of PRESETS when --online_steps > 0 (none for D4RL: prior work's numbers).
ONLINE_PRESETS = {
    'humanoidmaze-medium-navigate': {'alpha': 10.0},
    'antsoccer-arena-navigate': {'alpha': 1.0},
    'cube-double-play': {'alpha': 0.3},
    'scene-play': {'alpha': 10.0},
    'puzzle-4x4-play': {'alpha': 3.0},
}


def expectile_loss(diff, expectile):
    """Asymmetric squared error: weight `expectile` where diff >= 0, 1 - expectile below, so that
    minimising it over v in diff = q - v gives the expectile of q (the max as expectile -> 1)."""
    return jnp.where(diff >= 0, expectile, 1 - expectile) * jnp.square(diff)


class ImplicitQLearning(Agent):
    """IQL's value learning (state value, double critic, target critic); subclasses add the policy:
    `actor_loss`, `sample_actions`, `create` (through `build`) and their settings' checks."""

    aggregation_keys = ()  # Min over the two critics is fixed, as in the reference.

    def actor_loss(self, batch, grad_params, rng):
        raise NotImplementedError

    def value_loss(self, batch, grad_params):
        """Expectile regression of V(s) toward min_j barQ_j(s, a) on dataset actions."""
        q = aggregate_heads(self.network.select('target_critic')(batch['observations'], batch['actions']), 'min')
        v = self.network.select('value')(batch['observations'], params=grad_params)
        value_loss = expectile_loss(q - v, self.config['expectile']).mean()
        return value_loss, {'value_loss': value_loss, 'v_mean': v.mean(), 'v_max': v.max(), 'v_min': v.min()}

    def critic_loss(self, batch, grad_params):
        """Both heads toward r + gamma * mask * V(s'), squared errors summed over heads. The q_*
        metrics describe that target, as the reference logs them."""
        next_v = self.network.select('value')(batch['next_observations'])
        target = batch['rewards'] + self.config['discount'] * batch['masks'] * next_v
        qs = self.network.select('critic')(batch['observations'], batch['actions'], params=grad_params)
        critic_loss = jnp.square(qs - target).sum(axis=0).mean()
        return critic_loss, {
            'critic_loss': critic_loss,
            'q_mean': target.mean(),
            'q_max': target.max(),
            'q_min': target.min(),
        }

    def total_loss(self, batch, grad_params, rng=None):
        rng = self.rng if rng is None else rng
        value_loss, value_info = self.value_loss(batch, grad_params)
        critic_loss, critic_info = self.critic_loss(batch, grad_params)
        _, actor_rng = jax.random.split(rng)
        actor_loss, actor_info = self.actor_loss(batch, grad_params, actor_rng)
        info = {f'value/{k}': v for k, v in value_info.items()}
        info.update({f'critic/{k}': v for k, v in critic_info.items()})
        info.update({f'actor/{k}': v for k, v in actor_info.items()})
        return value_loss + critic_loss + actor_loss, info

    def update_step(self, batch):
        """One Adam step on value + critic + actor, then Polyak averaging of the target critic
        toward the critic from before the step (as the reference does)."""
        new_rng, rng = jax.random.split(self.rng)
        network, info = self.network.apply_loss_fn(lambda params: self.total_loss(batch, params, rng))
        network = with_target_update(network, self.network.params, 'critic', self.config['tau'])
        return self.replace(network=network, rng=new_rng), info

    @classmethod
    def build(cls, seed, ex_observations, ex_actions, config, policy_modules):
        """The agent with value, critic, target critic (a copy of the critic) and `policy_modules`,
        a mapping name -> (module, example inputs). On pixels each value network has an encoder of
        its own, as in the FQL codebase."""
        rng, init_rng = jax.random.split(jax.random.PRNGKey(seed))

        def value(num_ensembles):
            encoder = make_encoder(config['encoder'])
            return Value(config['value_hidden_dims'], config['layer_norm'], num_ensembles, encoder=encoder)

        def critic():
            return value(num_ensembles=2)

        modules = {
            'value': (value(num_ensembles=1), (ex_observations,)),
            'critic': (critic(), (ex_observations, ex_actions)),
            'target_critic': (critic(), (ex_observations, ex_actions)),
            **policy_modules,
        }
        network = init_network(modules, init_rng, config['lr'])
        frozen = flax.core.FrozenDict(**config.to_dict(), action_dim=ex_actions.shape[-1])
        return cls(rng=rng, network=network, config=frozen)

    @classmethod
    def config_problems(cls, config):
        problems = super().config_problems(config)
        if not 0 < config.expectile < 1:
            problems.append(f'expectile must lie in (0, 1) (got {config.expectile}).')
        return problems


class IQLAgent(ImplicitQLearning):
    presets = PRESETS
    online_presets = ONLINE_PRESETS
    paper_keys = ('alpha',)
    paper_table = "The FQL paper's Tables 6 and 7"

    def actor_loss(self, batch, grad_params, rng):
        """AWR: maximise exp(alpha * A) log pi(a | s) on dataset actions, A = min_j Q_j - V, weights
        capped at 100. DDPG+BC: maximise the normalised min_j Q_j(s, pi(s)) plus alpha log pi(a | s)."""
        observations, actions = batch['observations'], batch['actions']
        dist = self.network.select('actor')(observations, params=grad_params)
        log_prob = dist.log_prob(actions)
        diagnostics = {
            'bc_log_prob': log_prob.mean(),
            'mse': jnp.square(dist.mode() - actions).mean(),
            'std': dist.scale_diag.mean(),
        }
        if self.config['actor_loss'] == 'awr':
            v = self.network.select('value')(observations)
            adv = aggregate_heads(self.network.select('critic')(observations, actions), 'min') - v
            weights = jnp.minimum(jnp.exp(adv * self.config['alpha']), 100.0)
            actor_loss = -(weights * log_prob).mean()
            return actor_loss, {'actor_loss': actor_loss, 'adv': adv.mean(), **diagnostics}

        # DDPG+BC: the policy's mode (constant std) or a sample is scored by the critic.
        policy_actions = dist.mode() if self.config['const_std'] else dist.sample(seed=rng)
        q = aggregate_heads(self.network.select('critic')(observations, jnp.clip(policy_actions, -1, 1)), 'min')
        actor_q_loss = q_loss(q, normalize=True)
        bc_loss = -(self.config['alpha'] * log_prob).mean()
        actor_loss = actor_q_loss + bc_loss
        return actor_loss, {
            'actor_loss': actor_loss,
            'q_loss': actor_q_loss,
            'bc_loss': bc_loss,
            'q_mean': q.mean(),
            'q_abs_mean': jnp.abs(q).mean(),
            **diagnostics,
        }

    @jax.jit
    def sample_actions(self, observations, seed=None, temperature=1.0):
        """A sample of pi(. | s) (standard deviation scaled by `temperature`), clipped to [-1, 1]."""
        dist = self.network.select('actor')(observations, temperature=temperature)
        return jnp.clip(dist.sample(seed=self.rng if seed is None else seed), -1, 1)

    @classmethod
    def create(cls, seed, ex_observations, ex_actions, config):
        actor = Actor(
            config['actor_hidden_dims'],
            ex_actions.shape[-1],
            layer_norm=config['actor_layer_norm'],
            state_dependent_std=False,
            const_std=config['const_std'],
            encoder=make_encoder(config['encoder']),
        )
        return cls.build(seed, ex_observations, ex_actions, config, {'actor': (actor, (ex_observations,))})

    @classmethod
    def config_problems(cls, config):
        problems = super().config_problems(config)
        if config.actor_loss not in ACTOR_LOSSES:
            problems.append(
                f'actor_loss must be one of {ACTOR_LOSSES} (got {config.actor_loss!r}).'
                f'{closest(str(config.actor_loss), ACTOR_LOSSES)}'
            )
        if config.alpha < 0:
            problems.append(f'alpha must not be negative (got {config.alpha}).')
        return problems


def get_config():
    """The reference's settings and defaults."""
    return common_config(
        'iql',
        expectile=0.9,
        actor_loss='awr',  # 'awr' or 'ddpgbc'.
        alpha=10.0,  # AWR inverse temperature, or DDPG+BC's BC coefficient.
        const_std=True,  # Actor standard deviation fixed at 1 (else a learned vector).
    )
