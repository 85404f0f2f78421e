"""Dataset faults a user meets, each injected: killed or interrupted generation, stale generated sets,
needless downloads, wrong paths and files of the wrong kind, noisy reports.

Each test checks the outcome a user sees: which data is kept, the exit status or exception, and
one clear message. Sets are tiny (30-step episodes) so the module runs in about a minute on 2 cores.
"""

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error

import h5py
import numpy as np
import pytest

from envs import env_utils
from envs.dataset_files import check_ogbench_file
from envs.generate_dataset import EpisodeCollector, generate_dataset
from tests.helpers import ROOT, run_python
from utils.errors import UserError

pytestmark = pytest.mark.slow

STEPS = 30
EPISODES = 3
FAMILY = 'cube-single-play'
INTERRUPTED = 'rerun the same command to continue'


def _generate(directory, **kwargs):
    """A tiny cube-single play set in `directory`, as main.py's resolver would request it (val = max(1, n // 10))."""
    args = dict(num_episodes=EPISODES, num_val_episodes=1, max_episode_steps=STEPS, progress=False)
    return generate_dataset('cube-single', dataset_dir=str(directory), **{**args, **kwargs})


def _bytes(path):
    with open(path, 'rb') as file:
        return file.read()


def _set_bytes(train_path):
    return _bytes(train_path), _bytes(train_path[: -len('.npz')] + '-val.npz')


@pytest.fixture(scope='module')
def dataset_dir(tmp_path_factory):
    """A dataset folder holding one tiny generated set in generated/, as the command line makes it."""
    folder = tmp_path_factory.mktemp('data')
    _generate(folder / 'generated')
    return folder


@pytest.fixture
def fresh_dir(dataset_dir, tmp_path):
    """A copy of `dataset_dir` that a test may change."""
    return shutil.copytree(dataset_dir, tmp_path / 'data')


@pytest.fixture
def offline(monkeypatch):
    """OGBench's download fails as on a machine without network; returns the list of attempted families.

    Also shortens the episodes main.py's resolver asks for, so that tiny sets can match its request.
    """
    attempts = []

    def download(family, dataset_dir):
        attempts.append(family)
        raise urllib.error.URLError('no network in tests')

    monkeypatch.setattr(env_utils, 'download', download)
    monkeypatch.setattr(env_utils, 'MAX_EPISODE_STEPS', STEPS, raising=False)
    return attempts


def _interrupt_after(monkeypatch, calls):
    """Make the in-process episode collector raise KeyboardInterrupt (as Ctrl-C does) on call `calls + 1`."""
    original = EpisodeCollector.collect
    count = [0]

    def collect(self, *args):
        count[0] += 1
        if count[0] > calls:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(EpisodeCollector, 'collect', collect)


# 1. A set appears as one unit; the validation file is never the training file.


def test_kill_while_moving_files_into_place_never_leaves_a_mixed_set(fresh_dir, monkeypatch, tmp_path):
    """Killed between the renames of a seed-1 set over a seed-0 set: no sidecar may vouch for mixed files."""
    generated = fresh_dir / 'generated'
    train_path = str(generated / f'{FAMILY}-v0.npz')
    seed0 = _set_bytes(train_path)
    original_replace = os.replace

    def replace(source, destination):
        if os.fspath(destination) == train_path:
            raise KeyboardInterrupt  # The kill: after the validation file moved, before the training file.
        original_replace(source, destination)

    monkeypatch.setattr(os, 'replace', replace)
    with pytest.raises(KeyboardInterrupt):
        _generate(generated, seed=1)
    monkeypatch.setattr(os, 'replace', original_replace)

    sidecar = generated / f'{FAMILY}-v0.json'
    if sidecar.exists():  # A sidecar claims a complete set of its seed: both files must be of that seed.
        seed = json.loads(sidecar.read_text())['seed']
        train, val = _set_bytes(train_path)
        assert (train == seed0[0], val == seed0[1]) == ((True, True) if seed == 0 else (False, False))
    assert not glob.glob(str(generated / '*.tmp-*')), 'temporary files left behind'
    # Nothing half-made is reused: the rerun completes the seed-1 set, equal to an uninterrupted one.
    again = _generate(generated, seed=1)
    assert _set_bytes(again) == _set_bytes(_generate(tmp_path / 'reference', seed=1))


def test_validation_path_inserts_val_before_the_npz_suffix():
    from envs.dataset_files import validation_path

    assert validation_path('data/cube-single-play-v0.npz') == 'data/cube-single-play-v0-val.npz'
    assert validation_path('old.npz/cube-single-play-v0.npz') == 'old.npz/cube-single-play-v0-val.npz'
    for path in ('data/cube-single-play-v0', 'data/cube-single-play-v0.npz.bak', 'data/.npz'):
        with pytest.raises(UserError, match='must name an .npz file'):
            validation_path(path)


def test_dataset_path_without_npz_suffix_is_not_its_own_validation_file(dataset_dir, tmp_path):
    """Before: path.replace('.npz', '-val.npz') returned the path itself, so training data validated silently."""
    no_suffix = tmp_path / 'cube-single-play-v0'
    shutil.copy(dataset_dir / 'generated' / f'{FAMILY}-v0.npz', no_suffix)
    with pytest.raises(UserError, match='must name an .npz file') as error:
        env_utils.make_env_and_datasets(FAMILY, dataset_path=str(no_suffix))
    assert str(no_suffix) in str(error.value)


def test_training_and_validation_files_of_different_runs_are_refused(fresh_dir, tmp_path):
    """A set whose validation file was swapped for another run's (e.g. copied by hand) does not train silently."""
    train_path = str(fresh_dir / 'generated' / f'{FAMILY}-v0.npz')
    other = _generate(tmp_path / 'other', seed=1)
    shutil.copy(other.replace('.npz', '-val.npz'), train_path.replace('.npz', '-val.npz'))
    with pytest.raises(UserError, match='not the file its sidecar describes'):
        env_utils.make_env_and_datasets(FAMILY, dataset_path=train_path)


# 2. A generated set is reused only when it matches the request.


def test_larger_request_regenerates_instead_of_reusing_the_smaller_set(fresh_dir, offline, capsys, tmp_path):
    train_path = str(fresh_dir / 'generated' / f'{FAMILY}-v0.npz')
    path, provenance = env_utils.resolve_ogbench_dataset(FAMILY, str(fresh_dir), None, EPISODES + 2, 1)
    assert path == train_path
    assert provenance['generator']['episodes'] == EPISODES + 2
    regenerating = [line for line in capsys.readouterr().out.splitlines() if line.startswith('Regenerating')]
    assert len(regenerating) == 1 and 'episodes 3 (requested 5)' in regenerating[0], regenerating
    # Episodes of the smaller set are kept, so the result equals a fresh set of five.
    assert _set_bytes(path) == _set_bytes(_generate(tmp_path / 'fresh', num_episodes=EPISODES + 2))


def test_set_of_another_seed_is_regenerated_not_reused(fresh_dir, offline, capsys):
    """A set generated with --seed=1 sits where main.py (seed 0) looks: it is replaced, not trained on."""
    _generate(fresh_dir / 'generated', seed=1)
    capsys.readouterr()
    _, provenance = env_utils.resolve_ogbench_dataset(FAMILY, str(fresh_dir), None, EPISODES, 1)
    assert provenance['generator']['seed'] == 0
    assert 'seed 1 (requested 0)' in capsys.readouterr().out


def test_run_never_replaces_a_set_made_with_the_command_line(tmp_path, offline):
    """A user's command-line set (maybe hours of the official recipe) and a run asking for another size."""
    from envs.generate_dataset import COMMAND_LINE

    train_path = _generate(tmp_path / 'generated', made_by=COMMAND_LINE)
    before = _set_bytes(train_path)
    with pytest.raises(UserError, match=f'pass --gen_episodes={EPISODES} ') as error:
        env_utils.resolve_ogbench_dataset(FAMILY, str(tmp_path), None, EPISODES + 2, 1)
    assert 'runs do not replace sets made with the command line' in str(error.value)
    assert _set_bytes(train_path) == before


def test_small_set_of_a_run_is_regenerated_unless_gen_episodes_asks_for_it(fresh_dir, offline, capsys, monkeypatch):
    """A quick look with --gen_episodes=3 must not leave 3 episodes for every later run of the family."""
    monkeypatch.setattr(env_utils, 'DEFAULT_GEN_EPISODES', EPISODES + 2)
    _, provenance = env_utils.resolve_ogbench_dataset(FAMILY, str(fresh_dir), None, None, 1)
    assert provenance['generator']['episodes'] == EPISODES + 2
    small = [line for line in capsys.readouterr().out.splitlines() if 'holds only' in line]
    assert len(small) == 1 and f'only {EPISODES} episodes' in small[0], small
    assert small[0].endswith(f'(to train on the small one, pass --gen_episodes={EPISODES}).'), small
    # Asked for, the small set is used: the suggested flag works.
    _, provenance = env_utils.resolve_ogbench_dataset(FAMILY, str(fresh_dir), None, EPISODES, 1)
    assert provenance['generator']['episodes'] == EPISODES


def test_small_command_line_set_is_kept_and_the_run_asks_for_the_flag(tmp_path, offline, monkeypatch):
    from envs.generate_dataset import COMMAND_LINE

    train_path = _generate(tmp_path / 'generated', made_by=COMMAND_LINE)
    before = _set_bytes(train_path)
    monkeypatch.setattr(env_utils, 'DEFAULT_GEN_EPISODES', EPISODES + 2)
    with pytest.raises(UserError, match=f'holds only {EPISODES} episodes') as error:
        env_utils.resolve_ogbench_dataset(FAMILY, str(tmp_path), None, None, 1)
    assert f'to train on it, pass --gen_episodes={EPISODES};' in str(error.value)
    assert '\n' not in str(error.value) and offline == []
    assert _set_bytes(train_path) == before


def test_size_of_the_data_is_printed_and_recorded(cube_single_dataset, capsys):
    """Two 40-step episodes: 39 transitions each (the last observation of an episode only ends it)."""
    _, _, _, provenance = env_utils.make_env_and_datasets(FAMILY, dataset_path=cube_single_dataset)
    size = {key: provenance[key] for key in ('episodes', 'transitions', 'val_episodes', 'val_transitions')}
    assert size == {'episodes': 2, 'transitions': 78, 'val_episodes': 2, 'val_transitions': 78}
    assert 'Dataset of cube-single-play-singletask-v0: 2 episodes, 78 transitions' in capsys.readouterr().out


def test_same_request_reuses_the_set_and_says_so(fresh_dir, capsys):
    train_path = str(fresh_dir / 'generated' / f'{FAMILY}-v0.npz')
    before = os.stat(train_path).st_mtime_ns
    assert _generate(fresh_dir / 'generated') == train_path
    assert os.stat(train_path).st_mtime_ns == before
    assert capsys.readouterr().out.startswith(f'Reusing {train_path}')


# 3. Generation survives an interrupt and continues where it stopped.


def test_interrupt_keeps_finished_episodes_and_rerun_gives_the_same_bytes(tmp_path, monkeypatch):
    from envs.generate_dataset import GenerationInterrupted

    _interrupt_after(monkeypatch, 2)
    with pytest.raises(GenerationInterrupted, match=f'interrupted after 2 of 4 episodes; {INTERRUPTED}'):
        _generate(tmp_path / 'resumed')
    assert len(glob.glob(str(tmp_path / 'resumed' / '*.partial' / 'train-*.npz'))) == 2
    assert not os.path.exists(tmp_path / 'resumed' / f'{FAMILY}-v0.npz')
    monkeypatch.undo()
    resumed = _generate(tmp_path / 'resumed')
    assert _set_bytes(resumed) == _set_bytes(_generate(tmp_path / 'uninterrupted'))
    assert sorted(os.listdir(tmp_path / 'resumed')) == [f'{FAMILY}-v0{s}' for s in ('-val.npz', '.json', '.npz')]


def test_ctrl_c_in_a_terminal_is_one_line_exit_130_and_the_rerun_continues(tmp_path):
    """SIGINT to the whole process group, as a terminal's Ctrl-C sends it, while two workers generate."""
    env = {key: value for key, value in os.environ.items() if key != 'MUJOCO_GL'}
    command = [
        sys.executable,
        '-m',
        'envs.generate_dataset',
        f'--env_name={FAMILY}',
        '--num_episodes=8',
        '--num_val_episodes=2',
        '--max_episode_steps=300',  # Long episodes: still running when the signal comes, even when idle.
        f'--dataset_dir={tmp_path / "data"}',
        '--workers=2',
    ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # As in a terminal: a test runner started in the background (nohup, CI) passes SIGINT on ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 600  # Worker start-up alone can take a minute on a loaded 2-core machine.
    while process.poll() is None and time.time() < deadline:
        if glob.glob(str(tmp_path / 'data' / 'generated' / '*.partial' / 'train-*.npz')):
            break
        time.sleep(0.02)
    assert process.poll() is None, 'generation ended before it could be interrupted'
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert 'Traceback' not in stderr and 'GLFW' not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    done, total = map(int, last.removeprefix('interrupted after ').split(' episodes')[0].split(' of '))
    assert last == f'interrupted after {done} of {total} episodes; {INTERRUPTED}' and 0 < done < total == 10

    rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f'{done} of 10 episodes are kept' in rerun.stdout
    reference = _generate(tmp_path / 'reference', num_episodes=8, num_val_episodes=2, max_episode_steps=300)
    assert _set_bytes(str(tmp_path / 'data' / 'generated' / f'{FAMILY}-v0.npz')) == _set_bytes(reference)


def test_interrupted_generation_inside_a_run_exits_130_with_one_line(tmp_path, offline, monkeypatch, capsys):
    _interrupt_after(monkeypatch, 1)
    with pytest.raises((SystemExit, KeyboardInterrupt)) as exit_:  # An escaping interrupt must not stop pytest.
        env_utils.resolve_ogbench_dataset(FAMILY, str(tmp_path), None, EPISODES, 1)
    assert isinstance(exit_.value, SystemExit) and exit_.value.code == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == f'interrupted after 1 of 4 episodes; {INTERRUPTED}'


# 4. No download attempt when a usable dataset is there.


def test_matching_generated_set_is_used_without_a_download_attempt(dataset_dir, offline, capsys, monkeypatch):
    path, provenance = env_utils.resolve_ogbench_dataset(FAMILY, str(dataset_dir), None, EPISODES, 1)
    assert offline == []
    assert path == str(dataset_dir / 'generated' / f'{FAMILY}-v0.npz')
    assert provenance['source'] == 'generated (not the official dataset)'
    out, err = capsys.readouterr()
    assert '!!!!' not in err and 'could not be downloaded' not in err
    assert out.startswith('Using the set generated in') and 'NOT the official dataset' in out
    # With no episode count asked for (gen_episodes=None), any complete set of at least the default size serves.
    monkeypatch.setattr(env_utils, 'DEFAULT_GEN_EPISODES', EPISODES)
    assert env_utils.resolve_ogbench_dataset(FAMILY, str(dataset_dir), None, None, 1)[0] == path
    assert offline == []


# 5. Wrong paths and files of the wrong kind: one message that says what the file is.


def test_dataset_dir_naming_a_file_is_a_user_error(dataset_dir, offline):
    file = str(dataset_dir / 'generated' / f'{FAMILY}-v0.npz')
    with pytest.raises(UserError, match='is a file, not a folder'):
        env_utils.resolve_ogbench_dataset(FAMILY, file, None, EPISODES, 1)


def test_generator_with_dataset_dir_naming_a_file_is_one_line_with_status_2(dataset_dir):
    file = dataset_dir / 'generated' / f'{FAMILY}-v0.npz'
    result = run_python('-m', 'envs.generate_dataset', f'--env_name={FAMILY}', f'--dataset_dir={file}', timeout=300)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith('error: ') and 'is a file, not a folder' in result.stderr
    assert 'Traceback' not in result.stderr


def _hdf5(path):
    with h5py.File(path, 'w') as file:
        for key in ('observations', 'actions', 'rewards', 'terminals', 'timeouts'):
            file.create_dataset(key, data=np.zeros((4, 2), np.float32))


def _npz(path, **arrays):
    np.savez(path, **arrays)


def _npy(path):
    with open(path, 'wb') as file:  # A handle: np.save would append '.npy' to the name.
        np.save(file, np.zeros(3))


@pytest.mark.parametrize(
    'write, expected',
    [
        (_hdf5, ['HDF5', 'D4RL']),
        (lambda path: _npz(path, **{k: np.zeros(3) for k in ('observations', 'actions', 'rewards', 'terminals')}),
         ["lacks the keys ['qpos', 'qvel']", 'D4RL-style']),
        (lambda path: _npz(path, weights=np.zeros(3)), ['not an OGBench dataset', "['weights']"]),
        (_npy, ['single NumPy array']),
        (lambda path: open(path, 'wb').close(), ['empty (0 bytes)']),
    ],
    ids=['d4rl-hdf5', 'd4rl-style-npz', 'other-npz', 'npy', 'empty'],
)  # fmt: skip
def test_file_of_the_wrong_kind_says_what_it_is(tmp_path, write, expected):
    path = str(tmp_path / f'{FAMILY}-v0.npz')
    write(path)
    with pytest.raises(UserError) as error:
        check_ogbench_file(path)
    message = str(error.value)
    assert path in message and all(words in message for words in expected), message
    if 'empty' not in expected[0]:
        assert 'delete it' not in message and 'truncated' not in message, message


def test_d4rl_file_given_for_an_ogbench_environment(tmp_path):
    path = str(tmp_path / 'antmaze-large-diverse-v2.hdf5')
    _hdf5(path)
    with pytest.raises(UserError, match='HDF5') as error:
        env_utils.make_env_and_datasets(FAMILY, dataset_path=path)
    assert 'delete it' not in str(error.value)


# 6. The report: the path of a generated file, and no third-party noise.


def test_report_of_a_generated_file_prints_the_report_alone(dataset_dir):
    path = str(dataset_dir / 'generated' / f'{FAMILY}-v0.npz')
    env = {key: value for key, value in os.environ.items() if key != 'MUJOCO_GL'}
    result = subprocess.run(
        [sys.executable, '-m', 'envs.dataset_report', path], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ''
    assert result.stdout.startswith(f'{path}: cube-single play\ngenerated locally by envs.generate_dataset')
    assert 'task5_diagonal2' in result.stdout


def test_report_of_the_folder_or_the_official_name_points_to_the_generated_file(dataset_dir):
    from envs.dataset_report import report

    generated = str(dataset_dir / 'generated' / f'{FAMILY}-v0.npz')
    with pytest.raises(UserError, match='is a folder') as error:
        report(str(dataset_dir))
    assert generated in str(error.value)
    with pytest.raises(UserError, match=f'Did you mean {generated}'):
        report(str(dataset_dir / f'{FAMILY}-v0.npz'))
