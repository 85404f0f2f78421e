"""utils.precision: a bad name is one line, `highest` sets jax's matmul precision, `bf16` casts the
networks' products (and only them) to bfloat16, `default` changes nothing, and spawned children
inherit the choice."""

import multiprocessing
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from utils.errors import UserError
from utils.networks import MLP, Actor
from utils.precision import MATMUL_VARIABLE, PRECISION_VARIABLE, PRECISIONS, compute_dtype, use_precision


@pytest.fixture(autouse=True)
def restore_precision():
    """Each test starts unset and leaves the process as it found it (variables and jax config). Restored by
    hand: monkeypatch.delenv records nothing for a variable that is not set, so a DROL_PRECISION=bf16 that
    `use_precision` set stayed behind, and every network this worker traced afterwards multiplied in bfloat16
    (the golden tests then failed whenever they ran after this file on the same worker)."""
    saved = {name: os.environ.pop(name, None) for name in (PRECISION_VARIABLE, MATMUL_VARIABLE)}
    before = jax.config.jax_default_matmul_precision
    yield
    for name, value in saved.items():
        os.environ.pop(name, None)
        if value is not None:
            os.environ[name] = value
    jax.config.update('jax_default_matmul_precision', before)


def precision_seen_by_child():
    """Run in a spawned process: what it inherited."""
    return jax.config.jax_default_matmul_precision, str(compute_dtype())


def mlp_output_and_params():
    """A 2-hidden-layer MLP's output on fixed inputs, traced under the precision now in force."""
    mlp = MLP((64, 64, 3), layer_norm=True)
    x = jax.random.normal(jax.random.PRNGKey(1), (8, 17))
    params = mlp.init(jax.random.PRNGKey(0), x)
    return jax.jit(mlp.apply)(params, x), params


def test_a_bad_name_is_one_line_naming_the_values():
    with pytest.raises(UserError) as error:
        use_precision('fp16')
    message = str(error.value)
    assert '\n' not in message and 'fp16' in message
    assert all(name in message for name in PRECISIONS)


def test_each_precision_says_what_it_means_on_this_device():
    for name in PRECISIONS:
        line = use_precision(name)
        assert '\n' not in line and name in line and jax.default_backend() in line


def test_highest_sets_the_matmul_precision_and_default_leaves_the_device_its_own():
    use_precision('highest')
    assert jax.config.jax_default_matmul_precision == 'highest'
    use_precision('bf16')
    assert jax.config.jax_default_matmul_precision is None


def test_default_keeps_a_matmul_precision_the_user_exported(monkeypatch):
    monkeypatch.setenv(MATMUL_VARIABLE, 'highest')
    assert 'highest' in use_precision('default')
    assert jax.config.jax_default_matmul_precision == 'highest'


def test_default_traces_the_networks_as_if_nothing_were_set():
    jax.config.update('jax_default_matmul_precision', None)  # What `default` sets, on any device.
    unset, _ = mlp_output_and_params()
    use_precision('default')
    default, _ = mlp_output_and_params()
    np.testing.assert_array_equal(default, unset)


def test_bf16_rounds_the_products_and_keeps_float32_params_and_outputs():
    use_precision('highest')
    float32, _ = mlp_output_and_params()
    use_precision('bf16')
    bf16, params = mlp_output_and_params()
    assert bf16.dtype == jnp.float32
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(params))
    difference = float(jnp.max(jnp.abs(bf16 - float32)))
    assert 1e-4 < difference < 0.1 * float(jnp.max(jnp.abs(float32)))


def test_bf16_reaches_the_actor_heads():
    actor = Actor((32, 32), action_dim=4, state_dependent_std=True, final_fc_init_scale=1.0)
    x = jax.random.normal(jax.random.PRNGKey(1), (8, 17))
    params = actor.init(jax.random.PRNGKey(0), x)
    means = actor.apply(params, x).mode()
    use_precision('bf16')
    rounded = actor.apply(params, x).mode()
    assert rounded.dtype == jnp.float32 and not np.array_equal(rounded, means)


@pytest.mark.parametrize('name', PRECISIONS)
def test_a_spawned_child_process_inherits_the_precision(name):
    use_precision(name)
    with multiprocessing.get_context('spawn').Pool(1) as pool:
        matmul, dtype = pool.apply(precision_seen_by_child)
    assert matmul == ('highest' if name == 'highest' else None)
    assert dtype == str(jnp.bfloat16 if name == 'bf16' else None)
