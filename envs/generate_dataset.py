"""Generate OGBench manipulation datasets locally with the scripted oracles shipped in `ogbench`.

Why: the official files are downloaded from a web server that offline machines cannot reach.
The oracles that made them ship in the pip package, so this module re-runs OGBench's recipe
(its data_gen_scripts/generate_manipspace.py, which the package does not ship) and writes
files in the same format: `<family>-<type>-v0.npz` plus `-val.npz`, loadable with
`ogbench.make_env_and_datasets(..., dataset_path=...)`. The files are statistically like the
official ones, not byte-identical: the official seeds are unknown.

Every episode is seeded from (seed, split, episode index, attempt) alone, so a seed gives
identical files for any number of workers, and a smaller dataset is a prefix of a larger one.

    python -m envs.generate_dataset --env_name=cube-double-play --num_episodes=1000 --workers=2
"""

import importlib.metadata
import json
import multiprocessing
import os
import time
from collections import defaultdict

import gymnasium
import numpy as np
import ogbench.manipspace  # noqa: F401  (registers the manipulation environments)
from absl import flags
from ogbench.manipspace.oracles.markov.button_markov import ButtonMarkovOracle
from ogbench.manipspace.oracles.markov.cube_markov import CubeMarkovOracle
from ogbench.manipspace.oracles.markov.drawer_markov import DrawerMarkovOracle
from ogbench.manipspace.oracles.markov.window_markov import WindowMarkovOracle
from ogbench.manipspace.oracles.plan.button_plan import ButtonPlanOracle
from ogbench.manipspace.oracles.plan.cube_plan import CubePlanOracle
from ogbench.manipspace.oracles.plan.drawer_plan import DrawerPlanOracle
from ogbench.manipspace.oracles.plan.window_plan import WindowPlanOracle
from tqdm import tqdm

from utils.errors import UserError, run_app

GENERATABLE_FAMILIES = ('cube-single', 'cube-double', 'cube-triple', 'scene', 'puzzle-3x3', 'puzzle-4x4')
DATASET_TYPES = ('play', 'noisy')

# OGBench's recipe: plan oracles follow a noisy pre-computed plan ('play'); Markov oracles are
# closed-loop with per-episode Gaussian action noise of scale xi ~ U(0, NOISE) ('noisy').
NOISE = 0.1
NOISE_SMOOTHING = 0.5
MIN_NORM = 0.4
NOISY_ACTION_SCALE = np.array([1.0, 1.0, 1.0, 3.0, 10.0])

# Splits enter the episode seed so that validation episodes never repeat training episodes.
TRAIN_SPLIT, VAL_SPLIT = 0, 1

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
        f'oracles: {", ".join(GENERATABLE_FAMILIES)} (e.g. --env_name=cube-double-play). Locomotion and '
        f'visual datasets must be downloaded with ogbench.download_datasets.'
    )


def dataset_type_of(env_name: str) -> str | None:
    """The dataset type named in `env_name` ('play' or 'noisy'), or None when it names none."""
    words = env_name[len(family_of(env_name)) :].split('-')
    named = [word for word in DATASET_TYPES if word in words]
    return named[0] if named else None


def dataset_file_name(family: str, dataset_type: str) -> str:
    """The training file's name, as ogbench derives it from '<family>-<type>-singletask-...'."""
    return f'{family}-{dataset_type}-v0.npz'


def make_oracles(env, family: str, dataset_type: str) -> dict:
    """The scripted oracles OGBench used for `family`, keyed by the env's 'privileged/target_task'.

    The Markov oracles take `env` as a keyword because their first positional parameter is
    `max_step`.
    """
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
    return gymnasium.make(
        f'{family}-v0', terminate_at_goal=False, mode='data_collection', max_episode_steps=max_episode_steps
    )


def _draw_p_stack(family: str) -> float:
    """Per-episode probability that a cube target is on top of another cube (OGBench's values)."""
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
        self.env = make_data_env(family, max_episode_steps)
        self.oracles = make_oracles(self.env, family, dataset_type)
        self.has_button_states = hasattr(self.env.unwrapped, '_cur_button_states')

    def collect(self, seed: int, split: int, index: int) -> dict:
        """One episode as arrays of the dataset's keys; scene episodes failing the health check are redrawn."""
        for attempt in range(MAX_SCENE_ATTEMPTS):
            episode = self._rollout(np.random.SeedSequence([seed, split, index, attempt]))
            if self.family != 'scene' or _scene_is_healthy(episode['qpos']):
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

        dtypes = dict(terminals=bool, button_states=np.int64)
        return {key: np.asarray(values, dtype=dtypes.get(key, np.float32)) for key, values in steps.items()}


# A spawned worker's collector, built once by the pool initializer and reused for all its episodes.
_worker_collector = None


def _init_worker(family: str, dataset_type: str, max_episode_steps: int):
    global _worker_collector
    _worker_collector = EpisodeCollector(family, dataset_type, max_episode_steps)


def _collect_in_worker(job):
    return _worker_collector.collect(*job)


def _gather(results, bar) -> list:
    episodes = []
    for episode in results:
        episodes.append(episode)
        bar.update()
    return episodes


def _collect_all(jobs, family, dataset_type, max_episode_steps, workers, progress):
    """Episodes for all (seed, split, index) jobs, in job order, with a progress bar over episodes."""
    with tqdm(total=len(jobs), unit='episode', desc=f'{family}-{dataset_type}', disable=not progress) as bar:
        if workers == 1:
            collector = EpisodeCollector(family, dataset_type, max_episode_steps)
            return _gather((collector.collect(*job) for job in jobs), bar)
        # Spawn, not fork: the parent may already run JAX, which is not fork-safe.
        context = multiprocessing.get_context('spawn')
        initargs = (family, dataset_type, max_episode_steps)
        with context.Pool(workers, initializer=_init_worker, initargs=initargs) as pool:
            return _gather(pool.imap(_collect_in_worker, jobs), bar)


def _concatenate(episodes: list) -> dict:
    return {key: np.concatenate([episode[key] for episode in episodes]) for key in episodes[0]}


def _write_atomically(path: str, write) -> None:
    """Write through `write(file)` to a temporary name in the same folder, then rename over `path`.

    A crash or Ctrl-C never leaves a truncated file under the final name. The file handle also
    stops np.savez from appending '.npz' to the temporary name.
    """
    tmp_path = f'{path}.tmp-{os.getpid()}'
    try:
        with open(tmp_path, 'wb') as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)


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


def generate_dataset(
    family: str,
    dataset_type: str = 'play',
    num_episodes: int = 1000,
    num_val_episodes: int | None = None,
    max_episode_steps: int = 1001,
    seed: int = 0,
    dataset_dir: str = '~/.ogbench/data',
    workers: int = 1,
    progress: bool = True,
) -> str:
    """Generate `<family>-<type>-v0.npz`, its `-val.npz` and a `.json` sidecar; return the training file's path.

    Validation episodes default to max(1, num_episodes // 10), OGBench's ratio. The training
    file is written last, so its presence means the set is complete.
    """
    if num_val_episodes is None:
        num_val_episodes = max(1, num_episodes // 10)
    _check_arguments(family, dataset_type, num_episodes, num_val_episodes, max_episode_steps, seed, workers)
    dataset_dir = os.path.expanduser(dataset_dir)
    os.makedirs(dataset_dir, exist_ok=True)
    train_path = os.path.join(dataset_dir, dataset_file_name(family, dataset_type))
    stem = train_path[: -len('.npz')]

    start = time.time()
    jobs = [(seed, TRAIN_SPLIT, i) for i in range(num_episodes)]
    jobs += [(seed, VAL_SPLIT, i) for i in range(num_val_episodes)]
    workers = min(workers, len(jobs))
    episodes = _collect_all(jobs, family, dataset_type, max_episode_steps, workers, progress)
    train = _concatenate(episodes[:num_episodes])
    val = _concatenate(episodes[num_episodes:])
    wall_time = time.time() - start

    metadata = dict(
        generator='envs.generate_dataset',
        ogbench_version=importlib.metadata.version('ogbench'),
        family=family,
        dataset_type=dataset_type,
        episodes=num_episodes,
        val_episodes=num_val_episodes,
        seed=seed,
        max_episode_steps=max_episode_steps,
        transitions=len(train['terminals']),
        val_transitions=len(val['terminals']),
        workers=workers,
        wall_time_s=round(wall_time, 2),
    )
    _write_atomically(f'{stem}-val.npz', lambda file: np.savez_compressed(file, **val))
    _write_atomically(f'{stem}.json', lambda file: file.write(json.dumps(metadata, indent=2).encode() + b'\n'))
    _write_atomically(train_path, lambda file: np.savez_compressed(file, **train))
    return train_path


def _define_flags():
    """Flags exist only when this module is the program, so importing it never clashes with main.py's flags."""
    flags.DEFINE_string(
        'env_name',
        None,
        "Family or dataset/env name, e.g. 'cube-double-play' or 'cube-double-play-singletask-task2-v0'.",
    )
    flags.DEFINE_string('dataset_type', None, "'play' or 'noisy'; default: the type in --env_name, else 'play'.")
    flags.DEFINE_integer('num_episodes', 1000, 'Training episodes.')
    flags.DEFINE_integer('num_val_episodes', None, 'Validation episodes; default max(1, num_episodes // 10).')
    flags.DEFINE_integer('max_episode_steps', 1001, 'Steps per episode (OGBench: 1001).')
    flags.DEFINE_integer('seed', 0, 'Seed; equal seeds give identical files for any number of workers.')
    flags.DEFINE_string('dataset_dir', '~/.ogbench/data', 'Folder for the files.')
    flags.DEFINE_integer('workers', 1, 'Worker processes.')
    flags.mark_flag_as_required('env_name')


def _main(_):
    args = flags.FLAGS
    named_type = dataset_type_of(args.env_name)
    if args.dataset_type is not None and named_type is not None and args.dataset_type != named_type:
        raise UserError(
            f"--env_name={args.env_name} names dataset type '{named_type}' but --dataset_type={args.dataset_type}."
        )
    path = generate_dataset(
        family_of(args.env_name),
        dataset_type=args.dataset_type or named_type or 'play',
        num_episodes=args.num_episodes,
        num_val_episodes=args.num_val_episodes,
        max_episode_steps=args.max_episode_steps,
        seed=args.seed,
        dataset_dir=args.dataset_dir,
        workers=args.workers,
    )
    print(f'Wrote {path} (and -val.npz, .json).')


if __name__ == '__main__':
    _define_flags()
    run_app(_main)
