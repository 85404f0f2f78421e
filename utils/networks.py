"""Networks shared by the agents: MLP, ensembled critic / state value, latent actor, flow field,
Gaussian actor and a log-parameterised scalar.

On pixel observations the critic, state value and actors take an `encoder` (utils/encoders.py) of
their own, as in the FQL codebase: the network sees the encoder's features instead of the images,
and the encoder is trained with it. Networks that pair one observation with several actions or
latents (a state's K candidates, N flow samples) encode the observation once and broadcast its
features (`paired_features`), which equals encoding every repeated copy at a fraction of the cost.

Parameter names follow the FQL codebase (seohongpark/fql, utils/networks.py) throughout, so its
checkpoints and the golden fixtures map onto these modules 1:1. Every matrix product goes through
`dense`, whose operand dtype `utils.precision` chooses (bfloat16 under `--precision=bf16`).
"""

from typing import Optional, Sequence

import distrax
import flax.linen as nn
import jax.numpy as jnp

from utils.precision import compute_dtype


def default_init(scale=1.0):
    return nn.initializers.variance_scaling(scale, 'fan_avg', 'uniform')


def dense(features, scale=1.0):
    """nn.Dense with the FQL codebase's initialisation and its product in the process's compute
    dtype, read here at trace time (float32 parameters either way). Callers cast its output to
    float32, so only the products change precision, never what the losses see."""
    return nn.Dense(features, kernel_init=default_init(scale), dtype=compute_dtype())


def paired_features(encoder, observations, batch_shape):
    """The observations' features (the observations themselves without an encoder), broadcast to
    `batch_shape` + (features,): an observation of batch shape (B,) pairs with inputs of batch shape
    (B, K), the same features for all K of them."""
    features = observations if encoder is None else encoder(observations)
    extra_axes = len(batch_shape) - (features.ndim - 1)
    features = features.reshape((*features.shape[:-1], *(1,) * extra_axes, features.shape[-1]))
    return jnp.broadcast_to(features, (*batch_shape, features.shape[-1]))


class MLP(nn.Module):
    """Dense layers with GELU in between and optional layer norm after each hidden activation."""

    hidden_dims: Sequence[int]
    activate_final: bool = False
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x):
        for i, size in enumerate(self.hidden_dims):
            x = dense(size)(x).astype(jnp.float32)
            if i + 1 < len(self.hidden_dims) or self.activate_final:
                x = nn.gelu(x)
                if self.layer_norm:
                    x = nn.LayerNorm()(x)
        return x


class Value(nn.Module):
    """Q(s, a), or V(s) when `actions` is None, with `num_ensembles` independent heads.

    With several heads the output has a leading head axis (num_ensembles, ...); with one head
    the MLP is not vmapped, so neither its parameters nor its output carry that axis (as in the
    FQL codebase, whose IQL state value is such a single head). Parameter names follow the FQL
    codebase (`value_net/...`), so its checkpoints map 1:1.
    """

    hidden_dims: Sequence[int]
    layer_norm: bool = True
    num_ensembles: int = 2
    encoder: Optional[nn.Module] = None  # Shared by the heads, as in the FQL codebase.

    def setup(self):
        mlp = MLP
        if self.num_ensembles > 1:
            mlp = nn.vmap(
                MLP,
                variable_axes={'params': 0},
                split_rngs={'params': True},
                in_axes=None,
                out_axes=0,
                axis_size=self.num_ensembles,
            )
        self.value_net = mlp((*self.hidden_dims, 1), activate_final=False, layer_norm=self.layer_norm)

    def __call__(self, observations, actions=None):
        if actions is None:
            inputs = observations if self.encoder is None else self.encoder(observations)
        else:
            features = paired_features(self.encoder, observations, actions.shape[:-1])
            inputs = jnp.concatenate([features, actions], axis=-1)
        return self.value_net(inputs)[..., 0]


class LatentActor(nn.Module):
    """One-step actor pi(s, z): MLP on concat(s, z) with a linear output (clipped by the caller).

    Parameter names follow the FQL codebase's one-step actor (`mlp/Dense_i`).
    """

    hidden_dims: Sequence[int]
    action_dim: int
    layer_norm: bool = False
    encoder: Optional[nn.Module] = None

    def setup(self):
        self.mlp = MLP((*self.hidden_dims, self.action_dim), activate_final=False, layer_norm=self.layer_norm)

    def __call__(self, observations, latents):
        features = paired_features(self.encoder, observations, latents.shape[:-1])
        return self.mlp(jnp.concatenate([features, latents], axis=-1))


class ActorVectorField(nn.Module):
    """Flow-matching velocity v(s, x_t, t) for FQL's behaviour-cloning flow (names as in the FQL codebase).

    It has no encoder of its own: on pixels the agent encodes the observations once with a separate
    module and integrates the flow on those features, as the FQL codebase does."""

    hidden_dims: Sequence[int]
    action_dim: int
    layer_norm: bool = False

    def setup(self):
        self.mlp = MLP((*self.hidden_dims, self.action_dim), activate_final=False, layer_norm=self.layer_norm)

    def __call__(self, observations, noisy_actions, times):
        features = paired_features(None, observations, noisy_actions.shape[:-1])
        return self.mlp(jnp.concatenate([features, noisy_actions, times], axis=-1))


class LogParam(nn.Module):
    """A positive scalar stored as its log (`log_value`), e.g. SAC's entropy temperature: gradient
    steps on the log keep it positive and move it multiplicatively."""

    init_value: float = 1.0

    @nn.compact
    def __call__(self):
        return jnp.exp(self.param('log_value', lambda _: jnp.full((), jnp.log(self.init_value))))


class TanhSquashed(distrax.Transformed):
    """A Gaussian pushed through tanh, with `mode()` = tanh(Gaussian mode): distrax has no mode for
    transformed distributions, and deterministic actors (ReBRAC, evaluation) need one."""

    def mode(self):
        return self.bijector.forward(self.distribution.mode())


class Actor(nn.Module):
    """Gaussian policy pi(a | s): MLP features -> mean, and a standard deviation that is constant 1
    (`const_std`), a learned state-independent vector (`log_stds`) or a head of its own
    (`state_dependent_std`), its log clipped to [log_std_min, log_std_max]. Returns a distrax
    distribution; `temperature` scales the standard deviation. With `tanh_squash` the sample is
    squashed into (-1, 1). The small `final_fc_init_scale` starts the mean (and log std) near 0.

    Parameter names follow the FQL codebase (`actor_net`, `mean_net`, `log_std_net`, `log_stds`).
    """

    hidden_dims: Sequence[int]
    action_dim: int
    layer_norm: bool = False
    log_std_min: Optional[float] = -5
    log_std_max: Optional[float] = 2
    tanh_squash: bool = False
    state_dependent_std: bool = False
    const_std: bool = True
    final_fc_init_scale: float = 1e-2
    encoder: Optional[nn.Module] = None

    def setup(self):
        self.actor_net = MLP(self.hidden_dims, activate_final=True, layer_norm=self.layer_norm)
        self.mean_net = dense(self.action_dim, self.final_fc_init_scale)
        if self.state_dependent_std:
            self.log_std_net = dense(self.action_dim, self.final_fc_init_scale)
        elif not self.const_std:
            self.log_stds = self.param('log_stds', nn.initializers.zeros, (self.action_dim,))

    def __call__(self, observations, temperature=1.0):
        features = self.actor_net(observations if self.encoder is None else self.encoder(observations))
        means = self.mean_net(features).astype(jnp.float32)
        if self.state_dependent_std:
            log_stds = self.log_std_net(features).astype(jnp.float32)
        elif self.const_std:
            log_stds = jnp.zeros_like(means)
        else:
            log_stds = self.log_stds
        log_stds = jnp.clip(log_stds, self.log_std_min, self.log_std_max)
        distribution = distrax.MultivariateNormalDiag(loc=means, scale_diag=jnp.exp(log_stds) * temperature)
        if self.tanh_squash:
            distribution = TanhSquashed(distribution, distrax.Block(distrax.Tanh(), ndims=1))
        return distribution
