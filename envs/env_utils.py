"""Environments and datasets by name: OGBench single-task (short or full names) and D4RL.

OGBench datasets are found in this order: `--dataset_path`; the official file in
`--dataset_dir`; a complete generated set in `<dataset_dir>/generated/` whose sidecar matches
the request (episodes, seed; without `--gen_episodes`, any set of at least DEFAULT_GEN_EPISODES
episodes); OGBench's download; and, when the download fails and the family's scripted oracles
ship with `ogbench`, a set generated (or resumed) there, with a loud warning and its provenance
recorded in the run directory. The download is tried only when no usable file exists, so a run
with its data at hand never waits on the network. Whatever data a run gets, its size is printed
and recorded with the provenance.

Pixel-based families (`visual-cube-single-play`, ...) take the same path: their frames load as uint8
(N, 64, 64, 3) images, and of them only the manipulation families can be generated (rendering every
step, envs/rendering.py). `make_env(..., frame_stack=N)` stacks evaluation frames as training does.
"""

import os
import sys
import urllib.error

import numpy as np

from envs import d4rl_utils
from envs.d4rl_utils import ACTION_CLIP
from envs.dataset_files import (
    check_generated_set,
    check_ogbench_file,
    dataset_folder,
    describe_set,
    read_sidecar,
    validation_path,
)
from envs.frame_stack import ChannelFrameStack
from envs.generate_dataset import (
    COMMAND_LINE,
    GENERATED_SUBDIR,
    MAX_EPISODE_STEPS,
    default_val_episodes,
    exit_on_interrupt,
    generate_dataset,
    generation_request,
)
from envs.ogbench_names import (
    GENERATABLE_FAMILIES,
    LOCOMOTION_PREFIXES,
    full_name,
    is_visual,
    parse_ogbench_name,
    unknown_name_error,
)
from envs.rendering import CPU_SECONDS_PER_FRAME
from utils.dataset_keys import TASK_KEYS
from utils.downloads import download_timeout
from utils.errors import UserError

# Episodes generated when --gen_episodes is None and no complete generated set holds at least as many.
DEFAULT_GEN_EPISODES = 100
INFO_KEYS = ('qpos', 'qvel', 'button_states')
# The simulator state ogbench's relabel_dataset reads.
STATE_KEYS = ('qpos', 'button_states')


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


def make_env(env_name, success_timing='post', frame_stack=None, **kwargs):
    """An evaluation environment, made from its name alone (so evaluation workers can make their own).

    With `frame_stack=N` its observations are the last N concatenated on the channel axis, as a
    run with `--frame_stack=N` trains on them (envs/frame_stack.py). A pixel-based task renders
    its frames in the process that steps it: an evaluation worker's, with `--eval_workers`.
    """
    if is_d4rl(env_name):
        env = d4rl_utils.make_env(env_name, **kwargs)
    else:
        env = ogbench_env(canonical_env_name(env_name), success_timing, **kwargs)
    return stacked(env, frame_stack)


def ogbench_env(name, success_timing='post', **kwargs):
    """OGBench's environment `name` (a full name), its observation space read once, without gymnasium's checker.

    Why: OGBench computes the space from an observation on every read, and a pixel-based task's observation is a
    rendered frame (0.15 to 0.3 s on a CPU); checking a dataset against the environment and wrapping it read the
    space about ten times, seconds per environment. The space of an environment never changes. gymnasium's
    passive checker (it only warns about environments that break the API, which OGBench's do not) read it three
    more times while the environment was made: 0.4 s per pixel-based environment.
    """
    import ogbench

    env = ogbench.make_env_and_datasets(
        name, env_only=True, success_timing=success_timing, disable_env_checker=True, **kwargs
    )
    env.observation_space = env.observation_space
    return env


def stacked(env, frame_stack):
    """`env` with its last `frame_stack` observations concatenated on the channel axis (None: as it is)."""
    return env if frame_stack is None else ChannelFrameStack(env, frame_stack)


class FirstCallReuses:
    """An environment factory whose first plain call returns `env`, an environment already built (the one a
    run's dataset came with, made as `make` makes them); later calls, and calls with arguments (videos),
    call `make`. Why: an OGBench manipulation environment takes about 1.2 s to build and holds ~150 MB,
    and a run's evaluator would otherwise build its first one again."""

    def __init__(self, env, make):
        self.env, self.make = env, make

    def __call__(self, **kwargs):
        if self.env is None or kwargs:
            return self.make(**kwargs)
        env, self.env = self.env, None
        return env


def make_env_and_datasets(
    env_name,
    dataset_dir='~/.ogbench/data',
    dataset_path=None,
    success_timing='post',
    gen_episodes=DEFAULT_GEN_EPISODES,
    gen_workers=1,
    gen_seed=0,
):
    """(env, train dataset, validation dataset or None, provenance dict).

    `gen_episodes` and `gen_seed` say which generated set is wanted when one is used; with
    `gen_episodes=None` any complete generated set of at least DEFAULT_GEN_EPISODES episodes is
    used, and DEFAULT_GEN_EPISODES are generated when there is none (see `_small_set`).
    """
    if is_d4rl(env_name):
        env = d4rl_utils.make_env(env_name)
        train = d4rl_utils.load_dataset(env_name, dataset_path=dataset_path)
        provenance = {'source': 'd4rl' if dataset_path is None else 'given path', 'path': dataset_path}
        return env, clip_actions(train), None, _with_size(provenance, env_name, train)

    name = canonical_env_name(env_name)
    family, _ = parse_ogbench_name(name)
    path, provenance = resolve_ogbench_dataset(family, dataset_dir, dataset_path, gen_episodes, gen_workers, gen_seed)
    env = ogbench_env(name, success_timing)
    check_ogbench_file(path, env_name=name, env=env)  # First: a file of the wrong kind is named as such.
    val_path = _validation_path_of(path)
    check_ogbench_file(val_path, env_name=name, env=env)
    provenance['validation_path'] = val_path
    train, val = _relabeled(name, env, [_load_with_info(file, name) for file in (path, val_path)])
    return env, clip_actions(train), clip_actions(val), _with_size(provenance, name, train, val)


def make_task_envs_and_datasets(
    task_names,
    dataset_dir='~/.ogbench/data',
    dataset_path=None,
    success_timing='post',
    gen_episodes=None,
    gen_workers=1,
):
    """(envs, train, validation, provenance) for several tasks of one OGBench family, trained together.

    The tasks share the family's dataset file and differ only in rewards and masks, so the file is
    read once: observations and actions appear once, and `rewards` and `masks` get a leading task
    axis (task i of `task_names` in row i), each row as `make_env_and_datasets` labels that task.
    """

    names = [canonical_env_name(task_name) for task_name in task_names]
    family, _ = parse_ogbench_name(names[0])
    path, provenance = resolve_ogbench_dataset(family, dataset_dir, dataset_path, gen_episodes, gen_workers)
    envs = [ogbench_env(name, success_timing) for name in names]
    check_ogbench_file(path, env_name=names[0], env=envs[0])
    val_path = _validation_path_of(path)
    check_ogbench_file(val_path, env_name=names[0], env=envs[0])
    provenance['validation_path'] = val_path
    raw = [_load_with_info(file, names[0]) for file in (path, val_path)]
    labelled = [_relabeled(name, env, [dict(data) for data in raw]) for name, env in zip(names, envs, strict=True)]
    datasets = []
    for per_task in zip(*labelled, strict=True):  # The training file's labels for every task, then validation's.
        shared = {key: value for key, value in per_task[0].items() if key not in TASK_KEYS}
        datasets.append(clip_actions({**shared, **{key: np.stack([d[key] for d in per_task]) for key in TASK_KEYS}}))
    return envs, datasets[0], datasets[1], _with_size(provenance, family, *datasets)


def _with_size(provenance, name, train, val=None):
    """`provenance` with the episodes and transitions of the data a run trains on, also printed in one line.

    Why: a run on a 2-episode set looks like any other run in its logs; its size, printed and kept in
    dataset.json, says at once what it learnt from.
    """
    size = {'episodes': int(np.sum(train['terminals'])), 'transitions': len(train['terminals'])}
    if val is not None:
        size.update(val_episodes=int(np.sum(val['terminals'])), val_transitions=len(val['terminals']))
    validation = f'; validation {size["val_episodes"]} and {size["val_transitions"]}' if val is not None else ''
    print(
        f'Dataset of {name}: {size["episodes"]} episodes, {size["transitions"]} transitions{validation} '
        f'({provenance["source"]}: {provenance.get("path") or "its default file"}).',
        flush=True,
    )
    return {**provenance, **size}


def _validation_path_of(train_path):
    """The validation file of `train_path`, with a hint when the validation file itself was given."""
    if train_path.endswith('-val.npz'):
        raise UserError(
            f'Dataset path {train_path} names a validation file; pass the training file '
            f'{train_path[: -len("-val.npz")]}.npz, whose validation file is found by inserting -val before .npz.'
        )
    return validation_path(train_path)


def _load_with_info(path, name):
    """One file with the simulator state (qpos, qvel, button states) that task rewards are computed from.

    A pixel-based task's frames stay uint8, as stored: ogbench's loader would make them float32, four
    times the memory (a 1M-frame visual dataset is 12 GB as uint8).
    """
    from ogbench.utils import load_dataset

    return load_dataset(path, ob_dtype=np.uint8 if is_visual(name) else np.float32, add_info=True)


def _relabeled(name, env, datasets):
    """`datasets` (the training and validation files) with the rewards and masks of task `name`, as ogbench's
    make_env_and_datasets(name, dataset_path=..., dataset_only=True) labels each file, without the simulator state.

    Why not call that: it finds the validation file by `path.replace('.npz', '-val.npz')`, which
    can name the training file itself; here each file is named explicitly. Both files are labelled in one call
    of ogbench's relabel_dataset, on their simulator states joined: it labels row by row against the task's
    goal, which its env.reset() sets (the same goal each time), and a pixel-based environment's reset renders
    frames (a visual-cube run's data loads in 2.5 CPU-s instead of 3.2). Every episode a run plays resets its
    environment with a seed of its own.
    """
    from ogbench.relabel_utils import relabel_dataset

    words = name.split('-')
    position = words.index('singletask')
    task_env_name = '-'.join(words[: position - 1] + words[position:])  # Without the dataset type.
    states = {key: np.concatenate([d[key] for d in datasets]) for key in STATE_KEYS if key in datasets[0]}
    relabel_dataset(task_env_name, env, states)
    ends = np.cumsum([len(d['terminals']) for d in datasets])[:-1]
    for key in ('rewards', 'masks'):
        for dataset, labels in zip(datasets, np.split(states[key], ends), strict=True):
            dataset[key] = labels
    for dataset in datasets:
        for key in INFO_KEYS:
            dataset.pop(key, None)
    return datasets


def resolve_ogbench_dataset(family, dataset_dir, dataset_path, gen_episodes, gen_workers, gen_seed=0):
    """(path of the training .npz, provenance) for an OGBench family such as 'cube-double-play'."""
    if dataset_path is not None:
        return dataset_path, _file_provenance('given path', dataset_path)
    folder = dataset_folder(dataset_dir)
    official = os.path.join(folder, f'{family}-v0.npz')
    if os.path.exists(official):
        return official, _file_provenance('local file', official)
    environment, dataset_type = family.rsplit('-', 1)
    generatable = environment in GENERATABLE_FAMILIES and not family.startswith(LOCOMOTION_PREFIXES)
    generated = os.path.join(folder, GENERATED_SUBDIR, f'{family}-v0.npz')
    if gen_episodes is None:
        request = {'family': environment, 'dataset_type': dataset_type}
    else:
        request = generation_request(environment, dataset_type, gen_episodes, None, MAX_EPISODE_STEPS, gen_seed)
    if generatable:
        metadata, problem = check_generated_set(generated, request)
        if problem is None and gen_episodes is None and metadata['episodes'] < DEFAULT_GEN_EPISODES:
            problem = _small_set(generated, metadata, gen_seed)
        if problem is None:
            print(
                f'Using the set generated in {generated} ({describe_set(metadata)}); it is NOT the official '
                f'dataset, so scores are not comparable with published numbers.',
                flush=True,
            )
            return generated, _generated_provenance(generated, metadata)

    try:
        download(family, folder)
        return official, {'source': 'downloaded', 'path': official}
    except (urllib.error.URLError, OSError) as error:
        reason = str(error)
    if not generatable:
        raise UserError(
            f'Could not download the {family} dataset ({reason}), and locomotion datasets cannot be generated '
            f'here (they need trained expert policies). Download {family}-v0.npz and {family}-v0-val.npz on a '
            f'machine with network access and put them in {folder}, or pass --dataset_path=/path/{family}-v0.npz.'
        )
    _generate_instead(generated, request, reason, gen_episodes, gen_workers, gen_seed)
    return generated, _generated_provenance(generated, read_sidecar(generated))


def _small_set(path, metadata, gen_seed):
    """Why a complete generated set of fewer than DEFAULT_GEN_EPISODES episodes is not used when no
    --gen_episodes asked for it: one line, or a UserError for a set made with the command line.

    Why: a quick look with --gen_episodes=2 leaves its set where every later run of the family
    looks; taken silently, weeks of runs would train on 2 episodes. A run's set is regenerated (its
    episodes are kept as the first ones); a command-line set is the user's, so the run asks instead.
    """
    episodes = metadata['episodes']
    its_size = generation_request(
        metadata['family'], metadata['dataset_type'], episodes, None, MAX_EPISODE_STEPS, gen_seed
    )
    use = f'--gen_episodes={episodes}' if check_generated_set(path, its_size)[1] is None else f'--dataset_path={path}'
    small = (
        f'{path} holds only {episodes} episodes ({metadata.get("transitions")} transitions), fewer than the '
        f'{DEFAULT_GEN_EPISODES} a run uses unless told otherwise'
    )
    if metadata.get('made_by') == COMMAND_LINE:
        env_name = f'{metadata["family"]}-{metadata["dataset_type"]}'
        dataset_dir = os.path.dirname(os.path.dirname(path))
        raise UserError(
            f'{small}: to train on it, pass {use}; for a larger set, replace it with `python -m envs.generate_dataset '
            f'--env_name={env_name} --num_episodes={DEFAULT_GEN_EPISODES} --dataset_dir={dataset_dir}`.'
        )
    print(f'{small}, so that set is made instead (to train on the small one, pass {use}).', flush=True)
    return f'it holds only {episodes} episodes'


def _generate_instead(generated, request, reason, gen_episodes, gen_workers, gen_seed):
    """Generate (or resume, or regenerate) the requested set at `generated`, after a loud warning."""
    _keep_command_line_set(generated, request)
    banner = '!' * 78
    print(
        f'\n{banner}\nWARNING: the official {request["family"]}-{request["dataset_type"]} dataset could not be '
        f"downloaded ({reason}).\nUsing a dataset GENERATED LOCALLY with OGBench's scripted oracles ({generated}).\n"
        f'It is NOT the official dataset: scores are not comparable with published numbers.\n{banner}\n',
        file=sys.stderr,
        flush=True,
    )
    episodes = DEFAULT_GEN_EPISODES if gen_episodes is None else gen_episodes
    if is_visual(request['family']):
        total = episodes + default_val_episodes(episodes)
        hours = total * MAX_EPISODE_STEPS * CPU_SECONDS_PER_FRAME / gen_workers / 3600
        print(
            f'Every step of a visual dataset is rendered: {total} episodes (validation included) of '
            f'{MAX_EPISODE_STEPS} steps take about '
            f"{hours:.1f} h with {gen_workers} worker(s) on CPU cores ({CPU_SECONDS_PER_FRAME} s per step; a GPU's EGL "
            f'renders faster). For a quick look, pass --gen_episodes=2.',
            file=sys.stderr,
            flush=True,
        )
    with exit_on_interrupt():
        generate_dataset(
            request['family'],
            request['dataset_type'],
            num_episodes=episodes,
            max_episode_steps=MAX_EPISODE_STEPS,
            seed=gen_seed,
            dataset_dir=os.path.dirname(generated),
            workers=gen_workers,
            made_by='main.py (download failed)',
        )


def _keep_command_line_set(path, request):
    """UserError instead of replacing a complete set the user made with the command line for another request.

    Why: such a set may hold hours of generation (e.g. the official recipe's 1000 episodes);
    a run's --gen_episodes, perhaps left at its default, must not silently discard it.
    """
    metadata, problem = check_generated_set(path)
    if problem is not None or metadata.get('made_by') != COMMAND_LINE:
        return
    if all(metadata.get(key) == value for key, value in request.items() if key not in ('episodes', 'val_episodes')):
        use = f'pass --gen_episodes={metadata["episodes"]} (or --dataset_path={path})'
    else:
        use = f'pass --dataset_path={path}'
    raise UserError(
        f'{path} holds a set made with `python -m envs.generate_dataset` ({describe_set(metadata)}), not the '
        f'requested one ({describe_set(request)}), and runs do not replace sets made with the command line. '
        f'To train on it, {use}; to generate the requested set instead, delete {path} and its -val.npz and .json.'
    )


def _generated_provenance(path, metadata):
    return {'source': 'generated (not the official dataset)', 'path': path, 'generator': metadata}


def _file_provenance(source, path):
    """Provenance of a file found or given by path; a generated set's sidecar marks it, after its checksums agree.

    Why check: a set whose training and validation files come from different runs must not
    train silently. Sidecars of older versions carry no checksums and are taken as they are.
    """
    metadata = read_sidecar(path) if path.endswith('.npz') else None
    if metadata is None:
        return {'source': source, 'path': path}
    if 'files' in metadata:
        _, reason = check_generated_set(path)
        if reason is not None:
            raise UserError(
                f'{path} is part of a generated set that is not complete: {reason}. Generate the set again '
                f'(python -m envs.generate_dataset ...), or delete its .json sidecar to use the files as they are.'
            )
    return {'source': f'{source}, generated (not the official dataset)', 'path': path, 'generator': metadata}


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
    """Observation and action shapes of the dataset against the environment's spaces (images: every axis)."""
    observation_shape = tuple(env.observation_space.shape)
    action_dim = env.action_space.shape[-1]
    have = tuple(dataset['observations'].shape[1:])
    if have != observation_shape or dataset['actions'].shape[-1] != action_dim:
        raise UserError(
            f'Dataset {source} has observations of shape {have} and {dataset["actions"].shape[-1]}-dim actions, '
            f'but the environment expects {observation_shape} and {action_dim}. Is it the dataset of another '
            f'environment?'
        )


def preset_key(env_name):
    """The name presets are keyed by: the D4RL dataset name, or the OGBench family."""
    env_name = canonical_env_name(env_name)
    return env_name if is_d4rl(env_name) else parse_ogbench_name(env_name)[0]
