"""Every agent through main.py on a tiny generated visual-cube-single-play set, as the FQL paper runs
the pixel tasks (here with impala_debug): 3 stacked frames, random crops with probability 0.5. Each
agent trains with its command from README.md's "Pixel-based tasks" section, run as copied apart from
sizes, data and output folder (so these are also the README's checks of those commands). DROL also
evaluates one rendered episode with stacked frames; each agent's checkpoint, restored through
main.py, gives the actions of the agent the run ended with.

A rendered step costs about 0.15 s on a CPU core, so the set has one short episode and only DROL
evaluates (one 200-step episode, after its single update). A pixel flag that cannot work stops
main.py with one line before any data is loaded.
"""

import jax
import numpy as np
import pytest

from agents import AGENTS
from tests.helpers import ROOT, is_pixel_command, read_csv, readme_commands, run_main, run_python, with_flags
from utils.checkpoints import load_checkpoint
from utils.fused_updates import data_key

pytestmark = pytest.mark.slow

PIXELS = ['--agent.encoder=impala_debug', '--frame_stack=3', '--p_aug=0.5', '--preset=none']
TINY = ['--agent.actor_hidden_dims=(8,)', '--agent.value_hidden_dims=(8,)', '--agent.batch_size=8']
# What the README's commands change to run here: the sizes, and only the sizes, of TINY and PIXELS.
TINY_SIZES = {'agent.encoder': 'impala_debug', 'agent.actor_hidden_dims': '(8,)', 'agent.value_hidden_dims': '(8,)',
              'agent.batch_size': '8'}  # fmt: skip


def readme_command(agent_name):
    """The main.py arguments of README.md's pixel-based command for `agent_name` (exactly one)."""
    with open(f'{ROOT}/README.md') as file:
        commands = [words for words in readme_commands(file.read()) if is_pixel_command(words)]
    mine = [words for words in commands if f'--agent={agent_name}' in words]
    assert len(mine) == 1 and len(commands) == len(AGENTS), 'README.md: one pixel-based command per agent'
    assert mine[0][:2] == ['.venv/bin/python', 'main.py'] and '--env_name=visual-cube-single-play' in mine[0]
    return mine[0][2:]


@pytest.fixture(scope='module')
def visual_set(tmp_path_factory):
    folder = tmp_path_factory.mktemp('visual')
    command = [
        '-m',
        'envs.generate_dataset',
        '--env_name=visual-cube-single-play',
        '--num_episodes=1',
        '--num_val_episodes=1',
        '--max_episode_steps=8',
        f'--dataset_dir={folder}',
    ]
    result = run_python(*command)
    assert result.returncode == 0, result.stderr
    return str(folder / 'generated' / 'visual-cube-single-play-v0.npz')


def run(agent_name, visual_set, save_dir, *args):
    return run_main(
        f'--agent={agent_name}',
        '--env_name=visual-cube-single-play',
        f'--dataset_path={visual_set}',
        f'--save_dir={save_dir}',
        *PIXELS,
        *TINY,
        *args,
    )


@pytest.mark.parametrize('agent_name', list(AGENTS))
def test_agent_trains_on_stacked_augmented_frames_and_restores(agent_name, visual_set, tmp_path):
    evaluate = agent_name == 'drol'
    steps = 1 if evaluate else 2  # An evaluation at step 1 and at the end: one rendered episode in all.
    command = with_flags(readme_command(agent_name), {**TINY_SIZES, 'dataset_path': visual_set, 'save_dir': tmp_path})
    run_main(*command, f'--offline_steps={steps}', '--log_interval=1', f'--eval_interval={steps if evaluate else 0}',
             '--eval_episodes=1')  # fmt: skip
    run_dir = tmp_path / 'pixels' / f'{agent_name}_visual-cube-single-play_sd0'
    assert [int(float(row['step'])) for row in read_csv(run_dir / 'train.csv')] == list(range(1, steps + 1))
    if evaluate:
        assert [int(float(row['step'])) for row in read_csv(run_dir / 'eval.csv')] == [1]

    run(agent_name, visual_set, tmp_path, '--run_group=restored', '--offline_steps=0', f'--restore_path={run_dir}',
        '--eval_interval=0')  # fmt: skip
    data = np.load(visual_set)
    observations = np.concatenate([data['observations'][:4]] * 3, axis=-1)  # Stacks of 3 frames.
    config = AGENTS[agent_name].default_config()
    config.update(encoder='impala_debug', actor_hidden_dims=(8,), value_hidden_dims=(8,), batch_size=8)
    template = AGENTS[agent_name].create(123, observations[:1], data['actions'][:1], config)
    trained = load_checkpoint(str(run_dir / f'checkpoint_{steps}.msgpack'), template, data_key(0))[0]
    restored_dir = tmp_path / 'restored' / f'{agent_name}_visual-cube-single-play_sd0'
    restored = load_checkpoint(str(restored_dir / 'checkpoint_0.msgpack'), template, data_key(0))[0]
    key = jax.random.PRNGKey(7)
    actions = np.asarray(trained.sample_actions(observations, seed=key))
    assert actions.shape == (4, data['actions'].shape[-1]) and np.all(np.isfinite(actions))
    np.testing.assert_array_equal(actions, np.asarray(restored.sample_actions(observations, seed=key)))
    untrained = np.asarray(template.sample_actions(observations, seed=key))
    assert not np.array_equal(actions, untrained)


def test_pixel_flags_fail_before_any_data_is_loaded(tmp_path):
    """An encoder on a state task stops main.py with one line although the dataset file does not exist
    (had it been loaded first, the message would be about that file)."""
    result = run_main(
        '--env_name=cube-single-play', '--agent.encoder=impala_small', f'--dataset_path={tmp_path}/none.npz',
        f'--save_dir={tmp_path}', check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        'error: --agent.encoder=impala_small reads images, but cube-single-play has state observations: drop '
        '--agent.encoder, or train on the visual- task.'
    ]
    assert not (tmp_path / 'Debug').exists()
