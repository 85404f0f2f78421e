"""The fused multi-seed update step, its divergence check, and validation losses.

`make_train_fn` builds one jitted call that runs `num_updates` updates in a `lax.scan`
(sampling each batch on the device) for every seed at once (`vmap` over a leading seed
axis of the agent). With several devices, `shard_seeds` spreads the seed axis over them
and the same jitted call then runs data-parallel across seeds.
"""

import operator

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


def make_train_fn(batch_size, num_updates, num_seeds, tasks=False, frame_stack=None, p_aug=None):
    """(agents, data_keys, data) -> (agents, data_keys, last_info, nonfinite) for stacked seeds.

    `nonfinite` maps each metric to whether it was NaN or inf at any of the fused steps,
    and 'params' to whether any parameter is; the caller's divergence guard reads it.

    With `tasks`, the data holds several tasks' rewards and masks (`utils.dataset_keys.TASK_KEYS`)
    and the call takes a fourth argument, each agent's task index: (agents, data_keys, data, task_ids).
    On images, each batch stacks `frame_stack` frames and is cropped with probability `p_aug`
    (`utils.datasets.sample_batch`), on the device inside the fused call.
    """

    def train_chunk(agent, key, data, task=None):
        def body(carry, _):
            agent, key = carry
            key, batch_key = jax.random.split(key)
            agent, info = agent.update_step(sample_batch(data, batch_key, batch_size, task, frame_stack, p_aug))
            return (agent, key), info

        (agent, key), infos = jax.lax.scan(body, (agent, key), length=num_updates)
        last_info = jax.tree_util.tree_map(lambda x: x[-1], infos)
        return agent, key, last_info, nonfinite_flags(infos, agent)

    in_axes = (0, 0, None, 0) if tasks else (0, 0, None)
    return over_seeds(train_chunk, num_seeds, in_axes=in_axes, donate=(0, 1))


def nonfinite_flags(infos, agent):
    """{metric: whether any of its values is NaN or inf, 'params': whether any parameter is}."""
    nonfinite = {name: ~jnp.all(jnp.isfinite(value)) for name, value in infos.items()}
    leaves = jax.tree_util.tree_leaves(agent.network.params)
    nonfinite['params'] = ~jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))
    return nonfinite


def over_seeds(fn, num_seeds, in_axes, donate=()):
    """`fn` jitted over the leading seed axis of the arguments whose `in_axes` entry is 0 (None: shared
    by all seeds); every output gets the seed axis. Arguments at the `donate` positions (old state
    the call replaces) are donated: accelerators update them in place; CPU cannot use donations.

    With `num_seeds=1` the seed axis is dropped inside the jitted call instead of vmapped:
    XLA on CPU runs the plain matrix products of one seed faster than size-1 batched ones.
    """
    if num_seeds == 1:

        def seeds_fn(*args):
            squeezed = [
                jax.tree_util.tree_map(lambda x: x[0], arg) if axis == 0 else arg
                for arg, axis in zip(args, in_axes, strict=True)
            ]
            return jax.tree_util.tree_map(lambda x: x[None], fn(*squeezed))
    else:
        seeds_fn = jax.vmap(fn, in_axes=in_axes)
    return jax.jit(seeds_fn, donate_argnums=donate if jax.default_backend() != 'cpu' else ())


def stack_seeds(trees):
    """Stacks per-seed pytrees along a new leading axis (one compiled program for the whole tree,
    not one per array shape as eager stacking compiles)."""
    return _stack(*trees)


@jax.jit
def _stack(*trees):
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def unstack_seed(tree, index):
    """The pytree of one seed from a stacked tree (one compiled program, whatever the index)."""
    return _unstack(tree, index)


@jax.jit
def _unstack(tree, index):
    return jax.tree_util.tree_map(lambda x: x[index], tree)


def host_seeds(tree):
    """The per-seed pytrees of a stacked tree, as numpy arrays on the host: one transfer and no compiled
    program (tracing and lowering `unstack_seed` for a whole agent costs a new process about 0.3 s), for
    what is written to disk. `x[i, ...]` keeps a seed's scalars 0-d arrays, as the device slice gives them."""
    host = jax.device_get(tree)
    count = len(jax.tree_util.tree_leaves(host)[0])
    return [jax.tree_util.tree_map(operator.itemgetter((i, ...)), host) for i in range(count)]


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


def make_validation_fn(batch_size, tasks=False, frame_stack=None, p_aug=None):
    """(stacked agents, validation data, data keys[, task ids]) -> per-seed losses on a validation batch, no update.
    Validation batches are stacked and augmented as training batches, as in the FQL codebase."""

    def validation_info(agent, data, key, task=None):
        batch = sample_batch(data, jax.random.fold_in(key, 1), batch_size, task, frame_stack, p_aug)
        _, info = agent.total_loss(batch, agent.network.params, rng=jax.random.fold_in(key, 2))
        return info

    return jax.jit(jax.vmap(validation_info, in_axes=(0, None, 0, 0) if tasks else (0, None, 0)))
