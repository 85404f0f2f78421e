"""Validate an OGBench dataset file before `ogbench` loads it.

Why: ogbench reads .npz files without checks, so a truncated download, an interrupted
generation or a file for another environment surfaces as a zipfile traceback, a shape error
deep inside relabelling, or NaN losses hours later. `check_ogbench_file` reads the file once,
itself, and turns every such problem into a `UserError` that names the file, says what is
wrong and how to get a good copy. It never lets another exception escape, whatever the bytes.
"""

import math
import os
import re
import struct
import zipfile
import zlib

import numpy as np

from envs.generate_dataset import GENERATABLE_FAMILIES
from utils.errors import UserError

REQUIRED_KEYS = ('observations', 'actions', 'terminals', 'qpos', 'qvel')
FLOAT_KEYS = ('observations', 'actions', 'qpos', 'qvel')
# Expected number of dimensions; observations may also be images (N, H, W, C).
NDIMS = dict(observations=(2, 4), actions=(2,), terminals=(1,), qpos=(2,), qvel=(2,), button_states=(2,))

# What a damaged zip archive or .npy member can raise while being opened and read.
_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    ValueError,
    OSError,
    struct.error,
    KeyError,
    IndexError,
    TypeError,
    OverflowError,
    NotImplementedError,
    RuntimeError,
)


class _BadMember(Exception):
    """A .npy member that is readable as a zip entry but not as a plain numeric array."""


def _how_to_get(path: str) -> str:
    """A hint naming the command that (re)creates the file: generation for oracle families, else download."""
    directory, name = os.path.split(path)
    match = re.fullmatch(r'(.+)-v0(?:-val)?\.npz', name)
    if match is None:
        return 'Pass the path of an OGBench .npz dataset file.'
    dataset = match.group(1)
    family = next((f for f in GENERATABLE_FAMILIES if dataset.startswith(f + '-')), None)
    if family is not None:
        return (
            f'Generate it with `python -m envs.generate_dataset --env_name={dataset} '
            f'--dataset_dir={directory or "."}`, or download it with '
            f"ogbench.download_datasets(['{dataset}-v0'], dataset_dir='{directory or '.'}')."
        )
    return f"Download it with ogbench.download_datasets(['{dataset}-v0'], dataset_dir='{directory or '.'}')."


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """Read one .npy member with its declared size checked before any allocation.

    np.load would allocate whatever shape a corrupt header declares; here a header may not
    claim more bytes than the zip entry holds.
    """
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise _BadMember(f'uses .npy format version {version}, which this check does not read')
        if dtype.kind not in 'biuf':
            raise _BadMember(f'has dtype {dtype}, not a plain numeric or boolean type')
        if any(size < 0 for size in shape):
            raise _BadMember(f'declares the invalid shape {shape}')
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > info.file_size:
            raise _BadMember(f'declares shape {shape} ({nbytes} bytes) but holds only {info.file_size} bytes')
        data = member.read(nbytes)
        if len(data) != nbytes:
            raise _BadMember(f'ends after {len(data)} of its {nbytes} data bytes')
        if member.read(1):  # Also makes zipfile verify the member's checksum.
            raise _BadMember('has bytes after its array data')
    return np.frombuffer(data, dtype=dtype).reshape(shape, order='F' if fortran_order else 'C')


def _fail(path: str, problem: str) -> UserError:
    return UserError(f'Dataset file {path} {problem}. {_how_to_get(path)}')


def _read_arrays(path: str, keys: tuple) -> dict:
    arrays = {}
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            members = {info.filename[: -len('.npy')]: info for info in infos if info.filename.endswith('.npy')}
            missing = [key for key in keys if key not in members]
            if missing:
                have = sorted(members)
                raise _fail(path, f'lacks the keys {missing} (it has {have}); OGBench files need {list(keys)}')
            for key in keys:
                try:
                    arrays[key] = _read_member(archive, members[key])
                except _BadMember as error:
                    raise _fail(path, f"is damaged: its array '{key}' {error}; delete it and make it again") from None
    except _READ_ERRORS as error:
        raise _fail(
            path,
            f'is not a readable .npz archive ({type(error).__name__}: {error}); it may be truncated by an '
            f'interrupted download or generation, so delete it and make it again',
        ) from None
    return arrays


def _needs_button_states(env, env_name: str | None) -> bool:
    by_name = env_name is not None and ('scene' in env_name or 'puzzle' in env_name)
    by_env = env is not None and hasattr(env.unwrapped, '_cur_button_states')
    return by_name or by_env


def _check_contents(path: str, arrays: dict) -> None:
    for key, array in arrays.items():
        if array.ndim not in NDIMS[key]:
            ndims = ' or '.join(map(str, NDIMS[key]))
            raise _fail(path, f"has '{key}' with shape {array.shape}; expected {ndims} dimensions")
    length = len(arrays['observations'])
    lengths = {key: len(array) for key, array in arrays.items()}
    if any(n != length for n in lengths.values()):
        raise _fail(path, f'has arrays of different lengths {lengths}')
    if length == 0:
        raise _fail(path, 'holds no transitions')
    for key in FLOAT_KEYS:
        if arrays[key].dtype.kind == 'f' and not np.isfinite(arrays[key]).all():
            raise _fail(path, f"has NaN or infinite values in '{key}'")
    terminals = arrays['terminals']
    if not np.isin(terminals, (0, 1)).all():
        raise _fail(path, "has 'terminals' values other than 0 and 1")
    if not terminals[-1]:
        raise _fail(path, 'ends in the middle of an episode (the last terminal is 0); it is probably cut short')
    if terminals.all():
        raise _fail(path, 'has only terminal rows, so no transition between two observations')


def _check_against_env(path: str, arrays: dict, env) -> None:
    """Shapes must match the environment, or a file for another task would train silently on wrong data."""
    expected = {
        'observations': tuple(env.observation_space.shape),
        'actions': tuple(env.action_space.shape),
    }
    unwrapped = env.unwrapped
    model = getattr(unwrapped, '_model', None)
    if model is not None:
        expected['qpos'] = (model.nq,)
        expected['qvel'] = (model.nv,)
    if 'button_states' in arrays and hasattr(unwrapped, '_num_buttons'):
        expected['button_states'] = (unwrapped._num_buttons,)
    for key, shape in expected.items():
        if arrays[key].shape[1:] != shape:
            raise UserError(
                f"Dataset file {path} has '{key}' of shape {arrays[key].shape[1:]} per step but the environment "
                f'{env.spec.id if env.spec else type(unwrapped).__name__} needs {shape}; the file belongs to '
                f'another environment. {_how_to_get(path)}'
            )


def check_ogbench_file(path: str, env=None, env_name: str | None = None) -> None:
    """Raise UserError if `path` is not a complete, finite OGBench dataset (for `env`, when given).

    `env` (a gymnasium env) adds checks of the observation, action, qpos, qvel and button
    dimensions; `env` or `env_name` naming scene or puzzle makes 'button_states' required.
    """
    if not os.path.exists(path):
        raise UserError(f'Dataset file {path} does not exist. {_how_to_get(path)}')
    keys = REQUIRED_KEYS + (('button_states',) if _needs_button_states(env, env_name) else ())
    arrays = _read_arrays(path, keys)
    _check_contents(path, arrays)
    if env is not None:
        _check_against_env(path, arrays, env)
