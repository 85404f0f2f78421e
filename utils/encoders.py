"""Image encoders for pixel observations: the FQL codebase's IMPALA family, chosen by name
(`--agent.encoder=impala_small`).

An encoder takes uint8 images (..., H, W, C), with stacked frames along C, and returns a feature
vector per image. Images stay uint8 until here (a quarter of float32's memory on the device) and
are scaled to [0, 1] as the encoder's first step, as in the FQL codebase. Parameter names follow
that codebase (`stack_blocks_i/Conv_j`, `MLP_0/Dense_0`), so its checkpoints and the golden fixtures
map onto these modules 1:1.
"""

import functools
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from utils.networks import MLP
from utils.precision import compute_dtype


def conv3x3(features):
    """3x3 convolution, stride 1, 'SAME' padding, Xavier-uniform kernel; its product in the process's
    compute dtype, as `utils.networks.dense` (callers cast back to float32)."""
    return nn.Conv(
        features,
        kernel_size=(3, 3),
        strides=1,
        padding='SAME',
        kernel_init=nn.initializers.xavier_uniform(),
        dtype=compute_dtype(),
    )


class ResnetStack(nn.Module):
    """A convolution, 3x3 max pooling with stride 2 (halving height and width), then `num_blocks`
    residual blocks of two ReLU-convolutions each."""

    num_features: int
    num_blocks: int

    @nn.compact
    def __call__(self, x):
        x = conv3x3(self.num_features)(x).astype(jnp.float32)
        x = nn.max_pool(x, window_shape=(3, 3), strides=(2, 2), padding='SAME')
        for _ in range(self.num_blocks):
            residual = conv3x3(self.num_features)(nn.relu(x)).astype(jnp.float32)
            residual = conv3x3(self.num_features)(nn.relu(residual)).astype(jnp.float32)
            x = x + residual
        return x


class ImpalaEncoder(nn.Module):
    """IMPALA's ResNet (Espeholt et al., 2018): one `ResnetStack` per entry of `stack_sizes`, ReLU,
    flattened, then an MLP whose last layer is activated too (GELU), giving `mlp_hidden_dims[-1]`
    features."""

    stack_sizes: Sequence[int] = (16, 32, 32)
    num_blocks: int = 2
    mlp_hidden_dims: Sequence[int] = (512,)

    def setup(self):
        self.stack_blocks = [ResnetStack(size, self.num_blocks) for size in self.stack_sizes]
        self.mlp = MLP(self.mlp_hidden_dims, activate_final=True, name='MLP_0')

    def __call__(self, images):
        x = images.astype(jnp.float32) / 255.0
        for stack in self.stack_blocks:
            x = stack(x)
        x = nn.relu(x)
        return self.mlp(x.reshape((*x.shape[:-3], -1)))


# The FQL codebase's names and sizes; 'impala_small' is the one its paper uses on the visual tasks.
ENCODERS = {
    'impala': ImpalaEncoder,
    'impala_debug': functools.partial(ImpalaEncoder, stack_sizes=(4, 4), num_blocks=1),
    'impala_small': functools.partial(ImpalaEncoder, num_blocks=1),
    'impala_large': functools.partial(ImpalaEncoder, stack_sizes=(64, 128, 128), mlp_hidden_dims=(1024,)),
}


def make_encoder(name):
    """A new encoder module of the family `name` (a key of ENCODERS), or None when `name` is None
    (state observations, used as they are)."""
    return None if name is None else ENCODERS[name]()
