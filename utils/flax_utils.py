"""Train-state helpers: one parameter tree holding every module of an agent.

An agent's networks (actor, critic, target critic, flow field...) live in a single
`ModuleDict`, so one optimiser and one `apply_gradients` call update all of them, and
`TrainState.select(name)` calls a single module with the current or given parameters.
"""

from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax


def nonpytree_field():
    """A dataclass field that is static (hashed into jit's cache), not traced."""
    return flax.struct.field(pytree_node=False)


class ModuleDict(nn.Module):
    """Holds named sub-modules; `name=` selects which one to call."""

    modules: dict

    def __hash__(self):
        # Equal-by-value and hashable, so the definitions of different seeds' agents compare
        # equal (they can be stacked for vmap) and the jit cache keys on their content.
        return hash(tuple(sorted(self.modules.items())))

    @nn.compact
    def __call__(self, *args, name=None, **kwargs):
        if name is None:
            # Initialisation: touch every module once so that all parameters are created.
            if set(kwargs) != set(self.modules):
                raise ValueError(f'Initialise with inputs for every module: {sorted(self.modules)}.')
            return {key: self.modules[key](*value) for key, value in kwargs.items()}
        return self.modules[name](*args, **kwargs)


class TrainState(flax.struct.PyTreeNode):
    """Parameters, optimiser state and step count of a `ModuleDict`."""

    step: int
    model_def: Any = nonpytree_field()
    tx: Any = nonpytree_field()
    params: Any
    opt_state: Any

    @classmethod
    def create(cls, model_def, params, tx):
        # An int32 array from the start, so the first update traces the same types as later ones.
        return cls(step=jnp.asarray(1, jnp.int32), model_def=model_def, tx=tx, params=params, opt_state=tx.init(params))

    def __call__(self, *args, params=None, name=None, **kwargs):
        params = self.params if params is None else params
        return self.model_def.apply({'params': params}, *args, name=name, **kwargs)

    def select(self, name):
        """Returns a function calling module `name`, with `params=` to override the parameters."""
        return lambda *args, params=None, **kwargs: self(*args, params=params, name=name, **kwargs)

    def apply_loss_fn(self, loss_fn):
        """One optimiser step on `loss_fn(params) -> (loss, info)`; returns the new state and info.

        Gradient statistics as the references log them: `grad/max` and `grad/min` over all
        entries, `grad/norm` the sum of the per-array L2 norms (not the global norm, which is
        `grad/global_norm`).
        """
        grads, info = jax.grad(loss_fn, has_aux=True)(self.params)
        updates, new_opt_state = self.tx.update(grads, self.opt_state, self.params)
        new_params = optax.apply_updates(self.params, updates)
        leaves = jax.tree_util.tree_leaves(grads)
        info['grad/max'] = jnp.max(jnp.stack([leaf.max() for leaf in leaves]))
        info['grad/min'] = jnp.min(jnp.stack([leaf.min() for leaf in leaves]))
        info['grad/norm'] = jnp.sum(jnp.stack([jnp.linalg.norm(leaf) for leaf in leaves]))
        info['grad/global_norm'] = optax.tree.norm(grads)
        return self.replace(step=self.step + 1, params=new_params, opt_state=new_opt_state), info
