"""OGBench dataset files: their names, how sets of them are written, and checks before `ogbench` loads them.

Why: ogbench reads .npz files without checks, so a truncated download, an interrupted
generation or a file for another environment surfaces as a zipfile traceback, a shape error
deep inside relabelling, or NaN losses hours later. `check_ogbench_file` reads the file once,
itself, and turns every such problem into a `UserError` that names the file, says what is
wrong and how to get a good copy. It never lets another exception escape, whatever the bytes.

A dataset set is a training file `X.npz`, its validation file `X-val.npz` (`validation_path`)
and, for generated sets, a JSON sidecar `X.json` that records the generator's settings and the
size and SHA-256 of both files (`check_generated_set`), so a set whose files come from
different runs is never taken for a complete one.
"""

import hashlib
import json
import math
import os
import re
import struct
import zipfile
import zlib

import numpy as np

from envs.ogbench_names import GENERATABLE_FAMILIES, is_visual
from utils.errors import UserError

GENERATOR = 'envs.generate_dataset'

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


def validation_path(train_path: str) -> str:
    """The validation file of the training file `X.npz`: `X-val.npz`.

    Why explicit: `path.replace('.npz', '-val.npz')` returns the training file itself when the
    name has no `.npz` suffix, so a run would validate on its training data without a word.
    """
    return _with_suffix(train_path, '-val.npz', 'validation file')


def sidecar_path(train_path: str) -> str:
    """The JSON sidecar `X.json` that describes the generated set of the training file `X.npz`."""
    return _with_suffix(train_path, '.json', 'sidecar')


def _with_suffix(train_path: str, suffix: str, what: str) -> str:
    if not train_path.endswith('.npz') or os.path.basename(train_path) == '.npz':
        raise UserError(
            f'Dataset path {train_path} must name an .npz file (X.npz): its {what} is found by replacing the '
            f'.npz suffix (X{suffix}). Rename the file, or pass the full name with its .npz suffix.'
        )
    return train_path[: -len('.npz')] + suffix


def save_npz(file, arrays: dict) -> None:
    """np.savez_compressed with fixed member timestamps, so equal arrays give equal bytes on any day."""
    with zipfile.ZipFile(file, 'w', compression=zipfile.ZIP_DEFLATED) as archive:
        for key, array in arrays.items():
            info = zipfile.ZipInfo(f'{key}.npy', date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, 'w', force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def write_atomically(path: str, write) -> None:
    """Write through `write(file)` to a temporary name in the same folder, then rename over `path`.

    A crash or Ctrl-C never leaves a truncated file under the final name. The file handle also
    stops np.savez from appending '.npz' to the temporary name.
    """
    tmp_path = temporary_path(path)
    try:
        write_synced(tmp_path, write)
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)


def write_synced(path: str, write) -> None:
    """Write through `write(file)` and flush to disk, so a rename after it never publishes a partial file."""
    with open(path, 'wb') as file:
        write(file)
        file.flush()
        os.fsync(file.fileno())


def temporary_path(path: str) -> str:
    """The name a file is written under before it is renamed to `path`; leftovers of killed writers match `*.tmp-*`."""
    return f'{path}.tmp-{os.getpid()}'


def file_record(path: str, name: str | None = None) -> dict:
    """Name, size and SHA-256 of a file, as the sidecar records them for each file of a set."""
    digest = hashlib.sha256()
    with open(path, 'rb') as file:
        for block in iter(lambda: file.read(1 << 20), b''):
            digest.update(block)
    return {'name': name or os.path.basename(path), 'bytes': os.path.getsize(path), 'sha256': digest.hexdigest()}


def dataset_folder(dataset_dir: str, flag: str = '--dataset_dir') -> str:
    """`dataset_dir` with ~ expanded, created if missing; UserError when it is a file or cannot be made."""
    folder = os.path.expanduser(dataset_dir)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UserError(
            f'{flag}={dataset_dir} is a file, not a folder: pass the folder that holds (or will hold) the '
            f'datasets, or give a dataset file with --dataset_path.'
        )
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise UserError(f'Cannot create the dataset folder {folder} ({flag}={dataset_dir}): {error}') from None
    return folder


def read_sidecar(train_path: str) -> dict | None:
    """The generator's sidecar of `train_path` as a dict, or None when there is none or it is unreadable."""
    try:
        with open(sidecar_path(train_path)) as file:
            metadata = json.load(file)
    except (OSError, ValueError, UserError):
        return None
    return metadata if isinstance(metadata, dict) and metadata.get('generator') == GENERATOR else None


def check_generated_set(train_path: str, request: dict | None = None) -> tuple[dict | None, str | None]:
    """(sidecar, None) when `train_path`, its validation file and sidecar form one complete generated set
    whose settings equal `request` (keys as in the sidecar); else (sidecar or None, why not).

    Why: reusing a set must never mix files of two runs, nor serve an old smaller set for a
    request of another size or seed.
    """
    metadata = read_sidecar(train_path)
    if metadata is None:
        return None, 'it has no readable sidecar ' + os.path.basename(sidecar_path(train_path))
    differences = [
        f'{key} {metadata.get(key)!r} (requested {value!r})'
        for key, value in (request or {}).items()
        if metadata.get(key) != value
    ]
    if differences:
        return metadata, 'it holds ' + ', '.join(differences)
    files = metadata.get('files')
    if not isinstance(files, dict) or set(files) != {'train', 'val'}:
        return metadata, 'its sidecar records no checksums (written by an older version)'
    for role, path in (('train', train_path), ('val', validation_path(train_path))):
        if not os.path.isfile(path):
            return metadata, f'{os.path.basename(path)} is missing'
        recorded = files[role]
        if not isinstance(recorded, dict) or os.path.getsize(path) != recorded.get('bytes'):
            return metadata, f'{os.path.basename(path)} is not the file its sidecar describes (size differs)'
        if file_record(path)['sha256'] != recorded.get('sha256'):
            return metadata, f'{os.path.basename(path)} is not the file its sidecar describes (checksum differs)'
    return metadata, None


def describe_set(metadata: dict) -> str:
    """'3 episodes + 1 validation, seed 0, 1001 steps each' from a sidecar."""
    return (
        f'{metadata.get("episodes")} episodes + {metadata.get("val_episodes")} validation, '
        f'seed {metadata.get("seed")}, {metadata.get("max_episode_steps")} steps each'
    )


def _how_to_get(path: str) -> str:
    """A hint naming the command that (re)creates the file: generation for oracle families, else download.

    The generator writes into `<dataset_dir>/generated/`, so a file there names its parent as
    the dataset folder.
    """
    directory, name = os.path.split(path)
    match = re.fullmatch(r'(.+)-v0(?:-val)?\.npz', name)
    if match is None:
        return 'Pass the path of an OGBench .npz dataset file.'
    dataset = match.group(1)
    in_generated = os.path.basename(directory) == 'generated'
    dataset_dir = (os.path.dirname(directory) if in_generated else directory) or '.'
    download = f"ogbench.download_datasets(['{dataset}-v0'], dataset_dir='{dataset_dir}')"
    family = next((f for f in GENERATABLE_FAMILIES if dataset.startswith(f + '-')), None)
    if family is None:
        return f'Download it with {download}.'
    generate = f'`python -m envs.generate_dataset --env_name={dataset} --dataset_dir={dataset_dir}`'
    if in_generated:
        return f'Generate it with {generate}, or download it with {download}.'
    generated_dir = os.path.join(dataset_dir, 'generated')
    return f'Download it with {download}, or generate a stand-in with {generate} (it writes to {generated_dir}).'


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, keep: bool = True) -> np.ndarray:
    """Read one .npy member with its declared size checked before any allocation.

    np.load would allocate whatever shape a corrupt header declares; here a header may not
    claim more bytes than the zip entry holds. With `keep=False` the data is read through in
    blocks (so its size and checksum are still verified) but not kept: the result only has the
    member's shape and dtype. Why: a visual dataset's frames are about 12 GB, and nothing in
    them but their shape and dtype is checked.
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
        data = member.read(nbytes) if keep else None
        read = len(data) if keep else sum(len(block) for block in iter(lambda: member.read(1 << 24), b''))
        if read < nbytes:
            raise _BadMember(f'ends after {read} of its {nbytes} data bytes')
        if read > nbytes or member.read(1):  # Reading to the end also makes zipfile verify the checksum.
            raise _BadMember('has bytes after its array data')
    if not keep:
        return np.broadcast_to(np.zeros((), dtype), shape)
    return np.frombuffer(data, dtype=dtype).reshape(shape, order='F' if fortran_order else 'C')


def _fail(path: str, problem: str) -> UserError:
    return UserError(f'Dataset file {path} {problem}. {_how_to_get(path)}')


# First bytes of files that are readable but are not .npz archives, and what they are.
_MAGIC = (
    (b'\x89HDF\r\n\x1a\n', 'an HDF5 file (the format of D4RL datasets, which go with D4RL --env_name values)'),
    (b'\x93NUMPY', 'a single NumPy array (.npy), not an archive of named arrays'),
    (b'\x1f\x8b', 'a gzip file (unpack it first if it holds an .npz)'),
)


def _file_kind(path: str) -> str | None:
    """What a file that is no zip archive is, from its first bytes; None for zip archives and unknown bytes.

    Why: a valid file of the wrong kind needs to be named as such, not called truncated.
    """
    if os.path.isdir(path):
        return 'a folder'
    with open(path, 'rb') as file:
        head = file.read(512)
    if not head:
        return 'empty (0 bytes), as an interrupted download or copy leaves it'
    kind = next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)
    if kind is not None or head.startswith(b'PK'):
        return kind
    try:
        text = head.decode('utf-8')
    except UnicodeDecodeError:
        return None
    if text.lstrip().startswith('<'):
        return "an HTML or XML page (a failed download saves the server's error page)"
    return 'a text file' if all(char.isprintable() or char.isspace() for char in text) else None


def _wrong_keys(path: str, missing: list, have: list, keys: tuple) -> UserError:
    """The message for an .npz archive that holds other arrays than an OGBench dataset."""
    problem = f'lacks the keys {missing} (it has {have}); OGBench files need {list(keys)}'
    if {'rewards', 'timeouts', 'next_observations'} & set(have):
        problem += ' and store no rewards: it looks like a D4RL-style or already processed dataset'
    elif len(missing) == len(keys):
        problem += ': it is an .npz archive of other data, not an OGBench dataset'
    return _fail(path, problem)


def _read_arrays(path: str, keys: tuple, images: bool = False) -> dict:
    kind = _file_kind(path)
    if kind is not None:
        needed = f'OGBench needs an .npz archive with {list(keys)}'
        advice = 'delete it and make it again' if kind.startswith('empty') else needed
        raise _fail(path, f'is not a readable .npz archive: it is {kind}; {advice}')
    arrays = {}
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            members = {info.filename[: -len('.npy')]: info for info in infos if info.filename.endswith('.npy')}
            missing = [key for key in keys if key not in members]
            if missing:
                raise _wrong_keys(path, missing, sorted(members), keys)
            for key in keys:
                try:
                    arrays[key] = _read_member(archive, members[key], keep=key != 'observations' or not images)
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
    name = env.spec.id if env.spec else type(unwrapped).__name__
    for key, shape in expected.items():
        if arrays[key].shape[1:] != shape:
            raise UserError(
                f"Dataset file {path} has '{key}' of shape {arrays[key].shape[1:]} per step but the environment "
                f'{name} needs {shape}; the file belongs to another environment'
                f'{_kind_mismatch(key, arrays[key].shape[1:], shape)}. '
                f'{_how_to_get(path)}'
            )
    image_dtype = env.observation_space.dtype
    if _is_image(expected['observations']) and arrays['observations'].dtype != image_dtype:
        raise UserError(
            f'Dataset file {path} has {arrays["observations"].dtype} images but the environment {name} renders '
            f'{image_dtype} frames, as OGBench stores them (a converted file takes several times the memory and '
            f'may be scaled differently). {_how_to_get(path)}'
        )


def _is_image(shape: tuple) -> bool:
    """Whether a per-step observation shape is an image (height, width, channels), as in pixel-based tasks."""
    return len(shape) == 3


def _kind_mismatch(key: str, have: tuple, need: tuple) -> str:
    """' (state vectors for a pixel-based task ...)' and the like, when a file's observations are of the other kind."""
    if key != 'observations' or _is_image(have) == _is_image(need):
        return ''
    if _is_image(need):
        return f' (state vectors for a pixel-based task: it needs the visual- dataset of {need} images)'
    return ' (images for a state-based task: it needs the dataset without the visual- prefix)'


def _generated_twin(path: str) -> str:
    """' Did you mean DIR/generated/NAME?' when the generator's copy of a missing file exists."""
    directory, name = os.path.split(path)
    twin = os.path.join(directory, 'generated', name)
    return f' Did you mean {twin} (generated locally)?' if os.path.isfile(twin) else ''


def check_ogbench_file(path: str, env=None, env_name: str | None = None) -> None:
    """Raise UserError if `path` is not a complete, finite OGBench dataset (for `env`, when given).

    `env` (a gymnasium env) adds checks of the observation, action, qpos, qvel and button
    dimensions; `env` or `env_name` naming scene or puzzle makes 'button_states' required.
    """
    if not os.path.exists(path):
        raise UserError(f'Dataset file {path} does not exist.{_generated_twin(path)} {_how_to_get(path)}')
    keys = REQUIRED_KEYS + (('button_states',) if _needs_button_states(env, env_name) else ())
    images = (env is not None and _is_image(env.observation_space.shape)) or is_visual(env_name or '')
    arrays = _read_arrays(path, keys, images)
    _check_contents(path, arrays)
    if env is not None:
        _check_against_env(path, arrays, env)
