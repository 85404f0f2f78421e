"""D4RL AntMaze v2 and Adroit v1: evaluation environments and datasets prepared as FQL does.

Datasets are read from D4RL's hdf5 files with h5py alone, so loading a given file works on the
base install. Environments need the D4RL extra (`bash scripts/install_d4rl.sh`: MuJoCo 2.1,
mujoco-py, gym 0.23, d4rl, shimmy); they reach gymnasium through shimmy's
'GymV21Environment-v0'.

Preprocessing, following FQL (which calls d4rl.qlearning_dataset first):
- transitions as `qlearning_dataset` builds them: next_observations[i] = observations[i + 1];
  rows marked by `timeouts` are dropped (their next row starts another episode), and so is the
  last row;
- `terminals` (episode ends, for FQL-style sampling) where observations[i + 1] differs from
  next_observations[i], and for Adroit also where the dataset's terminal is set; the last
  transition always ends an episode;
- masks = 1 - the dataset's terminal (AntMaze marks goal-reaching steps terminal);
- AntMaze rewards shifted by -1 (0 at the goal, -1 elsewhere); actions clipped to +-(1 - 1e-5).
"""

import ctypes
import os
import sys
import urllib.error
import warnings

import gymnasium
import h5py
import numpy as np

from utils.downloads import download_timeout
from utils.errors import UserError

ANTMAZE_ENV_NAMES = (
    'antmaze-umaze-v2',
    'antmaze-umaze-diverse-v2',
    'antmaze-medium-play-v2',
    'antmaze-medium-diverse-v2',
    'antmaze-large-play-v2',
    'antmaze-large-diverse-v2',
)
ADROIT_TASKS = ('pen', 'door', 'hammer', 'relocate')
ADROIT_ENV_NAMES = tuple(f'{task}-{data}-v1' for task in ADROIT_TASKS for data in ('human', 'cloned', 'expert'))
D4RL_ENV_NAMES = ANTMAZE_ENV_NAMES + ADROIT_ENV_NAMES

# (observation dim, action dim) of each suite's environments, checked against files before use.
_ANTMAZE_DIMS = (29, 8)
_ADROIT_DIMS = {'pen': (45, 24), 'door': (39, 28), 'hammer': (46, 26), 'relocate': (39, 30)}
# The environments' time limits; d4rl.qlearning_dataset counts episode steps with them when a
# file has no `timeouts` key.
_ADROIT_MAX_STEPS = {'pen': 100, 'door': 200, 'hammer': 200, 'relocate': 200}

INSTALL_COMMAND = 'bash scripts/install_d4rl.sh'
ACTION_CLIP = 1 - 1e-5
# The sparse AntMaze reward within 0.5 of the goal; the evaluation episode then ends.
ANTMAZE_GOAL_REWARD = 1.0
REQUIRED_KEYS = ('observations', 'actions', 'rewards', 'terminals')


def is_d4rl_env(name: str) -> bool:
    return name in D4RL_ENV_NAMES


def is_antmaze(name: str) -> bool:
    return name.startswith('antmaze')


def expected_dims(env_name: str) -> tuple:
    """(observation dim, action dim) of a D4RL environment."""
    return _ANTMAZE_DIMS if is_antmaze(env_name) else _ADROIT_DIMS[env_name.split('-')[0]]


def max_episode_steps(env_name: str) -> int:
    if is_antmaze(env_name):
        return 700 if env_name.startswith('antmaze-umaze') else 1000
    return _ADROIT_MAX_STEPS[env_name.split('-')[0]]


def _check_name(env_name):
    if not is_d4rl_env(env_name):
        raise UserError(f"Unknown D4RL environment '{env_name}'; choose one of {', '.join(D4RL_ENV_NAMES)}.")


# ---------------------------------------------------------------------------------------------
# Environments


def mujoco_dir() -> str:
    """Where mujoco-py (and scripts/install_d4rl.sh) look for MuJoCo 2.1."""
    return os.environ.get('MUJOCO_PY_MUJOCO_PATH') or os.path.expanduser('~/.mujoco/mujoco210')


def _missing_extra(what: str) -> UserError:
    return UserError(
        f'D4RL environments need the D4RL extra, which is not installed ({what}). '
        f'Install it with `{INSTALL_COMMAND}` (a few minutes), then rerun.'
    )


def _prepare_mujoco_libraries():
    """Lets mujoco-py import without LD_LIBRARY_PATH having been exported before Python started.

    mujoco-py refuses to import unless MuJoCo's bin folder is in os.environ['LD_LIBRARY_PATH'],
    but the dynamic loader read that variable at process start, and mujoco-py's compiled
    module links libmujoco210.so and libglewosmesa.so by bare name without an rpath. Loading
    libmujoco210.so first, by path, lets the loader match both names to loaded libraries:
    scripts/install_d4rl.sh gave them SONAMEs and made libmujoco210.so load GLEW (and GLEW
    OSMesa) itself. The load is local (not RTLD_GLOBAL): global MuJoCo 2.1 symbols would
    interpose on the `mujoco` 3+ library that OGBench and dm_control load, and crash it.
    MUJOCO_PY_FORCE_CPU keeps mujoco-py on that OSMesa build on GPU machines too:
    evaluation never renders, and the EGL build would need the NVIDIA driver folder as well.
    """
    bin_dir = os.path.join(mujoco_dir(), 'bin')
    library = os.path.join(bin_dir, 'libmujoco210.so')
    if not os.path.exists(library):
        raise _missing_extra(f'no MuJoCo 2.1 library in {bin_dir}')
    os.environ['MUJOCO_PY_FORCE_CPU'] = '1'
    paths = [path for path in os.environ.get('LD_LIBRARY_PATH', '').split(':') if path]
    if bin_dir in paths:
        return  # Exported before start: the loader finds everything, patched or not.
    os.environ['LD_LIBRARY_PATH'] = ':'.join(paths + [bin_dir])
    try:
        ctypes.CDLL(library)
    except OSError as error:
        raise _missing_extra(f'cannot load {error}') from error


def import_d4rl():
    """The `d4rl` module with AntMaze and Adroit registered in gym, and shimmy registered in gymnasium."""
    if 'd4rl' in sys.modules and 'shimmy' in sys.modules:
        return sys.modules['d4rl']
    _prepare_mujoco_libraries()
    # d4rl announces every optional suite that fails to import (Flow, CARLA, Kitchen, ...);
    # the two this project needs are imported again below, where a failure raises.
    # Its import of dm_control (for Kitchen) also warns that GLFW has no display: noise for
    # environments that never render.
    os.environ.setdefault('D4RL_SUPPRESS_IMPORT_ERROR', '1')
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            import d4rl
            import d4rl.hand_manipulation_suite  # noqa: F401  (Adroit; needs mjrl)
            import d4rl.locomotion  # noqa: F401  (AntMaze)
            import shimmy
    except ImportError as error:
        raise _missing_extra(str(error)) from error
    gymnasium.register_envs(shimmy)
    return d4rl


def normalized_score(env_name: str, episode_return: float) -> float:
    """D4RL's normalised score x 100: 0 is its random policy (AntMaze: failure), 100 its expert (success)."""
    return 100.0 * float(import_d4rl().get_normalized_score(env_name, episode_return))


def make_env(env_name: str, render_mode: str | None = None):
    """A gymnasium evaluation environment whose final info holds normalized_return (and success for AntMaze).

    render_mode='rgb_array' renders offscreen (for evaluation videos).
    """
    _check_name(env_name)
    import_d4rl()
    # The passive checker only warns that these gym-era envs return float64 observations.
    env = gymnasium.make('GymV21Environment-v0', env_id=env_name, render_mode=render_mode, disable_env_checker=True)
    return D4RLScoreWrapper(env, env_name)


class D4RLScoreWrapper(gymnasium.Wrapper):
    """Adds the episode's D4RL score to the info of its last step; observations as float32.

    'normalized_return' is the normalised return x 100; AntMaze also gets 'success', 1.0 when
    the sparse goal reward was reached at any step (the evaluation env stops there). The
    float32 cast matches the observation space and the datasets (the envs return float64).
    """

    def __init__(self, env, env_name):
        super().__init__(env)
        self.env_name = env_name
        self._return = 0.0
        self._reached_goal = False

    def reset(self, **kwargs):
        self._return = 0.0
        self._reached_goal = False
        observation, info = self.env.reset(**kwargs)
        return np.asarray(observation, dtype=np.float32), info

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        self._return += float(reward)
        self._reached_goal |= float(reward) >= ANTMAZE_GOAL_REWARD
        if terminated or truncated:
            info = dict(info, normalized_return=normalized_score(self.env_name, self._return))
            if is_antmaze(self.env_name):
                info['success'] = float(self._reached_goal)
        return np.asarray(observation, dtype=np.float32), reward, terminated, truncated, info


# ---------------------------------------------------------------------------------------------
# Datasets


def load_dataset(env_name: str, dataset_path: str | None = None) -> dict:
    """Transitions of a D4RL dataset as float32 arrays, preprocessed as FQL does (see the module doc).

    Keys: observations, actions, next_observations, rewards, masks, terminals. With no
    `dataset_path` the file comes from D4RL's own download and cache (D4RL_DATASET_DIR,
    default ~/.d4rl/datasets), which needs the D4RL extra and network access.
    """
    _check_name(env_name)
    if dataset_path is None:
        dataset_path = _download(env_name)
    raw = read_hdf5(dataset_path, env_name)
    transitions = qlearning_transitions(raw, max_episode_steps(env_name))
    if len(transitions['rewards']) == 0:
        raise UserError(f'D4RL file {dataset_path} holds no transitions: every row is the last of an episode.')
    return fql_preprocess(env_name, transitions)


def _download(env_name):
    """The local path of the env's official file, downloaded by d4rl unless already cached."""
    d4rl = import_d4rl()
    from d4rl import offline_env

    url = d4rl.infos.DATASET_URLS[env_name]
    try:
        with download_timeout():
            return offline_env.download_dataset_from_url(url)
    except (urllib.error.URLError, OSError) as error:
        raise UserError(
            f'Could not download the {env_name} dataset from {url} ({error}). Download it on a machine with '
            f'network access and put it at {offline_env.filepath_from_url(url)}, or pass --dataset_path=FILE.hdf5.'
        ) from error


def read_hdf5(path: str, env_name: str) -> dict:
    """The flat arrays of a D4RL hdf5 file (observations, actions, rewards, terminals, timeouts if any).

    Everything a later step would trip over is checked here, so a bad file fails with its
    name and the problem instead of a shape error deep in training.
    """
    if not os.path.isfile(path):
        raise UserError(f'D4RL dataset file {path} does not exist.')
    try:
        with h5py.File(path, 'r') as file:
            missing = [key for key in REQUIRED_KEYS if not isinstance(file.get(key), h5py.Dataset)]
            if missing:
                raise UserError(
                    f'D4RL file {path} lacks the key(s) {", ".join(missing)}; a D4RL dataset has '
                    f'{", ".join(REQUIRED_KEYS)} (and optionally timeouts).'
                )
            keys = REQUIRED_KEYS + (('timeouts',) if isinstance(file.get('timeouts'), h5py.Dataset) else ())
            raw = {key: np.asarray(file[key][()]) for key in keys}
    except OSError as error:
        raise UserError(f'Cannot read D4RL file {path} as hdf5 ({error}).') from error

    n = len(raw['observations']) if raw['observations'].ndim else 0
    for key in ('rewards', 'terminals', 'timeouts'):
        if key in raw and raw[key].ndim == 2 and raw[key].shape[1] == 1:
            raw[key] = raw[key][:, 0]  # Some files store (N, 1), as d4rl tolerates.
    observation_dim, action_dim = expected_dims(env_name)
    expected_shapes = {
        'observations': (n, observation_dim),
        'actions': (n, action_dim),
        'rewards': (n,),
        'terminals': (n,),
        'timeouts': (n,),
    }
    for key, value in raw.items():
        if value.shape != expected_shapes[key]:
            raise UserError(
                f'D4RL file {path}: {key} has shape {value.shape}, expected {expected_shapes[key]} for {env_name} '
                f'({n} rows from observations; observations {observation_dim}-dim, actions {action_dim}-dim).'
            )
    return raw


def qlearning_transitions(raw: dict, max_steps: int) -> dict:
    """What d4rl.qlearning_dataset(env, dataset=raw) returns, vectorised.

    next_observations[i] = observations[i + 1]; a row whose timeout is set (its successor starts
    another episode) is dropped, and so is the last row. Files without timeouts get them
    from an episode-step counter exactly as d4rl counts (a terminal restarts it).
    """
    n = len(raw['rewards'])
    timeouts = raw['timeouts'].astype(bool) if 'timeouts' in raw else _counted_timeouts(raw['terminals'], max_steps)
    keep = np.flatnonzero(~timeouts[: max(n - 1, 0)])
    observations = raw['observations'].astype(np.float32)
    return {
        'observations': observations[keep],
        'actions': raw['actions'][keep].astype(np.float32),
        'next_observations': observations[keep + 1],
        'rewards': raw['rewards'][keep].astype(np.float32),
        'terminals': raw['terminals'][keep].astype(bool),
    }


def _counted_timeouts(terminals, max_steps):
    """d4rl's episode-step counting for files without timeouts: the step where the counter hits the limit."""
    timeouts = np.zeros(len(terminals), dtype=bool)
    step = 0
    for i, terminal in enumerate(terminals[:-1]):
        if step == max_steps - 1:
            timeouts[i] = True
            step = 0
            continue
        if terminal:
            step = 0
        step += 1
    return timeouts


def fql_preprocess(env_name: str, transitions: dict) -> dict:
    """FQL's episode ends, masks, reward shift and action clipping on qlearning_dataset transitions."""
    observations = transitions['observations']
    next_observations = transitions['next_observations']
    dataset_terminals = transitions['terminals'].astype(np.float32)
    ends = np.ones(len(observations), dtype=np.float32)
    ends[:-1] = np.linalg.norm(observations[1:] - next_observations[:-1], axis=-1) > 1e-6
    rewards = transitions['rewards']
    if is_antmaze(env_name):
        rewards = rewards - 1.0
    else:
        ends = np.maximum(ends, dataset_terminals)
    return {
        'observations': observations,
        'actions': np.clip(transitions['actions'], -ACTION_CLIP, ACTION_CLIP),
        'next_observations': next_observations,
        'rewards': rewards.astype(np.float32),
        'masks': 1.0 - dataset_terminals,
        'terminals': ends,
    }
