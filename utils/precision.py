"""Precision of the networks' matrix products, chosen once per process (`--precision`).

- `default`: the device's own. float32 on the CPU; TF32 on NVIDIA GPUs since Ampere (about 1e-3
  relative error per product); bfloat16 passes on TPUs. A `JAX_DEFAULT_MATMUL_PRECISION` the user
  (or the test suite, which pins float32 for every process it starts) exported is kept.
- `highest`: float32 products everywhere (`jax_default_matmul_precision='highest'`), the numbers
  of the CPU fixtures.
- `bf16`: the operands of every product in `utils.networks` are cast to bfloat16 (parameters,
  optimizer state, network outputs and losses stay float32). A precision hint would not do: XLA on
  the CPU ignores it, and on NVIDIA GPUs the 'bfloat16' hint means TF32; a cast means bfloat16
  on every device.

The choice lives in environment variables, so the processes a run spawns (evaluation workers,
sweep children) inherit it: jax reads `JAX_DEFAULT_MATMUL_PRECISION` when it is imported, and the
networks read `PRECISION_VARIABLE` through `compute_dtype()` when they are traced. Jitted functions
keep the dtype of their first trace, so the precision is set before anything is compiled. Unset,
nothing changes: the networks trace exactly as they always did, bit for bit.
"""

import os

import jax
import jax.numpy as jnp

from utils.errors import UserError

PRECISIONS = ('default', 'highest', 'bf16')
PRECISION_VARIABLE = 'DROL_PRECISION'
MATMUL_VARIABLE = 'JAX_DEFAULT_MATMUL_PRECISION'  # jax's own variable for jax_default_matmul_precision.

DEFAULT_MEANING = {
    'cpu': 'float32 matrix products (the CPU has no faster float32 mode)',
    'gpu': 'the GPU decides: TF32 matrix products on NVIDIA Ampere and newer, float32 on older GPUs',
    'tpu': 'the TPU decides: float32 matrix products in bfloat16 passes',
}
MEANINGS = {
    'highest': 'float32 matrix products (jax_default_matmul_precision=highest), as the CPU fixtures',
    'bf16': 'bfloat16 matrix products in the networks (parameters, outputs and losses float32)',
}


def use_precision(name):
    """Applies precision `name` to this process and to every process it starts from now on, and
    returns a line saying what it means on this device. A bad name is a UserError."""
    if name not in PRECISIONS:
        raise UserError(f'--precision={name!r} is not a precision; use one of {", ".join(PRECISIONS)}.')
    os.environ[PRECISION_VARIABLE] = name
    exported = os.environ.get(MATMUL_VARIABLE)
    if name == 'highest':
        os.environ[MATMUL_VARIABLE] = 'highest'
    elif name == 'bf16':
        os.environ.pop(MATMUL_VARIABLE, None)  # The networks' bfloat16 operands decide, not a hint.
    jax.config.update('jax_default_matmul_precision', os.environ.get(MATMUL_VARIABLE))
    backend = jax.default_backend()
    if name == 'default' and exported:
        meaning = f'jax_default_matmul_precision={exported}, as exported in {MATMUL_VARIABLE}'
    else:
        meaning = MEANINGS.get(name) or DEFAULT_MEANING.get(backend, "the device's own matrix-product precision")
    return f'Precision {name} on {backend}: {meaning}.'


def compute_dtype():
    """dtype of the networks' matrix-product operands: bfloat16 under `bf16`, else None (flax's
    default: the inputs' and parameters' own float32)."""
    return jnp.bfloat16 if os.environ.get(PRECISION_VARIABLE) == 'bf16' else None
