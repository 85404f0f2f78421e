"""The FQL codebase's baselines beyond the golden numbers: acting, the parameters acting needs, their own
checks, and their presets (tests/test_online_runs.py trains and restores every agent through main.py).

`NEW_AGENTS` lists the agents the acting tests run for.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents import AGENTS
from agents.iql import expectile_loss
from tests.helpers import TINY, random_batch, run_main, tiny_agent, tiny_config
from utils.datasets import sample_batch, to_device
from utils.fused_updates import data_key, make_train_fn, stack_seeds, unstack_seed

NEW_AGENTS = ['iql', 'ifql', 'rebrac', 'sac']


def test_expectile_loss_fits_the_upper_expectile():
    """Minimising the expectile loss over a constant gives the expectile: above the mean for 0.9,
    the mean for 0.5, below it for 0.1 (a flipped weight would swap the first and last)."""
    samples = jnp.asarray(np.random.default_rng(0).normal(size=2000), jnp.float32)
    grid = jnp.linspace(-2, 2, 4001)

    def fitted(expectile):
        losses = jax.vmap(lambda v: expectile_loss(samples - v, expectile).mean())(grid)
        return float(grid[jnp.argmin(losses)])

    mean = float(samples.mean())
    assert fitted(0.9) > mean + 0.5 and fitted(0.1) < mean - 0.5
    assert abs(fitted(0.5) - mean) < 2e-3
    np.testing.assert_allclose(expectile_loss(jnp.array([2.0, -2.0]), 0.9), [0.9 * 4, 0.1 * 4], rtol=1e-6)


@pytest.mark.parametrize('agent_name', NEW_AGENTS)
def test_updates_are_finite_and_actions_in_bounds(agent_name):
    batch = random_batch()
    agent = tiny_agent(agent_name, batch)
    for _ in range(3):
        agent, info = agent.update(batch)
    assert all(np.isfinite(float(value)) for value in info.values()), info
    far = 50.0 * np.asarray(batch['observations'])  # Far outside the data.
    for observations in (batch['observations'], far, batch['observations'][0]):
        actions = np.asarray(agent.sample_actions(observations, seed=jax.random.PRNGKey(3)))
        assert actions.shape == (*observations.shape[:-1], batch['actions'].shape[-1])
        assert np.all(actions >= -1) and np.all(actions <= 1)


@pytest.mark.parametrize('agent_name', NEW_AGENTS)
def test_inference_modules_are_enough_to_act(agent_name):
    """Evaluation workers get only `inference_module_names`; acting must not read anything else."""
    batch = random_batch()
    trained = tiny_agent(agent_name, batch, seed=0)
    for _ in range(2):
        trained, _ = trained.update(batch)
    template = tiny_agent(agent_name, batch, seed=1)
    names = AGENTS[agent_name].inference_module_names(trained.config)
    params = {**template.network.params, **{name: trained.network.params[name] for name in names}}
    worker = template.replace(network=template.network.replace(params=params))
    key = jax.random.PRNGKey(5)
    np.testing.assert_array_equal(
        np.asarray(worker.sample_actions(batch['observations'], seed=key)),
        np.asarray(trained.sample_actions(batch['observations'], seed=key)),
    )


@pytest.mark.parametrize('agent_name', NEW_AGENTS)
def test_fused_and_multi_seed_training_match_the_plain_loop(agent_name):
    """main.py trains through `update_step` under `lax.scan` (fused) and `vmap` (seeds)."""
    data = to_device(random_batch(batch_size=200, seed=9))
    agents = [tiny_agent(agent_name, random_batch(), seed=s) for s in (3, 4)]
    plain, plain_key = jax.tree_util.tree_map(jnp.copy, agents[1]), data_key(4)  # update() donates its agent.
    for _ in range(3):
        plain_key, batch_key = jax.random.split(plain_key)
        plain, _ = plain.update(sample_batch(data, batch_key, 16))
    stacked, keys, _, _ = make_train_fn(16, 3, num_seeds=2)(
        stack_seeds(agents), stack_seeds([data_key(3), data_key(4)]), data
    )
    for fused, expected in zip(
        jax.tree_util.tree_leaves(unstack_seed(stacked, 1).network.params),
        jax.tree_util.tree_leaves(plain.network.params),
        strict=True,
    ):
        np.testing.assert_allclose(fused, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(unstack_seed(keys, 1), plain_key)


# Settings no other test compiles: one-layer networks make their programs quicker to compile.
SMALL = dict(actor_hidden_dims=(8,), value_hidden_dims=(8,))


def test_iql_ddpgbc_and_learned_std():
    """The DDPG+BC actor loss (not in the golden cases) and the learned-std actor train and log."""
    batch = random_batch()
    for const_std in (True, False):
        agent = tiny_agent('iql', batch, actor_loss='ddpgbc', const_std=const_std, alpha=2.5, **SMALL)
        assert ('log_stds' in agent.network.params['modules_actor']) is (not const_std)
        before = np.array(agent.network.params['modules_actor']['mean_net']['kernel'])  # update() donates agent.
        new_agent, info = agent.update(batch)
        for key in ('q_loss', 'bc_loss', 'q_mean', 'q_abs_mean', 'bc_log_prob', 'mse', 'std'):
            assert np.isfinite(float(info[f'actor/{key}'])), key
        np.testing.assert_allclose(
            info['actor/actor_loss'], info['actor/q_loss'] + info['actor/bc_loss'], rtol=1e-5, atol=1e-6
        )
        assert not np.allclose(before, new_agent.network.params['modules_actor']['mean_net']['kernel'])


def test_ifql_picks_each_states_best_flow_sample():
    """Batched best-of-N: per state, the flow sample with the highest min-head Q among its own N."""
    batch = random_batch()
    agent = tiny_agent('ifql', batch, num_samples=6, **SMALL)
    agent, _ = agent.update(batch)
    observations = batch['observations'][:4]
    seed = jax.random.PRNGKey(11)
    noises = jax.random.normal(jax.random.split(seed)[0], (4, 6, batch['actions'].shape[-1]))
    repeated = jnp.broadcast_to(observations[:, None], (4, 6, observations.shape[-1]))
    candidates = np.asarray(agent.flow_actions(repeated, noises))
    scores = np.asarray(agent.network.select('critic')(repeated, candidates).min(axis=0))
    expected = candidates[np.arange(4), scores.argmax(axis=-1)]
    np.testing.assert_allclose(agent.sample_actions(observations, seed=seed), expected, atol=1e-6)
    assert len({tuple(np.round(row, 5)) for row in candidates[0]}) == 6  # The N samples differ.


@pytest.mark.parametrize(
    ('agent_name', 'overrides', 'message'),
    [
        ('iql', dict(expectile=1.0), 'expectile must lie in (0, 1)'),
        ('iql', dict(actor_loss='awrr'), 'Did you mean awr'),
        ('iql', dict(alpha=-1.0), 'alpha must not be negative'),
        ('ifql', dict(expectile=0.0), 'expectile must lie in (0, 1)'),
        ('ifql', dict(num_samples=0), 'num_samples must be at least 1'),
        ('ifql', dict(flow_steps=0), 'flow_steps must be at least 1'),
    ],
)
def test_config_problems(agent_name, overrides, message):
    assert AGENTS[agent_name].config_problems(tiny_config(agent_name)) == []
    problems = AGENTS[agent_name].config_problems(tiny_config(agent_name, **overrides))
    assert any(message in problem for problem in problems), problems


@pytest.mark.slow
@pytest.mark.parametrize('agent_name', NEW_AGENTS)
def test_main_help_and_preset_message(agent_name, cube_single_dataset, tmp_path):
    """`--help` works with the agent chosen, and a run prints the preset it applies (before loading
    data: here the cube dataset does not fit humanoidmaze, so the run then stops with a clear error)."""
    help_text = run_main(f'--agent={agent_name}', '--env_name=cube-single-play', '--help').stdout
    assert f' {agent_name},' in help_text and '--preset' in help_text  # The --agent flag lists it.
    result = run_main(
        f'--agent={agent_name}',
        '--env_name=humanoidmaze-medium-navigate',
        f'--dataset_path={cube_single_dataset}',
        f'--save_dir={tmp_path}',
        '--offline_steps=1',
        *TINY,
        check=False,
    )
    preset = AGENTS[agent_name].preset_overrides('paper', 'humanoidmaze-medium-navigate')
    assert preset['discount'] == 0.995
    assert f"Preset 'paper' for humanoidmaze-medium-navigate: {preset}" in result.stdout, result.stdout
    assert result.returncode == 2 and 'belongs to another environment' in result.stderr, result.stderr


def test_a_run_says_where_the_paper_gives_no_value(cube_single_dataset, tmp_path):
    """ReBRAC on antsoccer has no row in the FQL paper's Table 6: the run says it keeps the defaults
    (printed before the data is loaded; the cube dataset then stops the run with a clear error)."""
    result = run_main(
        '--agent=rebrac',
        '--env_name=antsoccer-arena-navigate',
        f'--dataset_path={cube_single_dataset}',
        f'--save_dir={tmp_path}',
        '--offline_steps=1',
        *TINY,
        check=False,
    )
    assert 'give rebrac no alpha_actor, alpha_critic for antsoccer-arena-navigate (offline)' in result.stdout, (
        result.stdout
    )
