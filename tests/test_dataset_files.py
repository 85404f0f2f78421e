"""check_ogbench_file: every bad dataset file ends in a UserError naming the file and the problem."""

import ast
import io
import os

import gymnasium
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envs.dataset_files import check_ogbench_file
from utils.errors import UserError

ROWS = 20


def _valid_arrays(obs_dim=28, with_buttons=False):
    """A well-formed two-episode file's arrays (cube-single shapes: 28-d observations, nq 21, nv 20)."""
    terminals = np.zeros(ROWS, dtype=bool)
    terminals[[ROWS // 2 - 1, ROWS - 1]] = True
    arrays = dict(
        observations=np.zeros((ROWS, obs_dim), np.float32),
        actions=np.zeros((ROWS, 5), np.float32),
        terminals=terminals,
        qpos=np.zeros((ROWS, 21), np.float32),
        qvel=np.zeros((ROWS, 20), np.float32),
    )
    if with_buttons:
        arrays['button_states'] = np.zeros((ROWS, 2), np.int64)
    return arrays


def _write(path, arrays):
    np.savez_compressed(path, **arrays)
    return str(path)


def _valid_bytes():
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **_valid_arrays())
    return buffer.getvalue()


VALID_BYTES = _valid_bytes()


@pytest.fixture(scope='module')
def cube_single_env():
    import ogbench  # noqa: F401  (registers the environments)

    return gymnasium.make('cube-single-singletask-v0')


def _error(path, **kwargs):
    with pytest.raises(UserError) as error:
        check_ogbench_file(path, **kwargs)
    message = str(error.value)
    assert path in message
    return message


def test_valid_file_passes(tmp_path, cube_single_env):
    check_ogbench_file(_write(tmp_path / 'cube-single-play-v0.npz', _valid_arrays()), env=cube_single_env)


def test_missing_file_says_how_to_get_it(tmp_path):
    message = _error(str(tmp_path / 'cube-double-play-v0.npz'))
    assert 'does not exist' in message
    assert '--env_name=cube-double-play' in message and 'download_datasets' in message


def test_truncated_file(tmp_path):
    path = tmp_path / 'cube-single-play-v0.npz'
    path.write_bytes(VALID_BYTES[: len(VALID_BYTES) // 2])
    assert 'truncated' in _error(str(path))


def test_file_that_is_not_a_zip(tmp_path):
    path = tmp_path / 'cube-single-play-v0.npz'
    path.write_bytes(b'<html>404 Not Found</html>')
    assert 'not a readable .npz archive' in _error(str(path))


def test_missing_keys(tmp_path):
    arrays = _valid_arrays()
    del arrays['qpos']
    message = _error(_write(tmp_path / 'cube-single-play-v0.npz', arrays))
    assert "lacks the keys ['qpos']" in message


def test_button_states_required_for_puzzle(tmp_path):
    message = _error(_write(tmp_path / 'puzzle-3x3-play-v0.npz', _valid_arrays()), env_name='puzzle-3x3')
    assert 'button_states' in message


def test_nan_values(tmp_path):
    arrays = _valid_arrays()
    arrays['actions'][3, 1] = np.nan
    assert "NaN or infinite values in 'actions'" in _error(_write(tmp_path / 'x-v0.npz', arrays))


def test_mismatched_lengths(tmp_path):
    arrays = _valid_arrays()
    arrays['qvel'] = arrays['qvel'][:-1]
    assert 'different lengths' in _error(_write(tmp_path / 'x-v0.npz', arrays))


def test_wrong_ndim(tmp_path):
    arrays = _valid_arrays()
    arrays['actions'] = arrays['actions'][:, 0]
    assert "'actions' with shape (20,)" in _error(_write(tmp_path / 'x-v0.npz', arrays))


def test_episode_cut_short(tmp_path):
    arrays = _valid_arrays()
    arrays['terminals'][-1] = False
    assert 'middle of an episode' in _error(_write(tmp_path / 'x-v0.npz', arrays))


def test_file_of_another_environment(tmp_path, cube_single_env):
    path = _write(tmp_path / 'cube-double-play-v0.npz', _valid_arrays(obs_dim=37))
    message = _error(path, env=cube_single_env)
    assert "'observations' of shape (37,)" in message and '(28,)' in message


def _check_passes_or_user_error(tmp_path, data: bytes):
    path = tmp_path / 'cube-single-play-v0.npz'
    path.write_bytes(data)
    try:
        check_ogbench_file(str(path))
    except UserError as error:
        assert str(path) in str(error)


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(data=st.binary(max_size=2000))
def test_random_bytes_never_escape(tmp_path, data):
    _check_passes_or_user_error(tmp_path, data)


@FUZZ
@given(
    cut=st.integers(0, len(VALID_BYTES)),
    flips=st.lists(st.tuples(st.integers(0, len(VALID_BYTES) - 1), st.integers(0, 255)), max_size=8),
)
def test_damaged_valid_files_never_escape(tmp_path, cut, flips):
    data = bytearray(VALID_BYTES)
    for position, value in flips:
        data[position] = value
    _check_passes_or_user_error(tmp_path, bytes(data[:cut]))


@FUZZ
@given(
    dtype=st.sampled_from(['f4', 'f8', 'i8', 'u1', '?', 'c8', 'U3', 'f2']),
    shapes=st.lists(st.lists(st.integers(0, 4), max_size=3), min_size=5, max_size=5),
    fill=st.sampled_from([0.0, 1.0, np.nan, np.inf]),
)
def test_odd_arrays_never_escape(tmp_path, dtype, shapes, fill):
    keys = ('observations', 'actions', 'terminals', 'qpos', 'qvel')
    arrays = {key: np.full(shape, fill).astype(dtype) for key, shape in zip(keys, shapes, strict=True)}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    _check_passes_or_user_error(tmp_path, buffer.getvalue())


def test_directory_instead_of_file(tmp_path):
    directory = tmp_path / 'cube-single-play-v0.npz'
    os.mkdir(directory)
    assert 'not a readable' in _error(str(directory))


def _envs_imports():
    """{module: envs modules it imports anywhere, function bodies included}, read from the sources of envs/."""
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'envs')
    modules = {name[: -len('.py')] for name in os.listdir(folder) if name.endswith('.py')}
    graph = {}
    for module in modules:
        with open(os.path.join(folder, f'{module}.py')) as file:
            tree = ast.parse(file.read())
        names = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
        names += [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module]
        graph[module] = {name.split('.')[1] for name in names if name.startswith('envs.')} & modules
    return graph


def test_envs_modules_import_each_other_without_a_circle():
    """dataset_files once imported generate_dataset inside a function to dodge the circle; one side knows the other."""
    graph = _envs_imports()
    assert 'dataset_files' in graph['generate_dataset']

    def reaches(start, target, seen=()):
        return any(n == target or (n not in seen and reaches(n, target, (*seen, n))) for n in graph[start])

    circles = [module for module in graph if reaches(module, module)]
    assert circles == [], f'envs modules in an import circle: {circles}'
