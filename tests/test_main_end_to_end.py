"""main.py end to end on a tiny OGBench-format dataset, for both agents."""

import json

import jax
import numpy as np
import pytest

from tests.helpers import TINY, read_csv, run_main, tiny_config

pytestmark = pytest.mark.slow


@pytest.mark.parametrize('agent_name', ['drol', 'fql'])
def test_main_writes_logs_and_a_restorable_checkpoint(agent_name, cube_single_dataset, tmp_path):
    run_main(
        f'--agent={agent_name}',
        '--env_name=cube-single-play',
        f'--dataset_path={cube_single_dataset}',
        f'--save_dir={tmp_path}',
        '--run_group=test',
        '--offline_steps=40',
        '--log_interval=20',
        '--eval_interval=40',
        '--save_interval=20',
        '--eval_episodes=1',  # The test reads which steps were evaluated, not what they scored.
        *TINY,
    )
    run_dir = tmp_path / 'test' / f'{agent_name}_cube-single-play_sd0'
    train_rows = read_csv(run_dir / 'train.csv')
    eval_rows = read_csv(run_dir / 'eval.csv')
    assert [int(float(r['step'])) for r in train_rows] == [1, 20, 40]  # Step 1 early, so a new run shows a row at once.
    assert [int(float(r['step'])) for r in eval_rows] == [1, 40]  # Step 1 too, as in both references.
    assert 'evaluation/success' in eval_rows[0] and 'training/critic/critic_loss' in train_rows[0]
    assert 'validation/critic/critic_loss' in train_rows[0]
    flags = json.loads((run_dir / 'flags.json').read_text())
    assert flags['agent']['agent_name'] == agent_name and flags['env_name'] == 'cube-single-play'
    assert flags['precision'] == 'default'
    assert json.loads((run_dir / 'dataset.json').read_text())['source'] == 'given path'
    assert (run_dir / 'checkpoint_40.msgpack').exists()

    # Restoring the final checkpoint gives the same actions as the agent the run ended with.
    from agents import AGENTS
    from utils.checkpoints import load_checkpoint
    from utils.fused_updates import data_key

    data = np.load(cube_single_dataset)
    observations = data['observations'][:5]
    config = tiny_config(agent_name, batch_size=32)
    template = AGENTS[agent_name].create(123, observations[:1], data['actions'][:1], config)
    restored, _, step, _ = load_checkpoint(str(run_dir / 'checkpoint_40.msgpack'), template, data_key(0))
    assert step == 40 and int(restored.network.step) == 41
    key = jax.random.PRNGKey(7)
    first = np.asarray(restored.sample_actions(observations, seed=key))
    fresh_template = AGENTS[agent_name].create(0, observations[:1], data['actions'][:1], config)
    assert not np.allclose(first, np.asarray(fresh_template.sample_actions(observations, seed=key)))

    # Evaluating the restored checkpoint through main gives the same actions, hence the same returns.
    run_main(
        f'--agent={agent_name}',
        '--env_name=cube-single-play',
        f'--dataset_path={cube_single_dataset}',
        f'--save_dir={tmp_path}',
        '--run_group=restored',
        '--offline_steps=0',
        f'--restore_path={run_dir}',
        '--restore_epoch=40',
        '--eval_interval=0',
        *TINY,
    )
    restored_run = tmp_path / 'restored' / f'{agent_name}_cube-single-play_sd0'
    again, _, _, _ = load_checkpoint(str(restored_run / 'checkpoint_0.msgpack'), template, data_key(0))
    np.testing.assert_array_equal(first, np.asarray(again.sample_actions(observations, seed=key)))
