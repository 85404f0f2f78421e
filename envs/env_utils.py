"""Environments and datasets by name: OGBench single-task (short or full names) and D4RL.

OGBench datasets are found in this order: `--dataset_path`; the official file in
`--dataset_dir`; OGBench's download; and, when the download fails and the family's
scripted oracles ship with `ogbench`, a smaller dataset generated here (with a loud
warning, and its provenance recorded in the run directory).
"""

import json
import os
import sys
import urllib.error

import numpy as np

from envs import d4rl_utils
from envs.d4rl_utils import ACTION_CLIP
from envs.dataset_files import check_ogbench_file
from envs.generate_dataset import GENERATABLE_FAMILIES, generate_dataset
from envs.ogbench_names import LOCOMOTION_PREFIXES, full_name, parse_ogbench_name, unknown_name_error
from utils.downloads import download_timeout
from utils.errors import UserError


def is_d4rl(env_name):
    return d4rl_utils.is_d4rl_env(env_name)


def canonical_env_name(env_name):
    """The full environment name, or a UserError listing the known ones."""
    if is_d4rl(env_name):
        return env_name
    parsed = parse_ogbench_name(env_name)
    if parsed is None:
        raise unknown_name_error(env_name, d4rl_utils.D4RL_ENV_NAMES)
    return full_name(*parsed)


def make_env(env_name, success_timing='post', **kwargs):
    """An evaluation environment, made from its name alone (so evaluation workers can make their own)."""
    if is_d4rl(env_name):
        return d4rl_utils.make_env(env_name, **kwargs)
    import ogbench

    return ogbench.make_env_and_datasets(
        canonical_env_name(env_name), env_only=True, success_timing=success_timing, **kwargs
    )


def make_env_and_datasets(
    env_name, dataset_dir='~/.ogbench/data', dataset_path=None, success_timing='post', gen_episodes=100, gen_workers=1
):
    """(env, train dataset, validation dataset or None, provenance dict)."""
    if is_d4rl(env_name):
        env = d4rl_utils.make_env(env_name)
        train = d4rl_utils.load_dataset(env_name, dataset_path=dataset_path)
        provenance = {'source': 'd4rl' if dataset_path is None else 'given path', 'path': dataset_path}
        return env, clip_actions(train), None, provenance

    import ogbench

    name = canonical_env_name(env_name)
    family, _ = parse_ogbench_name(name)
    path, provenance = resolve_ogbench_dataset(family, dataset_dir, dataset_path, gen_episodes, gen_workers)
    env = ogbench.make_env_and_datasets(name, env_only=True, success_timing=success_timing)
    for file in (path, path.replace('.npz', '-val.npz')):
        check_ogbench_file(file, env_name=name, env=env)
    train, val = ogbench.make_env_and_datasets(name, dataset_path=path, dataset_only=True, cur_env=env)
    return env, clip_actions(train), clip_actions(val), provenance


def resolve_ogbench_dataset(family, dataset_dir, dataset_path, gen_episodes, gen_workers):
    """(path of the training .npz, provenance) for an OGBench family such as 'cube-double-play'."""
    if dataset_path is not None:
        return dataset_path, {'source': 'given path', 'path': dataset_path}
    dataset_dir = os.path.expanduser(dataset_dir)
    official = os.path.join(dataset_dir, f'{family}-v0.npz')
    if os.path.exists(official):
        return official, {'source': 'local file', 'path': official}
    try:
        download(family, dataset_dir)
        return official, {'source': 'downloaded', 'path': official}
    except (urllib.error.URLError, OSError) as error:
        reason = str(error)

    environment, dataset_type = family.rsplit('-', 1)
    if environment not in GENERATABLE_FAMILIES or family.startswith(LOCOMOTION_PREFIXES):
        raise UserError(
            f'Could not download the {family} dataset ({reason}), and locomotion datasets cannot be generated '
            f'here (they need trained expert policies). Download {family}-v0.npz and {family}-v0-val.npz on a '
            f'machine with network access and put them in {dataset_dir}, or pass --dataset_path=/path/{family}-v0.npz.'
        )
    generated_dir = os.path.join(dataset_dir, 'generated')
    generated = os.path.join(generated_dir, f'{family}-v0.npz')
    banner = '!' * 78
    print(
        f'\n{banner}\nWARNING: the official {family} dataset could not be downloaded ({reason}).\n'
        f"Using a dataset GENERATED LOCALLY with OGBench's scripted oracles ({generated}).\n"
        f'It is NOT the official dataset: scores are not comparable with published numbers.\n{banner}\n',
        file=sys.stderr,
        flush=True,
    )
    if not os.path.exists(generated):
        generate_dataset(
            environment, dataset_type, num_episodes=gen_episodes, dataset_dir=generated_dir, workers=gen_workers
        )
    provenance = {'source': 'generated (not the official dataset)', 'path': generated}
    sidecar = generated.replace('.npz', '.json')
    if os.path.exists(sidecar):
        with open(sidecar) as f:
            provenance['generator'] = json.load(f)
    return generated, provenance


def download(family, dataset_dir):
    """OGBench's own download, with a socket timeout so an unreachable server fails instead of hanging."""
    import ogbench

    with download_timeout():
        ogbench.download_datasets([f'{family}-v0'], dataset_dir)


def clip_actions(dataset):
    """Clips actions to +-(1 - 1e-5), warning with a count when some lie clearly outside [-1, 1]."""
    actions = np.asarray(dataset['actions'])
    outside = int(np.sum(np.any(np.abs(actions) > 1 + 1e-4, axis=-1)))
    if outside:
        print(
            f'WARNING: {outside} of {len(actions)} dataset actions lie outside [-1, 1]; clipping them.', file=sys.stderr
        )
    return {**dataset, 'actions': np.clip(actions, -ACTION_CLIP, ACTION_CLIP)}


def check_dataset_matches_env(dataset, env, source):
    """Observation and action sizes of the dataset against the environment's spaces."""
    observation_dim = env.observation_space.shape[-1]
    action_dim = env.action_space.shape[-1]
    if dataset['observations'].shape[-1] != observation_dim or dataset['actions'].shape[-1] != action_dim:
        raise UserError(
            f'Dataset {source} has {dataset["observations"].shape[-1]}-dim observations and '
            f'{dataset["actions"].shape[-1]}-dim actions, but the environment expects {observation_dim} and '
            f'{action_dim}. Is it the dataset of another environment?'
        )


def preset_key(env_name):
    """The name presets are keyed by: the D4RL dataset name, or the OGBench family."""
    env_name = canonical_env_name(env_name)
    return env_name if is_d4rl(env_name) else parse_ogbench_name(env_name)[0]
