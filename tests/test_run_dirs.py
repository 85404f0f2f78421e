"""A run refused before training leaves no run directory behind, and never touches one that existed."""

import json

import pytest

from utils.errors import UserError
from utils.run_dir import check_or_write_record, locked_run_dirs, write_json


def refused_run(paths, write=('flags.json',)):
    """What main.run does with a run refused after its directories were made (e.g. a bad dataset)."""
    with pytest.raises(UserError, match='refused'):
        with locked_run_dirs([str(path) for path in paths]):
            for path in paths:
                for name in write:
                    write_json(str(path / name), {'seed': 0})
            raise UserError('refused')


def test_new_run_directories_and_the_folders_made_for_them_are_removed(tmp_path):
    group = tmp_path / 'exp' / 'Debug'
    refused_run(
        [group / 'drol_cube-single-play_sd0', group / 'drol_cube-single-play_sd1'], ('flags.json', 'dataset.json')
    )
    assert list(tmp_path.iterdir()) == []


def test_existing_directories_and_their_files_are_kept(tmp_path):
    group = tmp_path / 'Debug'
    resumed = group / 'drol_cube-single-play_sd0'
    resumed.mkdir(parents=True)
    (resumed / 'flags.json').write_text(json.dumps({'seed': 0}))
    refused_run([resumed, group / 'drol_cube-single-play_sd1'], write=())
    assert sorted(p.name for p in group.iterdir()) == ['drol_cube-single-play_sd0']
    assert sorted(p.name for p in resumed.iterdir()) == ['flags.json', 'run.lock']


def test_a_new_directory_holding_other_files_is_kept(tmp_path):
    run_dir = tmp_path / 'Debug' / 'drol_cube-single-play_sd0'
    refused_run([run_dir], write=('flags.json', 'checkpoint_0.msgpack'))
    assert sorted(p.name for p in run_dir.iterdir()) == ['checkpoint_0.msgpack', 'flags.json', 'run.lock']


def test_a_run_that_starts_keeps_its_directory_and_lock(tmp_path):
    run_dir = tmp_path / 'Debug' / 'drol_cube-single-play_sd0'
    with locked_run_dirs([str(run_dir)]) as locks:
        pass
    assert (run_dir / 'run.lock').exists() and not locks[0].closed


def test_a_record_made_before_a_flag_existed_continues_with_its_default(tmp_path):
    """flags.json from before --precision existed: the run was made with the default, so continuing
    with it is allowed; another value is refused like any other change to the computation."""
    write_json(str(tmp_path / 'flags.json'), {'seed': 0})
    defaults = {'seed': 0, 'precision': 'default'}
    check_or_write_record(str(tmp_path), {'seed': 0, 'precision': 'default'}, True, defaults)
    with pytest.raises(UserError, match="--precision: 'default' -> 'highest'"):
        check_or_write_record(str(tmp_path), {'seed': 0, 'precision': 'highest'}, True, defaults)
    assert json.loads((tmp_path / 'flags.json').read_text()) == {'seed': 0}
