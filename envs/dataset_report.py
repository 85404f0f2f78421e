"""Summarise an OGBench manipulation dataset: size, reward levels per single task, action statistics.

Why: a generated (or downloaded) file can look fine and still be useless for single-task
offline RL, e.g. when the goal of a task is never reached; the share of transitions at each
reward level, as ogbench relabels them for every task, shows that before hours of training.

    python -m envs.dataset_report ~/.ogbench/data/cube-double-play-v0.npz            # official
    python -m envs.dataset_report ~/.ogbench/data/generated/cube-double-play-v0.npz  # generated

ogbench, gymnasium and dm_control are imported only after their import-time chatter is
silenced (`quiet_third_party_output`), so the output is the report alone.
"""

import glob
import os

import numpy as np
from absl import flags

from envs.dataset_files import check_ogbench_file, describe_set, read_sidecar
from envs.generate_dataset import dataset_type_of, family_of
from utils.errors import UserError, run_app
from utils.quiet_output import quiet_third_party_output

# Every OGBench manipulation family defines single tasks 1 to 5.
TASK_IDS = (1, 2, 3, 4, 5)


def _dataset_name(path: str, env_name: str | None) -> tuple[str, str]:
    """(family, dataset type) from `env_name`, else from the file name '<family>-<type>-v0[-val].npz'."""
    name = env_name or os.path.basename(path)
    dataset_type = dataset_type_of(name)
    if dataset_type is None:
        raise UserError(
            f"Cannot tell the dataset type ('play' or 'noisy') from '{name}'; "
            f'pass --env_name, e.g. --env_name=cube-double-play.'
        )
    return family_of(name), dataset_type


def _reward_shares(rewards: np.ndarray) -> str:
    levels, counts = np.unique(rewards, return_counts=True)
    shares = zip(levels, counts, strict=True)
    return '  '.join(f'{level:g}: {100 * count / len(rewards):6.2f}% ({count})' for level, count in shares)


def _dataset_file(path: str) -> str:
    """`path` itself, or a UserError listing the dataset files when it names a folder."""
    if not os.path.isdir(path):
        return path
    files = sorted(glob.glob(os.path.join(glob.escape(path), '*.npz')))
    files += sorted(glob.glob(os.path.join(glob.escape(path), 'generated', '*.npz')))
    listing = ', '.join(files) if files else 'none'
    raise UserError(f'{path} is a folder; pass one dataset file. Dataset files there: {listing}.')


def _origin(path: str) -> str:
    """Where the file comes from, when its generator left a sidecar next to it."""
    train_path = path[: -len('-val.npz')] + '.npz' if path.endswith('-val.npz') else path
    metadata = read_sidecar(train_path) if train_path.endswith('.npz') else None
    if metadata is None:
        return ''
    return (
        f'generated locally by {metadata["generator"]} (ogbench {metadata.get("ogbench_version")}, '
        f'{describe_set(metadata)}): not the official dataset'
    )


def report(path: str, env_name: str | None = None) -> str:
    """The summary of the dataset file at `path` as text; UserError for files ogbench could not use."""
    import gymnasium
    from ogbench.relabel_utils import relabel_dataset

    path = _dataset_file(path)
    family, dataset_type = _dataset_name(path, env_name)
    if not os.path.isfile(path):
        check_ogbench_file(path, env_name=family)  # Says what is missing before the environments are built.
    envs = {task: gymnasium.make(f'{family}-singletask-task{task}-v0') for task in TASK_IDS}
    check_ogbench_file(path, env=envs[TASK_IDS[0]], env_name=family)
    with np.load(path) as file:
        rows = file['terminals']
        # The transitions ogbench trains on: the last observation of each episode has no successor.
        # Observations are not read: a visual dataset's frames are gigabytes, and the report needs none.
        transitions = ~rows.astype(bool)
        dataset = {key: file[key][transitions] for key in ('actions', 'qpos', 'button_states') if key in file.files}
    actions = dataset['actions']

    origin = _origin(path)
    lines = [
        f'{path}: {family} {dataset_type}',
        *([origin] if origin else []),
        f'rows {len(rows)}, episodes {int(rows.sum())}, transitions {len(actions)}',
        'share of transitions at each reward level (0 = task solved):',
    ]
    for task, env in envs.items():
        relabelled = {key: dataset[key] for key in ('qpos', 'button_states') if key in dataset}
        relabel_dataset(f'{family}-singletask-task{task}-v0', env, relabelled)
        task_name = env.unwrapped.cur_task_info['task_name']
        lines.append(f'  {task_name:24s} {_reward_shares(relabelled["rewards"])}')
    lines.append('actions per dimension:      mean      std      min      max')
    for dim in range(actions.shape[1]):
        column = actions[:, dim]
        lines.append(f'  {dim:<22d} {column.mean():8.3f} {column.std():8.3f} {column.min():8.3f} {column.max():8.3f}')
    return '\n'.join(lines)


def _define_flags():
    flags.DEFINE_string('env_name', None, "Dataset name when the file name does not tell it, e.g. 'cube-double-play'.")


def _main(argv):
    if len(argv) != 2:
        raise UserError('Usage: python -m envs.dataset_report PATH [--env_name=<family>-<type>]')
    quiet_third_party_output()
    print(report(argv[1], flags.FLAGS.env_name))


if __name__ == '__main__':
    _define_flags()
    run_app(_main)
