"""What every agent shares: its fields, the jitted update, the target-network step, and the
class-level knowledge the rest of the program asks for (config, checks, presets, inference).

An agent is a `flax.struct.PyTreeNode` with `rng`, `network` (one `TrainState` holding every
module) and a static `config`, as in the FQL codebase. A subclass provides `create` (through
`init_network`), `critic_loss` and `actor_loss` (or its own `total_loss`), `update_step`
(unjitted, so fused loops and multi-seed `vmap` can wrap it) and `sample_actions`, and its
file provides `get_config()`.
"""

import functools
import inspect
import sys
from typing import Any

import flax
import jax
import ml_collections
import optax

from utils.encoders import ENCODERS
from utils.errors import closest
from utils.flax_utils import ModuleDict, TrainState, nonpytree_field
from utils.losses import AGGREGATIONS


@functools.lru_cache(maxsize=None)
def adam(learning_rate):
    """One optimiser object per learning rate: agents of different seeds then share their static
    fields, so they can be stacked into one pytree and trained together under `vmap`."""
    return optax.adam(learning_rate=learning_rate)


def common_config(agent_name, **settings):
    """The settings every agent of the FQL codebase has, with the references' defaults, then the
    agent's own `settings`."""
    return ml_collections.ConfigDict(
        dict(
            agent_name=agent_name,
            lr=3e-4,
            batch_size=256,
            actor_hidden_dims=(512, 512, 512, 512),
            value_hidden_dims=(512, 512, 512, 512),
            layer_norm=True,  # Critic (and value) layer norm.
            actor_layer_norm=False,
            discount=0.99,
            tau=0.005,
            encoder=ml_collections.config_dict.placeholder(str),  # Image encoder (utils/encoders.py) on pixels.
            **settings,
        )
    )


def init_network(modules, init_rng, learning_rate, targets=('critic',)):
    """The `TrainState` of a `ModuleDict` of {name: (module, example inputs)}, with each
    `target_<name>` of `targets` starting as a copy of `<name>` (its own parameters), as the
    references initialise them (a copy in its own buffers, since `update` donates every buffer of the
    agent, and one buffer cannot be donated twice). Weakly typed leaves (a `LogParam` scalar) are made
    strongly typed, else Adam's first steps change their type and `update` compiles again.

    Initialisation is one jitted program: run eagerly, every layer's initialiser, forward pass and
    optimiser slot is a program of its own, and compiling those (about 100 for one agent) took longer
    than a tiny run's training. The parameters are bit-identical to the eager ones.
    """
    network_def = ModuleDict({name: module for name, (module, _) in modules.items()})
    inputs = {name: args for name, (_, args) in modules.items()}
    params, opt_state = initialiser(network_def, tuple(targets), learning_rate)(init_rng, inputs)
    return TrainState(
        step=jax.numpy.asarray(1, jax.numpy.int32),
        model_def=network_def,
        tx=adam(learning_rate),
        params=params,
        opt_state=opt_state,
    )


def initialiser(network_def, targets, learning_rate):
    """`initial_state` for this network, jitted once per network (and input shapes) when its modules
    can key a cache; modules with list attributes (settings read back from JSON) get a jit of their own."""
    try:
        return _cached_initialiser(network_def, targets, learning_rate)
    except TypeError:
        return jax.jit(functools.partial(initial_state, network_def, targets, learning_rate))


@functools.lru_cache(maxsize=64)
def _cached_initialiser(network_def, targets, learning_rate):
    return jax.jit(functools.partial(initial_state, network_def, targets, learning_rate))


def initial_state(network_def, targets, learning_rate, rng, inputs):
    """`init_network`'s parameters (targets as copies) and Adam state."""
    params = dict(network_def.init(rng, **inputs)['params'])
    for name in targets:
        params[f'modules_target_{name}'] = jax.tree_util.tree_map(jax.numpy.copy, params[f'modules_{name}'])
    params = jax.tree_util.tree_map(lambda x: jax.numpy.asarray(x, dtype=x.dtype), params)
    return params, adam(learning_rate).init(params)


def with_target_update(network, old_params, module_name, tau):
    """`network` whose `modules_target_<module_name>` moved by Polyak averaging toward the module's
    parameters from *before* this step's optimiser update (`old_params`), as the references do:
    target <- tau * old + (1 - tau) * target."""
    params = dict(network.params)
    params[f'modules_target_{module_name}'] = optax.incremental_update(
        old_params[f'modules_{module_name}'], old_params[f'modules_target_{module_name}'], tau
    )
    return network.replace(params=params)


class Agent(flax.struct.PyTreeNode):
    rng: Any
    network: TrainState
    config: Any = nonpytree_field()

    # Config keys whose value must be one of `utils.losses.AGGREGATIONS`, checked when present.
    aggregation_keys = ('q_agg',)
    # OGBench family or D4RL dataset -> the settings the 'paper' preset gives this agent there.
    presets = {}
    # The same for offline-to-online runs (--online_steps > 0), applied on top of `presets`.
    online_presets = {}
    # Keys that `paper_table` (a paper's per-environment table) sets for this agent: where it has no
    # value for an environment, `preset_note` says that the default is kept.
    paper_keys = ()
    paper_table = ''

    def total_loss(self, batch, grad_params, rng=None):
        """Critic loss + actor loss on one batch (keys split as the references do), with their
        metrics under `critic/` and `actor/`. Agents with more terms override it."""
        rng = self.rng if rng is None else rng
        _, actor_rng, critic_rng = jax.random.split(rng, 3)
        critic_loss, critic_info = self.critic_loss(batch, grad_params, critic_rng)
        actor_loss, actor_info = self.actor_loss(batch, grad_params, actor_rng)
        info = {f'critic/{k}': v for k, v in critic_info.items()}
        info.update({f'actor/{k}': v for k, v in actor_info.items()})
        return critic_loss + actor_loss, info

    def update_step(self, batch):
        raise NotImplementedError

    def batch_shape(self, observations):
        """The leading axes of `observations`: all but the image's (H, W, C) with an encoder, all but
        the state vector's without; () for one observation."""
        return observations.shape[: -3 if self.config['encoder'] else -1]

    def encoded(self, module_name, observations, params=None):
        """The features the `<module_name>_encoder` module makes of `observations` (the observations
        themselves on states): a flow policy encodes once and integrates all its steps on them, as
        the FQL codebase does."""
        if self.config['encoder'] is None:
            return observations
        return self.network.select(f'{module_name}_encoder')(observations, params=params)

    @functools.partial(jax.jit, donate_argnums=0)
    def update(self, batch):
        """`update_step` jitted, for the FQL codebase's loop `agent, info = agent.update(batch)`.

        The old agent is donated, as the fused training call's agents are: the new agent takes over
        its buffers in place instead of new ones each call (on an H200, `update` without donation ran
        3x slower than the fused single update, which donates). The call deletes the old agent's
        arrays: keep a copy (`jax.tree_util.tree_map(jnp.copy, agent)`) to use it afterwards.
        """
        return self.update_step(batch)

    @classmethod
    def default_config(cls):
        """The `get_config()` of the agent's own file."""
        return sys.modules[cls.__module__].get_config()

    @classmethod
    def config_file(cls):
        """The agent's file, which `--agent=<file>` loads through ml_collections."""
        return inspect.getfile(cls)

    @classmethod
    def inference_module_names(cls, config):
        """Parameter groups that acting needs; evaluation workers receive only these."""
        return ('modules_actor',)

    @classmethod
    def preset_overrides(cls, preset, env_key):
        """The settings `preset` gives this agent on `env_key` (OGBench family or D4RL dataset): the
        `presets` table under 'paper' and 'drol_star' (which tunes DROL only), nothing under 'none'."""
        return dict(cls.presets.get(env_key, {})) if preset in ('paper', 'drol_star') else {}

    @classmethod
    def online_preset_overrides(cls, preset, env_key):
        """What `preset` adds for an offline-to-online run on `env_key`: the `online_presets` table
        under 'paper' and 'drol_star', nothing under 'none'."""
        return dict(cls.online_presets.get(env_key, {})) if preset in ('paper', 'drol_star') else {}

    @classmethod
    def preset_note(cls, preset, env_key, online=False, explicit_keys=()):
        """A sentence naming the `paper_keys` that `preset` leaves at their defaults on `env_key`
        because the paper's table gives no value there ('' when it gives them all, or under 'none'),
        so that a run never passes a default off as the paper's setting."""
        given = cls.preset_overrides(preset, env_key)
        if online:
            given.update(cls.online_preset_overrides(preset, env_key))
        missing = [key for key in cls.paper_keys if key not in given and key not in explicit_keys]
        if preset == 'none' or not missing:
            return ''
        config = cls.default_config()
        defaults = ', '.join(f'{key}={config[key]}' for key in missing)
        setting = 'offline-to-online' if online else 'offline'
        return (
            f'{cls.paper_table} give {config.agent_name} no {", ".join(missing)} for {env_key} ({setting}): '
            f'keeping the default{"s" * (len(missing) > 1)} {defaults}.'
        )

    @classmethod
    def config_problems(cls, config):
        """Impossible values of the common settings, as sentences (empty when all is well).
        Subclasses add their own keys' checks."""
        problems = []

        def need(ok, message):
            if not ok:
                problems.append(message)

        need(config.batch_size >= 1, f'batch_size must be at least 1 (got {config.batch_size}).')
        need(config.lr > 0, f'lr must be positive (got {config.lr}).')
        need(0 < config.discount <= 1, f'discount must lie in (0, 1] (got {config.discount}).')
        if 'tau' in config:
            need(0 < config.tau <= 1, f'tau must lie in (0, 1] (got {config.tau}).')
        for key in ('actor_hidden_dims', 'value_hidden_dims'):
            if key in config:
                dims = tuple(config[key])
                need(
                    len(dims) > 0 and all(isinstance(d, int) and d > 0 for d in dims),
                    f'{key} must be a non-empty tuple of positive sizes (got {dims}).',
                )
        if config.get('encoder') is not None:
            need(
                config.encoder in ENCODERS,
                f'Unknown encoder {config.encoder!r}.{closest(str(config.encoder), ENCODERS)} '
                f'Known encoders: {", ".join(ENCODERS)}.',
            )
        for key in cls.aggregation_keys:
            value = str(config[key])
            need(
                value in AGGREGATIONS,
                f'{key} must be one of {AGGREGATIONS} (got {config[key]!r}).{closest(value, AGGREGATIONS)}',
            )
        return problems
