"""Generate OGBench manipulation datasets locally with the scripted oracles shipped in `ogbench`.

Why: the official files are downloaded from a web server that offline machines cannot reach.
The oracles that made them ship in the pip package, so this module re-runs OGBench's recipe
(its data_gen_scripts/generate_manipspace.py, which the package does not ship) and writes
files in the same format: `<family>-<type>-v0.npz` plus `-val.npz`, loadable with
`ogbench.make_env_and_datasets(..., dataset_path=...)`, and a `.json` sidecar with the
settings and checksums. The files are statistically like the official ones, not
byte-identical: the official seeds are unknown.

Every episode is seeded from (seed, split, episode index, attempt) alone, so a seed gives
identical files for any number of workers, and a smaller dataset is a prefix of a larger one.
That also makes generation resumable: each finished episode is kept as a file in
`<family>-<type>-v0.partial/` next to the target, a rerun with the same settings generates
only the missing ones, and the three files of the set appear together once all are written.
A complete set whose sidecar matches the request is reused, not generated again.

The command line writes into `<dataset_dir>/generated/`, where main.py looks for generated sets:

    python -m envs.generate_dataset --env_name=cube-double-play --num_episodes=1000 --workers=2

Visual families (`visual-cube-single`, ...) run the same recipe in OGBench's pixel environments, as
OGBench made its visual datasets: the oracles act on the simulator state in `info`, and the stored
observations are the rendered 64 x 64 x 3 uint8 frames. Rendering dominates their cost (about 0.15 s
per step on a CPU core, envs/rendering.py), so small sets are the practical ones on a CPU; this one
(11 episodes of 1001 steps with validation) took 0.27 s per step with 2 workers on the project's
2-core machine while it was shared (load 6; 0.33 s with 1 worker), so about 50 minutes; main.py
trains on it with --gen_episodes=10:

    python -m envs.generate_dataset --env_name=visual-cube-single-play --num_episodes=10 --workers=2
"""

import contextlib
import glob
import importlib.metadata
import json
import multiprocessing
import os
import shutil
import signal
import sys
import time
from collections import defaultdict

import numpy as np
from absl import flags

from envs.dataset_files import (
    GENERATOR,
    check_generated_set,
    dataset_folder,
    describe_set,
    file_record,
    save_npz,
    sidecar_path,
    temporary_path,
    validation_path,
    write_atomically,
    write_synced,
)
from envs.ogbench_names import GENERATABLE_FAMILIES, VISUAL_PREFIX, is_visual
from utils.errors import UserError, run_app
from utils.progress import Progress
from utils.quiet_output import quiet_third_party_output

DATASET_TYPES = ('play', 'noisy')

# OGBench's recipe: plan oracles follow a noisy pre-computed plan ('play'); Markov oracles are
# closed-loop with per-episode Gaussian action noise of scale xi ~ U(0, NOISE) ('noisy').
NOISE = 0.1
NOISE_SMOOTHING = 0.5
MIN_NORM = 0.4
NOISY_ACTION_SCALE = np.array([1.0, 1.0, 1.0, 3.0, 10.0])

# Splits enter the episode seed so that validation episodes never repeat training episodes.
TRAIN_SPLIT, VAL_SPLIT = 0, 1
SPLIT_NAMES = {TRAIN_SPLIT: 'train', VAL_SPLIT: 'val'}

# Where the command line (and main.py, when the download fails) puts generated sets, inside --dataset_dir.
GENERATED_SUBDIR = 'generated'
# The sidecar's `made_by` of sets made with this module's command line: the user's, so main.py never replaces them.
COMMAND_LINE = 'command line'
# OGBench's episode length for the manipulation datasets.
MAX_EPISODE_STEPS = 1001
# Bumped when the kept episode files change meaning, so a rerun never mixes them with new ones.
WORK_FORMAT = 1

# The scene health check redraws an episode whose block left the camera's view; a redraw
# succeeds almost always, so hitting this bound means the environment itself is broken.
MAX_SCENE_ATTEMPTS = 100


def family_of(env_name: str) -> str:
    """The generatable family a dataset or environment name belongs to.

    'cube-double', 'cube-double-play' and 'cube-double-play-singletask-task2-v0' all give
    'cube-double'; the longest family wins so that a prefix never shadows a longer name.
    """
    for family in sorted(GENERATABLE_FAMILIES, key=len, reverse=True):
        if env_name == family or env_name.startswith(family + '-'):
            return family
    raise _not_generatable(env_name)


def _not_generatable(name: str) -> UserError:
    return UserError(
        f"Cannot generate a dataset for '{name}': only these manipulation families have scripted "
        f'oracles: {", ".join(GENERATABLE_FAMILIES)} (e.g. --env_name=cube-double-play). Locomotion datasets '
        f'(state or visual) must be downloaded with ogbench.download_datasets.'
    )


def dataset_type_of(env_name: str) -> str | None:
    """The dataset type named in `env_name` ('play' or 'noisy'), or None when it names none."""
    words = env_name[len(family_of(env_name)) :].split('-')
    named = [word for word in DATASET_TYPES if word in words]
    return named[0] if named else None


def dataset_file_name(family: str, dataset_type: str) -> str:
    """The training file's name, as ogbench derives it from '<family>-<type>-singletask-...'."""
    return f'{family}-{dataset_type}-v0.npz'


def generation_request(family, dataset_type, num_episodes, num_val_episodes, max_episode_steps, seed) -> dict:
    """The settings a generated set must have been made with to be reused, keyed as in its sidecar."""
    return dict(
        family=family,
        dataset_type=dataset_type,
        episodes=num_episodes,
        val_episodes=default_val_episodes(num_episodes) if num_val_episodes is None else num_val_episodes,
        seed=seed,
        max_episode_steps=max_episode_steps,
    )


def default_val_episodes(num_episodes: int) -> int:
    """OGBench's ratio: one validation episode per ten training episodes, at least one."""
    return max(1, num_episodes // 10)


def scene_family(family: str) -> str:
    """The state family whose scene (and so oracles and recipe) `family` renders: 'visual-scene' -> 'scene'."""
    return family.removeprefix(VISUAL_PREFIX)


def make_oracles(env, family: str, dataset_type: str) -> dict:
    """The scripted oracles OGBench used for `family`, keyed by the env's 'privileged/target_task'.

    The Markov oracles take `env` as a keyword because their first positional parameter is
    `max_step`. They read the simulator state from `info`, so pixel environments get the same ones.
    Imported here so that the name helpers of this module load without ogbench.
    """
    from ogbench.manipspace.oracles.markov.button_markov import ButtonMarkovOracle
    from ogbench.manipspace.oracles.markov.cube_markov import CubeMarkovOracle
    from ogbench.manipspace.oracles.markov.drawer_markov import DrawerMarkovOracle
    from ogbench.manipspace.oracles.markov.window_markov import WindowMarkovOracle
    from ogbench.manipspace.oracles.plan.button_plan import ButtonPlanOracle
    from ogbench.manipspace.oracles.plan.cube_plan import CubePlanOracle
    from ogbench.manipspace.oracles.plan.drawer_plan import DrawerPlanOracle
    from ogbench.manipspace.oracles.plan.window_plan import WindowPlanOracle

    family = scene_family(family)
    if dataset_type == 'play':
        plan = dict(env=env, noise=NOISE, noise_smoothing=NOISE_SMOOTHING)
        if family.startswith('cube'):
            return {'cube': CubePlanOracle(**plan)}
        if family == 'scene':
            return {
                'cube': CubePlanOracle(**plan),
                'button': ButtonPlanOracle(**plan),
                'drawer': DrawerPlanOracle(**plan),
                'window': WindowPlanOracle(**plan),
            }
        return {'button': ButtonPlanOracle(**plan, gripper_always_closed=True)}
    markov = dict(env=env, min_norm=MIN_NORM)
    if family.startswith('cube'):
        return {'cube': CubeMarkovOracle(**markov)}
    if family == 'scene':
        return {
            'cube': CubeMarkovOracle(**markov, max_step=100),
            'button': ButtonMarkovOracle(**markov),
            'drawer': DrawerMarkovOracle(**markov),
            'window': WindowMarkovOracle(**markov),
        }
    return {'button': ButtonMarkovOracle(**markov, gripper_always_closed=True)}


def make_data_env(family: str, max_episode_steps: int):
    """The environment in OGBench's data-collection mode: random scenes, a new target after each sub-task."""
    import gymnasium
    import ogbench.manipspace  # noqa: F401  (registers the manipulation environments)

    return gymnasium.make(
        f'{family}-v0', terminate_at_goal=False, mode='data_collection', max_episode_steps=max_episode_steps
    )


def _draw_p_stack(family: str) -> float:
    """Per-episode probability that a cube target is on top of another cube (OGBench's values)."""
    family = scene_family(family)
    if family == 'cube-single':
        return 0.0
    if family == 'cube-double':
        return np.random.uniform(0.0, 0.25)
    if family == 'cube-triple':
        return np.random.uniform(0.05, 0.35)
    return 0.5


def _scene_is_healthy(qpos: np.ndarray) -> bool:
    """OGBench's check that the scene's block stayed visible: not too far right, and far left only in the drawer."""
    block_xyz = qpos[:, 14:17]
    too_far_right = block_xyz[:, 1] >= 0.29
    left_outside_drawer = (block_xyz[:, 1] <= -0.3) & ((block_xyz[:, 2] < 0.06) | (block_xyz[:, 2] > 0.08))
    return not (too_far_right.any() or left_outside_drawer.any())


class EpisodeCollector:
    """One data-collection environment with its oracles; rolls out seeded episodes."""

    def __init__(self, family: str, dataset_type: str, max_episode_steps: int):
        self.family = family
        self.dataset_type = dataset_type
        self.observation_dtype = np.uint8 if is_visual(family) else np.float32
        self.env = make_data_env(family, max_episode_steps)
        self.oracles = make_oracles(self.env, family, dataset_type)
        self.has_button_states = hasattr(self.env.unwrapped, '_cur_button_states')

    def collect(self, seed: int, split: int, index: int) -> dict:
        """One episode as arrays of the dataset's keys; scene episodes failing the health check are redrawn."""
        for attempt in range(MAX_SCENE_ATTEMPTS):
            episode = self._rollout(np.random.SeedSequence([seed, split, index, attempt]))
            if scene_family(self.family) != 'scene' or _scene_is_healthy(episode['qpos']):
                return episode
        raise RuntimeError(
            f'{MAX_SCENE_ATTEMPTS} scene episodes in a row failed the health check (seed {seed}, split {split}, '
            f'episode {index}); the scene environment or its oracles misbehave.'
        )

    def _rollout(self, seed_sequence: np.random.SeedSequence) -> dict:
        # The oracles draw from the global NumPy generator and the scene from the env's own one.
        state = seed_sequence.generate_state(5)
        np.random.seed(state[:4])
        ob, info = self.env.reset(seed=int(state[4]))
        p_stack = _draw_p_stack(self.family)
        if self.dataset_type == 'noisy':
            action_noise = np.random.uniform(0, NOISE) * NOISY_ACTION_SCALE
        agent = self.oracles[info['privileged/target_task']]
        agent.reset(ob, info)

        steps = defaultdict(list)
        done = False
        while not done:
            action = np.asarray(agent.select_action(ob, info))
            if self.dataset_type == 'noisy':
                action = action + np.random.normal(0, action_noise, action.shape)
            action = np.clip(action, -1, 1)
            next_ob, _, terminated, truncated, info = self.env.step(action)
            done = terminated or truncated
            if agent.done:
                agent_ob, agent_info = self.env.unwrapped.set_new_target(p_stack=p_stack)
                agent = self.oracles[agent_info['privileged/target_task']]
                agent.reset(agent_ob, agent_info)

            steps['observations'].append(ob)
            steps['actions'].append(action)
            steps['terminals'].append(done)
            steps['qpos'].append(info['prev_qpos'])
            steps['qvel'].append(info['prev_qvel'])
            if self.has_button_states:
                steps['button_states'].append(info['prev_button_states'])
            ob = next_ob

        dtypes = dict(observations=self.observation_dtype, terminals=bool, button_states=np.int64)
        return {key: np.asarray(values, dtype=dtypes.get(key, np.float32)) for key, values in steps.items()}


# A spawned worker's collector, built once by the pool initializer and reused for all its episodes.
_worker_collector = None


class GenerationInterrupted(KeyboardInterrupt):
    """Ctrl-C during generation; the message says how many episodes are kept for the rerun that continues."""

    def __init__(self, done: int, total: int):
        super().__init__(f'interrupted after {done} of {total} episodes; rerun the same command to continue')
        self.done, self.total = done, total


@contextlib.contextmanager
def exit_on_interrupt():
    """Turn GenerationInterrupted into its one-line message on stderr and exit status 130 (128 + SIGINT)."""
    try:
        yield
    except GenerationInterrupted as interrupt:
        print(interrupt, file=sys.stderr, flush=True)
        sys.exit(130)


def _init_worker(family: str, dataset_type: str, max_episode_steps: int):
    """Workers ignore Ctrl-C: the parent alone handles it (it terminates the pool), so a terminal's
    SIGINT to the whole process group yields one line instead of a traceback per worker."""
    global _worker_collector
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, 'pthread_sigmask'):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # Blocked by the parent while spawning.
    quiet_third_party_output()
    _worker_collector = EpisodeCollector(family, dataset_type, max_episode_steps)


def _collect_in_worker(job):
    _save_episode(_worker_collector, *job)


def _shard_path(work_dir: str, split: int, index: int) -> str:
    return os.path.join(work_dir, f'{SPLIT_NAMES[split]}-{index:06d}.npz')


def _save_episode(collector: EpisodeCollector, work_dir: str, seed: int, split: int, index: int) -> None:
    """Roll out one episode and keep it as its own file, written atomically, so an interrupt loses only
    the episodes still running."""
    _write_episode(_shard_path(work_dir, split, index), collector.collect(seed, split, index))


@contextlib.contextmanager
def _sigint_blocked():
    """Hold back SIGINT while worker processes start: they inherit the blocked signal until their
    initializer ignores it, and the parent receives a Ctrl-C pressed meanwhile on leaving the block."""
    if not hasattr(signal, 'pthread_sigmask'):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _collect_all(jobs, work_dir, family, dataset_type, max_episode_steps, workers, bar):
    """Roll out the (seed, split, index) jobs into episode files in `work_dir`, in any order."""
    if not jobs:
        return
    if workers == 1:
        collector = EpisodeCollector(family, dataset_type, max_episode_steps)
        for job in jobs:
            _save_episode(collector, work_dir, *job)
            bar.update(1)
        return
    # Spawn, not fork: the parent may already run JAX, which is not fork-safe.
    context = multiprocessing.get_context('spawn')
    pool = None
    try:
        with _sigint_blocked():
            initargs = (family, dataset_type, max_episode_steps)
            pool = context.Pool(workers, initializer=_init_worker, initargs=initargs)
        for _ in pool.imap_unordered(_collect_in_worker, [(work_dir, *job) for job in jobs]):
            bar.update(1)
        pool.close()
    except BaseException:
        if pool is not None:
            pool.terminate()
        raise
    finally:
        if pool is not None:
            pool.join()


def _load_episode(path: str) -> dict:
    with np.load(path) as file:
        return {key: file[key] for key in file.files}


def _concatenate(paths: list) -> dict:
    """The episode files at `paths` joined into one array per key, each episode copied into place as it is read.

    Why not np.concatenate of the loaded episodes: a visual set's frames are about 12 GB, which the list of
    episodes and their concatenation would hold twice.
    """
    lengths = []
    for path in paths:
        with np.load(path) as file:
            lengths.append(len(file['terminals']))
    ends = np.cumsum(lengths)
    arrays = None
    for path, start, end in zip(paths, ends - lengths, ends, strict=True):
        episode = _load_episode(path)
        if arrays is None:
            arrays = {key: np.empty((ends[-1], *value.shape[1:]), value.dtype) for key, value in episode.items()}
        for key, value in episode.items():
            arrays[key][start:end] = value
    return arrays


def _check_arguments(family, dataset_type, num_episodes, num_val_episodes, max_episode_steps, seed, workers):
    if family not in GENERATABLE_FAMILIES:
        raise _not_generatable(family)
    if dataset_type not in DATASET_TYPES:
        raise UserError(f"Unknown dataset type '{dataset_type}'; choose one of {', '.join(DATASET_TYPES)}.")
    if num_episodes < 1 or num_val_episodes < 1:
        raise UserError(
            f'Need at least one training and one validation episode, got {num_episodes} and {num_val_episodes}.'
        )
    if max_episode_steps < 2:
        raise UserError(f'max_episode_steps must be at least 2 to hold one transition, got {max_episode_steps}.')
    if seed < 0:
        raise UserError(f'The seed must be non-negative, got {seed}.')
    if workers < 1:
        raise UserError(f'workers must be at least 1, got {workers}.')


def work_dir_of(train_path: str) -> str:
    """The folder that keeps finished episodes of an unfinished generation of `train_path`."""
    return train_path[: -len('.npz')] + '.partial'


def _open_work_dir(train_path: str, request: dict) -> str:
    """The work folder for `request`, emptied when its episodes were made with other settings.

    Episodes depend on family, type, seed and episode length (and the ogbench version), not on
    the episode counts, so kept episodes also serve a rerun that asks for more or fewer.
    """
    work_dir = work_dir_of(train_path)
    settings = {key: request[key] for key in ('family', 'dataset_type', 'seed', 'max_episode_steps')}
    settings.update(format=WORK_FORMAT, ogbench_version=importlib.metadata.version('ogbench'))
    settings_path = os.path.join(work_dir, 'settings.json')
    if os.path.isdir(work_dir):
        try:
            with open(settings_path) as file:
                kept = json.load(file)
        except (OSError, ValueError):
            kept = None
        if kept == settings:
            for leftover in glob.glob(os.path.join(glob.escape(work_dir), '*.tmp-*')):
                os.remove(leftover)  # Episodes a killed worker was still writing.
            return work_dir
        print(f'Discarding {work_dir}: its episodes were generated with other settings ({kept}).', flush=True)
        shutil.rmtree(work_dir)
    os.makedirs(work_dir)
    write_atomically(settings_path, lambda file: file.write(json.dumps(settings, indent=2).encode() + b'\n'))
    return work_dir


def _keep_episodes_of_set(train_path: str, request: dict, work_dir: str) -> None:
    """Keep the episodes of the complete set at `train_path` as episode files when it was made with the
    same family, type, seed and episode length: asked to grow, it then generates only what it lacks.

    Episodes are seeded by index, so these are exactly the episodes a new run would make.
    """
    same = {key: request[key] for key in ('family', 'dataset_type', 'seed', 'max_episode_steps')}
    if check_generated_set(train_path, same)[1] is not None:
        return
    splits = (
        (TRAIN_SPLIT, train_path, request['episodes']),
        (VAL_SPLIT, validation_path(train_path), request['val_episodes']),
    )
    for split, path, wanted in splits:
        arrays = _load_episode(path)
        ends = np.flatnonzero(arrays['terminals']) + 1
        starts = np.concatenate([[0], ends[:-1]])
        for index, (start, end) in enumerate(zip(starts[:wanted], ends[:wanted], strict=True)):
            shard = _shard_path(work_dir, split, index)
            if not os.path.exists(shard):
                _write_episode(shard, {key: array[start:end] for key, array in arrays.items()})


def _write_episode(path: str, episode: dict) -> None:
    write_atomically(path, lambda file: save_npz(file, episode))


def _plan(train_path, request, replacing_because, done, total) -> str:
    """The one line that says what this call does: regenerate, resume or generate."""
    if replacing_because is not None:
        kept = f'; {done} of {total} episodes are kept from it or an interrupted run' if done else ''
        return f'Regenerating {train_path} ({describe_set(request)}): {replacing_because}{kept}.'
    if done:
        return f'Resuming {train_path}: {done} of {total} episodes are kept in {work_dir_of(train_path)}.'
    return f'Generating {train_path} ({describe_set(request)}).'


def _publish(train_path: str, train: dict, val: dict, metadata: dict) -> None:
    """Write the three files of the set under temporary names, then move them into place together.

    The old sidecar goes first and the new one comes last: a set is complete only when its
    sidecar's checksums match both files, so a kill between the renames leaves no set that
    looks whole, and never a training file of one run beside a validation file of another.
    """
    val_path, json_path = validation_path(train_path), sidecar_path(train_path)
    temporaries = {path: temporary_path(path) for path in (train_path, val_path, json_path)}
    try:
        write_synced(temporaries[train_path], lambda file: save_npz(file, train))
        write_synced(temporaries[val_path], lambda file: save_npz(file, val))
        metadata['files'] = {
            'train': file_record(temporaries[train_path], os.path.basename(train_path)),
            'val': file_record(temporaries[val_path], os.path.basename(val_path)),
        }
        text = json.dumps(metadata, indent=2).encode() + b'\n'
        write_synced(temporaries[json_path], lambda file: file.write(text))
        if os.path.exists(json_path):
            os.remove(json_path)
        for path in (val_path, train_path, json_path):
            os.replace(temporaries[path], path)
    finally:
        for temporary in temporaries.values():
            if os.path.exists(temporary):
                os.remove(temporary)


def generate_dataset(
    family: str,
    dataset_type: str = 'play',
    num_episodes: int = 1000,
    num_val_episodes: int | None = None,
    max_episode_steps: int = MAX_EPISODE_STEPS,
    seed: int = 0,
    dataset_dir: str = '~/.ogbench/data',
    workers: int = 1,
    progress: bool = True,
    made_by: str = 'library',
) -> str:
    """Make `<dataset_dir>/<family>-<type>-v0.npz`, its `-val.npz` and `.json` sidecar; return the training path.

    Validation episodes default to max(1, num_episodes // 10), OGBench's ratio. A complete set
    whose sidecar matches these settings is reused; otherwise episodes kept by an interrupted
    run with the same family, type, seed and episode length are reused and only the others
    generated. One line says which happened. Ctrl-C raises GenerationInterrupted, keeping every
    finished episode; the result equals an uninterrupted run's, byte for byte. `made_by` is
    recorded in the sidecar: main.py never replaces a set made by the COMMAND_LINE.
    """
    if num_val_episodes is None:
        num_val_episodes = default_val_episodes(num_episodes)
    _check_arguments(family, dataset_type, num_episodes, num_val_episodes, max_episode_steps, seed, workers)
    dataset_dir = dataset_folder(dataset_dir)
    train_path = os.path.join(dataset_dir, dataset_file_name(family, dataset_type))
    request = generation_request(family, dataset_type, num_episodes, num_val_episodes, max_episode_steps, seed)
    existing, reason = check_generated_set(train_path, request)
    if reason is None:
        print(f'Reusing {train_path} ({describe_set(existing)}): its sidecar matches the request.', flush=True)
        return train_path
    replacing = existing is not None or os.path.exists(train_path)
    wanted = [(seed, TRAIN_SPLIT, i) for i in range(num_episodes)]
    wanted += [(seed, VAL_SPLIT, i) for i in range(num_val_episodes)]
    work_dir = work_dir_of(train_path)
    try:
        _generate(train_path, request, wanted, reason if replacing else None, workers, progress, made_by)
    except KeyboardInterrupt:
        done = sum(os.path.exists(_shard_path(work_dir, *job[1:])) for job in wanted)
        raise GenerationInterrupted(done, len(wanted)) from None
    shutil.rmtree(work_dir)
    return train_path


def _generate(train_path, request, wanted, replacing_because, workers, progress, made_by):
    """Generate the episodes of `wanted` that no earlier run kept, then publish the set."""
    start = time.time()
    work_dir = _open_work_dir(train_path, request)
    if replacing_because is not None:
        _keep_episodes_of_set(train_path, request, work_dir)
    jobs = [job for job in wanted if not os.path.exists(_shard_path(work_dir, *job[1:]))]
    resumed = len(wanted) - len(jobs)
    print(_plan(train_path, request, replacing_because, resumed, len(wanted)), flush=True)
    family, dataset_type, steps = request['family'], request['dataset_type'], request['max_episode_steps']
    bar = Progress(f'{family}-{dataset_type}', len(wanted), resumed, unit='episode', enabled=progress)
    with bar:
        _collect_all(jobs, work_dir, family, dataset_type, steps, min(workers, len(jobs)), bar)
    train, val = (
        _concatenate([_shard_path(work_dir, split, i) for _, split, i in wanted if split == wanted_split])
        for wanted_split in (TRAIN_SPLIT, VAL_SPLIT)
    )
    metadata = dict(
        generator=GENERATOR,
        ogbench_version=importlib.metadata.version('ogbench'),
        **request,
        transitions=len(train['terminals']),
        val_transitions=len(val['terminals']),
        made_by=made_by,
        workers=workers,
        resumed_episodes=resumed,
        wall_time_s=round(time.time() - start, 2),
    )
    _publish(train_path, train, val, metadata)


def _define_flags():
    """Flags exist only when this module is the program, so importing it never clashes with main.py's flags."""
    flags.DEFINE_string(
        'env_name',
        None,
        "Family or dataset/env name, e.g. 'cube-double-play', 'cube-double-play-singletask-task2-v0' or "
        "'visual-cube-single-play' (pixels: about 0.15 s per rendered step on a CPU core, envs/rendering.py).",
    )
    flags.DEFINE_string('dataset_type', None, "'play' or 'noisy'; default: the type in --env_name, else 'play'.")
    flags.DEFINE_integer('num_episodes', 1000, 'Training episodes.')
    flags.DEFINE_integer('num_val_episodes', None, 'Validation episodes; default max(1, num_episodes // 10).')
    flags.DEFINE_integer('max_episode_steps', MAX_EPISODE_STEPS, f'Steps per episode (OGBench: {MAX_EPISODE_STEPS}).')
    flags.DEFINE_integer('seed', 0, 'Seed; equal seeds give identical files for any number of workers.')
    flags.DEFINE_string(
        'dataset_dir', '~/.ogbench/data', f'Dataset folder; the files go to its {GENERATED_SUBDIR}/ subfolder.'
    )
    flags.DEFINE_integer('workers', 1, 'Worker processes.')
    flags.mark_flag_as_required('env_name')


def _main(_):
    quiet_third_party_output()
    args = flags.FLAGS
    named_type = dataset_type_of(args.env_name)
    if args.dataset_type is not None and named_type is not None and args.dataset_type != named_type:
        raise UserError(
            f"--env_name={args.env_name} names dataset type '{named_type}' but --dataset_type={args.dataset_type}."
        )
    dataset_dir = dataset_folder(args.dataset_dir)
    with exit_on_interrupt():
        path = generate_dataset(
            family_of(args.env_name),
            dataset_type=args.dataset_type or named_type or 'play',
            num_episodes=args.num_episodes,
            num_val_episodes=args.num_val_episodes,
            max_episode_steps=args.max_episode_steps,
            seed=args.seed,
            dataset_dir=os.path.join(dataset_dir, GENERATED_SUBDIR),
            workers=args.workers,
            made_by=COMMAND_LINE,
        )
    print(f'Dataset: {path} (with -val.npz and .json). Summary: python -m envs.dataset_report {path}')


if __name__ == '__main__':
    _define_flags()
    run_app(_main)
