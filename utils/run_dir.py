"""Run directories: naming, write checks, the lock, and the run's record (flags.json).

A run directory is a record that is never silently rewritten. Its first `flags.json` stays;
a later command in the same directory is compared with it: a change that alters the
computation is refused with one message naming the differences, and an allowed change
(more steps, other intervals, more evaluation episodes...) is appended to `resumes.jsonl`.
"""

import contextlib
import fcntl
import json
import os
import time

from utils.errors import UserError

# Flags that may change between the segments of one run: they decide how long it runs and what
# it reports, not what it computes.
CHANGEABLE_FLAGS = (
    'offline_steps',
    'log_interval',
    'eval_interval',
    'save_interval',
    'save_minutes',
    'eval_episodes',
    'eval_workers',
    'video_episodes',
    'updates_per_call',
    'num_seeds',
    'resume',
    'restore_path',
    'restore_epoch',
    'wandb_mode',
    'wandb_project',
    'dataset_dir',
    'run_group',
    'save_dir',
)


# What a run writes into its directory before training starts.
START_FILES = ('run.lock', 'flags.json', 'dataset.json')


def run_dir_for(save_dir, run_group, agent_name, env_name, seed):
    """A deterministic directory, so rerunning the same command finds (and resumes) the same run."""
    return os.path.join(os.path.expanduser(save_dir), run_group, f'{agent_name}_{env_name}_sd{seed}')


def prepare_run_dir(path):
    """Creates `path` and proves it is writable, or says why it is not."""
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, '.write_test')
        with open(probe, 'w') as f:
            f.write('ok')
        os.remove(probe)
    except OSError as error:
        raise UserError(
            f'Cannot write to the run directory {path}: {error.strerror or error}. Choose another --save_dir.'
        ) from error
    return path


def lock_run_dir(path):
    """Holds an exclusive lock on `path` for the life of the process (the returned file must stay open),
    so a second process in the same run directory stops with one message instead of racing."""
    handle = open(os.path.join(path, 'run.lock'), 'a+')
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or 'another process'
        handle.close()
        raise UserError(
            f'Run directory {path} is in use by {owner}. Wait for it to finish, or use another --run_group.'
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f'process {os.getpid()}')
    handle.flush()
    return handle


@contextlib.contextmanager
def locked_run_dirs(paths):
    """Creates (where needed) and locks each run directory for the block that prepares the run;
    yields the locks, which the caller holds until the process ends.

    A run refused in the block (a bad dataset, a missing extra, a checkpoint of another agent)
    leaves nothing behind: each directory this call created and locked, and each folder above it
    that it created, is removed again when it holds nothing but the files a run writes at its start.
    A directory that existed before is never touched."""
    new_folders = [folder for path in paths for folder in missing_folders(path)]
    locks, locked = [], []
    try:
        for path in paths:
            locks.append(lock_run_dir(prepare_run_dir(path)))
            locked.append(path)
        yield locks
    except BaseException:
        for path in locked:
            if path in new_folders and set(os.listdir(path)) <= set(START_FILES):
                for name in os.listdir(path):
                    os.remove(os.path.join(path, name))
        for lock in locks:
            lock.close()
        for folder in sorted(set(new_folders), key=len, reverse=True):  # Deepest first.
            with contextlib.suppress(OSError):  # Not empty: something else is in it.
                os.rmdir(folder)
        raise


def missing_folders(path):
    """`path` and the folders above it that do not exist yet."""
    missing = []
    while path and not os.path.exists(path):
        missing.append(path)
        path = os.path.dirname(path)
    return missing


def plain(value):
    """`value` as it reads back from JSON (tuples become lists), for comparisons with a stored record."""
    return json.loads(json.dumps(value, default=str))


def record_differences(old, new, defaults=None):
    """(refused, allowed): 'key: old -> new' lines for the settings that differ between two records.
    A flag the old record lacks (added to the project after the run began) counts as its default."""
    defaults = defaults or {}
    refused, allowed = [], []
    for key in sorted(set(old) | set(new)):
        if key in ('agent', 'preset_applied'):
            continue
        old_value = old[key] if key in old else defaults.get(key)
        if plain(old_value) != plain(new.get(key)):
            line = f'--{key}: {old_value!r} -> {new.get(key)!r}'
            (allowed if key in CHANGEABLE_FLAGS else refused).append(line)
    old_agent, new_agent = old.get('agent', {}), new.get('agent', {})
    for key in sorted(set(old_agent) | set(new_agent)):
        if plain(old_agent.get(key)) != plain(new_agent.get(key)):
            refused.append(f'--agent.{key}: {old_agent.get(key)!r} -> {new_agent.get(key)!r}')
    return refused, allowed


def check_or_write_record(run_dir, record, resumes, defaults=None):
    """Writes `flags.json` for a new run; for an existing one, refuses computation changes and
    appends allowed ones to `resumes.jsonl` (when `resumes`, i.e. the run continues). `defaults`:
    each flag's default, what a record made before the flag existed ran with."""
    path = os.path.join(run_dir, 'flags.json')
    if not os.path.exists(path) or not resumes:
        write_json(path, record)
        return
    try:
        with open(path) as f:
            old = json.load(f)
    except (OSError, ValueError) as error:
        raise UserError(f'{path} cannot be read ({error}); move the run directory away or use --noresume.') from error
    refused, allowed = record_differences(old, record, defaults)
    if refused:
        raise UserError(
            f'{run_dir} was made with other settings, which this command would change:\n  '
            + '\n  '.join(refused)
            + '\nUse the original settings to continue it, another --run_group for a new run, '
            'or --noresume to start this one over.'
        )
    if allowed:
        entry = {'time': time.strftime('%Y-%m-%d %H:%M:%S'), 'changes': allowed}
        with open(os.path.join(run_dir, 'resumes.jsonl'), 'a') as f:
            f.write(json.dumps(entry) + '\n')


def write_json(path, payload):
    tmp_path = f'{path}.tmp'
    try:
        with open(tmp_path, 'w') as f:
            json.dump(payload, f, indent=2, sort_keys=True, default=str)
        os.replace(tmp_path, path)
    except OSError as error:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise UserError(f'Could not write {path}: {error.strerror or error}.') from error
