"""Every agent through main.py, offline then online: its logs, records and a checkpoint that main.py restores
into an agent acting identically; and a SIGKILL mid-online that resumes exactly.

One run per agent makes all of these checks (they were two runs per agent, one offline-only): a main.py
process costs seconds of start-up however short the run.
"""

import json

import jax
import numpy as np
import pytest

from agents import AGENTS
from tests.helpers import TINY, kill_main_when, read_csv, run_main, tiny_config
from utils.checkpoints import load_checkpoint
from utils.fused_updates import data_key

pytestmark = pytest.mark.slow

# Each agent also exercises one variant: several seeds, RLPD-style (online only, balanced
# sampling), balanced sampling, and a buffer small enough that the offline rows are overwritten.
VARIANTS = {
    'drol': ('--num_seeds=2',),
    'fql': (),
    'ifql': (),
    'iql': ('--balanced_sampling',),
    'rebrac': ('--buffer_size=50',),
    'sac': ('--offline_steps=0', '--balanced_sampling'),
}


def command(dataset, save_dir, agent, *extra):
    return (
        f'--agent={agent}',
        '--env_name=cube-single-play',
        f'--dataset_path={dataset}',
        f'--save_dir={save_dir}',
        *TINY,
        *extra,
    )


def run_dir_of(save_dir, agent='drol', seed=0):
    return save_dir / 'Debug' / f'{agent}_cube-single-play_sd{seed}'


def steps(path):
    return [int(float(row['step'])) for row in read_csv(path)]


@pytest.mark.parametrize('agent', sorted(AGENTS))
def test_every_agent_trains_offline_then_online_and_restores(agent, cube_single_dataset, tmp_path):
    assert set(VARIANTS) == set(AGENTS)
    args = ('--offline_steps=10', '--online_steps=210', '--log_interval=10', '--eval_interval=110', '--eval_episodes=1')
    run_main(*command(cube_single_dataset, tmp_path, agent, *args, *VARIANTS[agent]))
    offline = 0 if '--offline_steps=0' in VARIANTS[agent] else 10
    seeds = 2 if '--num_seeds=2' in VARIANTS[agent] else 1
    for seed in range(seeds):
        run_dir = run_dir_of(tmp_path, agent, seed)
        rows = read_csv(run_dir / 'train.csv')
        # Step 1 logged and evaluated early (as in both references), so a new run shows a row at once.
        assert steps(run_dir / 'train.csv') == sorted({1, *range(10, offline + 211, 10)})
        online = [row for row in rows if int(float(row['step'])) > offline]
        assert all(row['online/episodes'] != '' for row in online)
        assert all(row.get('online/episodes', '') == '' for row in rows if int(float(row['step'])) <= offline)
        # The environment's time limit (200 steps) ends the first online episode; its stats are logged once.
        finished = [row for row in online if row['online/episode_length'] != '']
        assert [float(row['online/episode_length']) for row in finished] == [200.0]
        assert float(finished[0]['online/episode_success']) in (0.0, 1.0)
        assert float(online[-1]['online/episodes']) == 1
        assert steps(run_dir / 'eval.csv') == sorted({1, offline, 110, offline + 210} - {0})
    run_dir = run_dir_of(tmp_path, agent)
    assert_records_and_metrics(agent, run_dir)
    assert_main_restores_the_agent(agent, cube_single_dataset, tmp_path, run_dir, offline + 210)


def assert_records_and_metrics(agent, run_dir):
    train_rows, eval_rows = read_csv(run_dir / 'train.csv'), read_csv(run_dir / 'eval.csv')
    for key in ('training/critic/critic_loss', 'training/actor/actor_loss'):
        assert np.isfinite(float(train_rows[-1][key])), key
    assert 'validation/critic/critic_loss' in train_rows[0] and 'evaluation/success' in eval_rows[-1]
    flags = json.loads((run_dir / 'flags.json').read_text())
    assert flags['agent']['agent_name'] == agent and flags['env_name'] == 'cube-single-play'
    assert flags['precision'] == 'default'
    preset = AGENTS[agent].preset_overrides('paper', 'cube-single-play')
    assert flags['preset_applied'] == {key: value for key, value in preset.items() if not key.endswith('_hidden_dims')}
    assert json.loads((run_dir / 'dataset.json').read_text())['source'] == 'given path'


def assert_main_restores_the_agent(agent, dataset, save_dir, run_dir, step):
    """The final checkpoint holds the trained agent, and main.py restores it (no training) into an agent that
    acts identically."""
    data = np.load(dataset)
    observations = data['observations'][:5]
    template = AGENTS[agent].create(123, observations[:1], data['actions'][:1], tiny_config(agent, batch_size=32))
    restored, _, saved_step, _ = load_checkpoint(str(run_dir / f'checkpoint_{step}.msgpack'), template, data_key(0))
    assert saved_step == step and int(restored.network.step) == step + 1
    key = jax.random.PRNGKey(7)
    first = np.asarray(restored.sample_actions(observations, seed=key))
    assert np.all(first >= -1) and np.all(first <= 1)
    assert not np.allclose(first, np.asarray(template.sample_actions(observations, seed=key)))
    run_main(*command(dataset, save_dir, agent, '--run_group=restored', '--offline_steps=0',
                      f'--restore_path={run_dir}', f'--restore_epoch={step}', '--eval_interval=0'))  # fmt: skip
    restored_run = save_dir / 'restored' / f'{agent}_cube-single-play_sd0'
    again = load_checkpoint(str(restored_run / 'checkpoint_0.msgpack'), template, data_key(0))[0]
    np.testing.assert_array_equal(first, np.asarray(again.sample_actions(observations, seed=key)))


def final_state(run_dir, step):
    """(agent, data key, online state) of checkpoint_<step> of a tiny DROL run."""
    from utils.checkpoints import load_checkpoint, load_online_state
    from utils.fused_updates import data_key
    from utils.online import acting_key
    from utils.replay_buffer import ReplayBuffer

    observations, actions = np.zeros((1, 28), np.float32), np.zeros((1, 5), np.float32)
    template = AGENTS['drol'].create(0, observations, actions, tiny_config('drol', batch_size=32, bc_coef=10.0))
    path = str(run_dir / f'checkpoint_{step}.msgpack')
    agent, key, _, _ = load_checkpoint(path, template, data_key(0))
    device = {'buffer': ReplayBuffer.create(28, 5, capacity=600), 'key': acting_key(0)}  # Sized to the online steps.
    return agent, key, load_online_state(path, device)


def metrics(run_dir):
    return [{k: v for k, v in row.items() if not k.startswith('time/')} for row in read_csv(run_dir / 'train.csv')]


def leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def test_killed_online_run_resumes_to_the_same_result(cube_single_dataset, tmp_path):
    args = ('--offline_steps=20', '--online_steps=600', '--log_interval=50', '--save_interval=100')
    args = (*args, '--eval_interval=0')
    run_main(*command(cube_single_dataset, tmp_path / 'straight', 'drol', *args))

    killed_dir = run_dir_of(tmp_path / 'killed')
    killed_command = command(cube_single_dataset, tmp_path / 'killed', 'drol', *args)
    kill_main_when((killed_dir / 'checkpoint_300.msgpack').exists, *killed_command)
    assert not (killed_dir / 'checkpoint_620.msgpack').exists(), 'the run ended before it was killed'
    result = run_main(*command(cube_single_dataset, tmp_path / 'killed', 'drol', *args))
    resumed_at = int(result.stdout.split('Resuming from step ')[1].split()[0])
    assert resumed_at >= 300 and (resumed_at - 20) % 200, 'not resumed in the middle of an online episode'

    straight_dir = run_dir_of(tmp_path / 'straight')
    # Same rows (none duplicated or missing), same training metrics and online episode statistics.
    assert steps(killed_dir / 'train.csv') == [1, 20, *range(50, 601, 50), 620]
    assert metrics(killed_dir) == metrics(straight_dir)
    assert float(metrics(straight_dir)[-1]['online/episodes']) == 3
    # Same parameters, keys, replay buffer and episode.
    straight, killed = final_state(straight_dir, 620), final_state(killed_dir, 620)
    for a, b in zip(leaves(straight), leaves(killed), strict=True):
        np.testing.assert_array_equal(a, b)
    assert straight[2]['host']['finished'] == killed[2]['host']['finished']

    # The step where the online phase began cannot change under a resumed run.
    moved = command(cube_single_dataset, tmp_path / 'killed', 'drol', *args[1:], '--offline_steps=10')
    moved = run_main(*moved, check=False)
    assert moved.returncode == 2 and 'began its online phase at step 20' in moved.stderr, moved.stderr
