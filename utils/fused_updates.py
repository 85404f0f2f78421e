"""The fused multi-seed update step, its divergence check, and validation losses.

`make_train_fn` builds one jitted call that runs `num_updates` updates in a `lax.scan`
(sampling each batch on the device) for every seed at once (`vmap` over a leading seed
axis of the agent). With several devices, `shard_seeds` spreads the seed axis over them
and the same jitted call then runs data-parallel across seeds.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from utils.datasets import sample_batch


class TrainingDiverged(Exception):
    """A loss or parameter became NaN or inf; the last good checkpoint is kept."""


def data_key(seed):
    """The data-order key of a seed, distinct from the agent's own key."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), 0x5EED)


def make_train_fn(batch_size, num_updates, num_seeds):
    """(agents, data_keys, data) -> (agents, data_keys, last_info, nonfinite) for stacked seeds.

    With `num_seeds=1` the seed axis is dropped inside the jitted call instead of vmapped:
    XLA on CPU runs the plain matrix products of one seed faster than size-1 batched ones.

    `nonfinite` maps each metric to whether it was NaN or inf at any of the fused steps,
    and 'params' to whether any parameter is; the caller's divergence guard reads it.
    """

    def train_chunk(agent, key, data):
        def body(carry, _):
            agent, key = carry
            key, batch_key = jax.random.split(key)
            agent, info = agent.update_step(sample_batch(data, batch_key, batch_size))
            return (agent, key), info

        (agent, key), infos = jax.lax.scan(body, (agent, key), length=num_updates)
        nonfinite = {name: ~jnp.all(jnp.isfinite(value)) for name, value in infos.items()}
        leaves = jax.tree_util.tree_leaves(agent.network.params)
        nonfinite['params'] = ~jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))
        last_info = jax.tree_util.tree_map(lambda x: x[-1], infos)
        return agent, key, last_info, nonfinite

    if num_seeds == 1:

        def train_seeds(agents, keys, data):
            squeeze = functools.partial(jax.tree_util.tree_map, lambda x: x[0])
            expand = functools.partial(jax.tree_util.tree_map, lambda x: x[None])
            return expand(train_chunk(squeeze(agents), squeeze(keys), data))
    else:
        train_seeds = jax.vmap(train_chunk, in_axes=(0, 0, None))
    # Donating the old agent lets accelerators update it in place; CPU cannot use donations.
    donate = (0, 1) if jax.default_backend() != 'cpu' else ()
    return jax.jit(train_seeds, donate_argnums=donate)


def stack_seeds(trees):
    """Stacks per-seed pytrees along a new leading axis."""
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def unstack_seed(tree, index):
    """The pytree of one seed from a stacked tree."""
    return jax.tree_util.tree_map(lambda x: x[index], tree)


def shard_seeds(tree, num_seeds):
    """Places the seed axis across all devices when they divide it; else leaves `tree` as is."""
    devices = jax.devices()
    if len(devices) < 2 or num_seeds % len(devices):
        return tree
    mesh = Mesh(np.array(devices), ('seeds',))
    sharding = NamedSharding(mesh, PartitionSpec('seeds'))
    return jax.device_put(tree, sharding)


def diverged_seeds(nonfinite):
    """{seed index: sorted names of the non-finite metrics (or 'params')} from a train call's flags."""
    flags = {name: np.asarray(flag).reshape(-1) for name, flag in jax.device_get(nonfinite).items()}
    num_seeds = len(next(iter(flags.values())))
    bad = {i: sorted(name for name, flag in flags.items() if bool(flag[i])) for i in range(num_seeds)}
    return {i: names for i, names in bad.items() if names}


def make_validation_fn(batch_size):
    """(stacked agents, validation data, data keys) -> per-seed losses on a validation batch, no update."""

    def validation_info(agent, data, key):
        batch = sample_batch(data, jax.random.fold_in(key, 1), batch_size)
        _, info = agent.total_loss(batch, agent.network.params, rng=jax.random.fold_in(key, 2))
        return info

    return jax.jit(jax.vmap(validation_info, in_axes=(0, None, 0)))
