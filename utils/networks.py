"""Networks shared by the agents: MLP, ensembled critic, latent actor, flow field."""

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp


def default_init(scale=1.0):
    return nn.initializers.variance_scaling(scale, 'fan_avg', 'uniform')


class MLP(nn.Module):
    """Dense layers with GELU in between and optional layer norm after each hidden activation."""

    hidden_dims: Sequence[int]
    activate_final: bool = False
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x):
        for i, size in enumerate(self.hidden_dims):
            x = nn.Dense(size, kernel_init=default_init())(x)
            if i + 1 < len(self.hidden_dims) or self.activate_final:
                x = nn.gelu(x)
                if self.layer_norm:
                    x = nn.LayerNorm()(x)
        return x


class Value(nn.Module):
    """Q(s, a) with `num_ensembles` independent heads; returns shape (num_ensembles, ...).

    Parameter names follow the FQL codebase (`value_net/...`), so its checkpoints map 1:1.
    """

    hidden_dims: Sequence[int]
    layer_norm: bool = True
    num_ensembles: int = 2

    def setup(self):
        ensemble = nn.vmap(
            MLP,
            variable_axes={'params': 0},
            split_rngs={'params': True},
            in_axes=None,
            out_axes=0,
            axis_size=self.num_ensembles,
        )
        self.value_net = ensemble((*self.hidden_dims, 1), activate_final=False, layer_norm=self.layer_norm)

    def __call__(self, observations, actions):
        return self.value_net(jnp.concatenate([observations, actions], axis=-1))[..., 0]


class LatentActor(nn.Module):
    """One-step actor pi(s, z): MLP on concat(s, z) with a linear output (clipped by the caller).

    Parameter names follow the FQL codebase's one-step actor (`mlp/Dense_i`).
    """

    hidden_dims: Sequence[int]
    action_dim: int
    layer_norm: bool = False

    def setup(self):
        self.mlp = MLP((*self.hidden_dims, self.action_dim), activate_final=False, layer_norm=self.layer_norm)

    def __call__(self, observations, latents):
        return self.mlp(jnp.concatenate([observations, latents], axis=-1))


class ActorVectorField(nn.Module):
    """Flow-matching velocity v(s, x_t, t) for FQL's behaviour-cloning flow (names as in the FQL codebase)."""

    hidden_dims: Sequence[int]
    action_dim: int
    layer_norm: bool = False

    def setup(self):
        self.mlp = MLP((*self.hidden_dims, self.action_dim), activate_final=False, layer_norm=self.layer_norm)

    def __call__(self, observations, noisy_actions, times):
        return self.mlp(jnp.concatenate([observations, noisy_actions, times], axis=-1))
