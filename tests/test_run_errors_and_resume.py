"""Reliability: clear errors for bad input, kill-and-resume, determinism, divergence guard."""

import numpy as np
import pytest

from tests.helpers import TINY, kill_main_when, read_csv, run_main, tiny_config, write_ogbench_dataset

pytestmark = pytest.mark.slow


def common(dataset, save_dir, *extra, tiny=TINY):
    return (
        '--agent=drol',
        '--env_name=cube-single-play',
        f'--dataset_path={dataset}',
        f'--save_dir={save_dir}',
        '--eval_interval=0',
        *tiny,
        *extra,
    )


@pytest.mark.parametrize(
    'args, message',
    [
        (('--env_name=cube-dubble-play',), 'Did you mean cube-double-play'),
        (('--agent=drool',), "Unknown agent 'drool'. Did you mean drol?"),
        (('--agent.num_candidatez=4',), 'Did you mean num_candidates'),
        (('--offline_steps=-5',), '--offline_steps must not be negative'),
        (('--agent.batch_size=0',), 'batch_size must be at least 1'),
        (('--agent.num_candidates=0',), 'num_candidates (K) must be at least 1'),
        (('--agent.discount=1.5',), 'discount must lie in (0, 1]'),
        (('--agent.q_agg=median',), "q_agg must be one of ('mean', 'min')"),
        (('--log_interval=10', '--updates_per_call=3'), 'is not a multiple of --updates_per_call=3'),
    ],
)
def test_bad_flags_give_one_clear_message(args, message, cube_single_dataset, tmp_path):
    given = {arg.split('=', 1)[0] for arg in args}
    tiny = [arg for arg in TINY if arg.split('=', 1)[0] not in given]  # Each setting given once.
    result = run_main(*common(cube_single_dataset, tmp_path, tiny=tiny), *args, check=False)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert 'Traceback' not in result.stderr


def test_unwritable_save_dir_is_reported(cube_single_dataset, tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('not a folder')
    result = run_main(*common(cube_single_dataset, blocker / 'runs'), check=False)
    assert result.returncode == 2 and 'Cannot write to the run directory' in result.stderr
    assert 'Traceback' not in result.stderr


def test_dataset_of_another_environment_is_reported(cube_single_dataset, tmp_path):
    result = run_main(*common(cube_single_dataset, tmp_path), '--env_name=cube-double-play', check=False)
    assert result.returncode == 2, result.stderr
    assert cube_single_dataset in result.stderr and 'Traceback' not in result.stderr
    assert not (tmp_path / 'Debug').exists()  # Refused before training: no run directory is left behind.


def test_actions_outside_bounds_are_clipped_with_a_count(tmp_path):

    path = write_ogbench_dataset(str(tmp_path / 'cube-single-play-v0.npz'), episodes=1, steps=30)
    data = dict(np.load(path))
    data['actions'][:7, 0] = 1.5
    np.savez(path, **data)
    result = run_main(*common(path, tmp_path / 'runs'), '--offline_steps=2', '--log_interval=1')
    assert 'WARNING: 7 of' in result.stderr and 'outside [-1, 1]; clipping them' in result.stderr


def training_metrics(run_dir):
    return [{k: v for k, v in row.items() if not k.startswith('time/')} for row in read_csv(run_dir / 'train.csv')]


def final_params(run_dir, step):
    from agents import AGENTS
    from utils.checkpoints import load_checkpoint
    from utils.fused_updates import data_key

    observations, actions = np.zeros((1, 28), np.float32), np.zeros((1, 5), np.float32)
    config = tiny_config('drol', batch_size=32, bc_coef=10.0)
    template = AGENTS['drol'].create(0, observations, actions, config)
    agent, key, _, _ = load_checkpoint(str(run_dir / f'checkpoint_{step}.msgpack'), template, data_key(0))
    return agent, key


def test_killed_run_resumes_to_the_same_result(cube_single_dataset, tmp_path):
    steps = ('--offline_steps=1500', '--log_interval=100', '--save_interval=250')
    run_main(*common(cube_single_dataset, tmp_path / 'straight'), *steps)
    run_main(*common(cube_single_dataset, tmp_path / 'again'), *steps)

    killed_dir = tmp_path / 'killed' / 'Debug' / 'drol_cube-single-play_sd0'
    kill_main_when(
        (killed_dir / 'checkpoint_500.msgpack').exists, *common(cube_single_dataset, tmp_path / 'killed'), *steps
    )
    assert not (killed_dir / 'checkpoint_1500.msgpack').exists(), 'the run ended before it was killed'
    run_main(*common(cube_single_dataset, tmp_path / 'killed'), *steps)

    straight_dir = tmp_path / 'straight' / 'Debug' / 'drol_cube-single-play_sd0'
    again_dir = tmp_path / 'again' / 'Debug' / 'drol_cube-single-play_sd0'
    # Determinism: the same command twice gives identical training metrics.
    assert training_metrics(straight_dir) == training_metrics(again_dir)
    # Resume: same rows (none duplicated or missing), same metrics, same parameters.
    assert [int(float(r['step'])) for r in read_csv(killed_dir / 'train.csv')] == [1, *range(100, 1501, 100)]
    assert training_metrics(killed_dir) == training_metrics(straight_dir)
    straight_agent, straight_key = final_params(straight_dir, 1500)
    killed_agent, killed_key = final_params(killed_dir, 1500)
    np.testing.assert_array_equal(straight_key, killed_key)
    for a, b in zip(jax_leaves(straight_agent), jax_leaves(killed_agent), strict=True):
        np.testing.assert_array_equal(a, b)


def jax_leaves(agent):
    import jax

    return [np.asarray(x) for x in jax.tree_util.tree_leaves(agent)]


def test_divergence_stops_the_run_and_keeps_a_loadable_checkpoint(cube_single_dataset, tmp_path):
    result = run_main(
        *common(cube_single_dataset, tmp_path),
        '--offline_steps=50',
        '--log_interval=10',
        '--agent.lr=1e30',
        check=False,
    )
    assert result.returncode == 3, result.stderr
    assert 'Training diverged' in result.stderr and 'non-finite' in result.stderr
    run_dir = tmp_path / 'Debug' / 'drol_cube-single-play_sd0'
    agent, _ = final_params(run_dir, 0)
    assert all(np.isfinite(leaf).all() for leaf in jax_leaves(agent.network.params))
