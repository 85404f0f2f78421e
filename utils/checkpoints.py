"""Atomic checkpoints of the full training state (agent, data-order key, step).

The state is serialised with flax's msgpack, written to a temporary file in the same
folder, flushed to disk and renamed over the final name, so a run killed mid-save keeps
the previous checkpoint intact.
"""

import glob
import os
import re

import flax.serialization
import jax
import numpy as np

from utils.errors import UserError

PATTERN = re.compile(r'checkpoint_(\d+)\.msgpack$')


def checkpoint_path(run_dir, step):
    return os.path.join(run_dir, f'checkpoint_{step}.msgpack')


def save_checkpoint(run_dir, step, agent, data_key):
    """Writes checkpoint_<step>.msgpack atomically; returns its path."""
    state = {'agent': agent, 'data_key': np.asarray(data_key), 'step': step}
    payload = flax.serialization.to_bytes(jax.device_get(state))
    path = checkpoint_path(run_dir, step)
    tmp_path = f'{path}.tmp'
    with open(tmp_path, 'wb') as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp_path, path)
    return path


def latest_checkpoint(run_dir):
    """(step, path) of the newest checkpoint in `run_dir`, or None."""
    found = []
    for path in glob.glob(os.path.join(run_dir, 'checkpoint_*.msgpack')):
        match = PATTERN.search(path)
        if match:
            found.append((int(match.group(1)), path))
    return max(found) if found else None


def remove_checkpoints(run_dir):
    """Deletes a run's checkpoints (`--noresume`), so none of the old run can be resumed by mistake."""
    for path in glob.glob(os.path.join(run_dir, 'checkpoint_*.msgpack')):
        os.remove(path)


def load_checkpoint(path, agent_template, data_key_template):
    """(agent, data_key, step) from `path`, shaped like the templates."""
    with open(path, 'rb') as f:
        payload = f.read()
    template = {'agent': agent_template, 'data_key': np.asarray(data_key_template), 'step': 0}
    state = flax.serialization.from_bytes(template, payload)
    return state['agent'], state['data_key'], int(state['step'])


def restore_from(restore_path, restore_epoch, agent_template, data_key_template):
    """The agent stored in another run's checkpoint (`--restore_path`, `--restore_epoch`; latest by default)."""
    if restore_epoch is None:
        found = latest_checkpoint(restore_path)
        if found is None:
            raise UserError(f'No checkpoint in --restore_path={restore_path}.')
        path = found[1]
    else:
        path = checkpoint_path(restore_path, restore_epoch)
    if not os.path.exists(path):
        raise UserError(f'No checkpoint {path} (check --restore_path and --restore_epoch).')
    return load_checkpoint(path, agent_template, data_key_template)[0]
