"""Atomic, verified checkpoints of the full training state (agent, data-order key, step, and in the
online phase its replay buffer, acting key and environment episode).

The state is serialised with flax's msgpack, written to a temporary file in the same
folder, flushed to disk and renamed over the final name, so a run killed mid-save keeps
the previous checkpoint intact. Each checkpoint also carries a small JSON record (agent
name, settings, elapsed seconds), so that loading can say what differs when a checkpoint
belongs to another agent or another network shape, instead of failing deep in msgpack.
"""

import glob
import json
import os
import re
import sys

import flax.serialization
import jax
import numpy as np
from flax import traverse_util

from utils.errors import UserError

PATTERN = re.compile(r'checkpoint_(\d+)\.msgpack$')
# Settings that decide the parameter shapes: named when a checkpoint's differ from the run's.
SHAPE_KEYS = ('agent_name', 'actor_hidden_dims', 'value_hidden_dims', 'action_dim', 'layer_norm', 'actor_layer_norm')


class CheckpointDamaged(Exception):
    """A checkpoint file that cannot be read back (truncated, garbage, wrong structure)."""

    def __init__(self, path, reason):
        super().__init__(f'{path} {reason}')
        self.path = path


def checkpoint_path(run_dir, step):
    return os.path.join(run_dir, f'checkpoint_{step}.msgpack')


def save_checkpoint(run_dir, step, agent, data_key, elapsed=0.0, online=None):
    """Writes checkpoint_<step>.msgpack atomically; returns its path. A full disk or another write
    error is one message that names the folder; earlier checkpoints and no temporary file remain.

    `online` (the online phase's state of one seed, `utils.online.Online.states`) goes into the same file, so
    the agent and the buffer it learned from are saved together or not at all."""
    record = {'agent_name': agent.config.get('agent_name'), 'config': dict(agent.config), 'elapsed': elapsed}
    if online is not None:  # The step where the online phase began: a resumed run must keep it.
        record['online_from'] = online['first_step']
    state = {
        'agent': agent,
        'data_key': np.asarray(data_key),
        'step': step,
        'record': json.dumps(record, default=str, sort_keys=True),
    }
    if online is not None:
        state['online'] = online
    payload = flax.serialization.to_bytes(jax.device_get(state))
    path = checkpoint_path(run_dir, step)
    tmp_path = f'{path}.tmp'
    try:
        with open(tmp_path, 'wb') as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except OSError as error:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise UserError(
            f'Could not write checkpoint {path}: {error.strerror or error}. Earlier checkpoints in {run_dir} '
            'are kept; free some space (or choose another --save_dir) and rerun the same command to continue.'
        ) from error
    return path


def checkpoint_steps(run_dir):
    """Steps of the checkpoint files in `run_dir`, newest first."""
    steps = []
    for path in glob.glob(os.path.join(run_dir, 'checkpoint_*.msgpack')):
        match = PATTERN.search(path)
        if match:
            steps.append(int(match.group(1)))
    return sorted(steps, reverse=True)


def latest_checkpoint(run_dir):
    """(step, path) of the newest checkpoint in `run_dir`, or None."""
    steps = checkpoint_steps(run_dir)
    return (steps[0], checkpoint_path(run_dir, steps[0])) if steps else None


def remove_checkpoints(run_dir):
    """Deletes a run's checkpoints (`--noresume`), so none of the old run can be resumed by mistake."""
    for path in glob.glob(os.path.join(run_dir, 'checkpoint_*.msgpack*')):
        os.remove(path)


def load_checkpoint(path, agent_template, data_key_template):
    """(agent, data_key, step, record) from `path`, shaped like the templates.

    Raises `CheckpointDamaged` for a file that cannot be read back, and a `UserError` that says
    what differs for a readable checkpoint of another agent or another network shape.
    """
    try:
        with open(path, 'rb') as f:
            raw = flax.serialization.msgpack_restore(f.read())
    except Exception as error:  # msgpack raises several types (ValueError, ExtraData, ...).
        raise CheckpointDamaged(path, f'cannot be read ({type(error).__name__}: {error})') from error
    if not isinstance(raw, dict) or 'agent' not in raw or 'step' not in raw:
        raise CheckpointDamaged(path, 'does not hold a training state')
    record = json.loads(raw.get('record') or '{}')
    check_same_agent(path, record.get('config', {}), dict(agent_template.config))
    template = {'agent': agent_template, 'data_key': np.asarray(data_key_template), 'step': 0}
    check_same_shapes(path, flax.serialization.to_state_dict(template), raw)
    state = flax.serialization.from_state_dict(template, {key: raw[key] for key in template})
    return state['agent'], state['data_key'], int(state['step']), record


def load_online_state(path, device_template):
    """The `online` state saved with checkpoint `path` (its device part shaped like `device_template`),
    or None for a checkpoint of the offline phase. Read apart from `load_checkpoint`, which offline
    runs use alone; the file was already verified by it."""
    with open(path, 'rb') as f:
        raw = flax.serialization.msgpack_restore(f.read())
    if 'online' not in raw:
        return None
    template = {'online': flax.serialization.to_state_dict(jax.device_get(device_template))}
    check_same_shapes(path, template, {'online': raw['online']['device']})
    device = flax.serialization.from_state_dict(device_template, raw['online']['device'])
    return {'device': device, 'host': raw['online']['host']}


def check_same_agent(path, stored, wanted):
    """A UserError naming the settings that decide parameter shapes when they differ."""
    differences = [
        f'{key} {stored[key]!r} (this run: {wanted.get(key)!r})'
        for key in SHAPE_KEYS
        if key in stored and json.dumps(stored[key], default=str) != json.dumps(wanted.get(key), default=str)
    ]
    if differences:
        raise UserError(f'Checkpoint {path} does not fit this run: it has {"; ".join(differences)}.')


def check_same_shapes(path, template_state, raw):
    """A UserError naming missing, extra or differently shaped arrays (checkpoints made before the
    record existed, or by a changed agent)."""
    expected = traverse_util.flatten_dict(template_state, sep='/')
    found = traverse_util.flatten_dict({key: raw[key] for key in template_state if key in raw}, sep='/')
    problems = [f'missing {key}' for key in expected if key not in found]
    problems += [f'unexpected {key}' for key in found if key not in expected]
    problems += [
        f'{key} has shape {np.shape(found[key])}, expected {np.shape(value)}'
        for key, value in expected.items()
        if key in found and np.shape(found[key]) != np.shape(value)
    ]
    if problems:
        shown = '; '.join(problems[:4]) + (f'; and {len(problems) - 4} more' if len(problems) > 4 else '')
        raise UserError(f'Checkpoint {path} does not fit this agent: {shown}.')


def load_common_step(run_dirs, agent_templates, data_key_templates):
    """[(agent, data_key, step, record)] per run directory, all from the newest checkpoint step that
    every directory has intact, or None when none has a checkpoint. A damaged file is renamed
    `*.damaged`, named in a warning, and an older step is tried."""
    steps = [set(checkpoint_steps(run_dir)) for run_dir in run_dirs]
    if not any(steps):
        return None
    if not all(steps):
        have = [d for d, s in zip(run_dirs, steps, strict=True) if s]
        missing = [d for d, s in zip(run_dirs, steps, strict=True) if not s]
        raise UserError(
            f'{", ".join(have)} have checkpoints but {", ".join(missing)} have none, so these runs cannot '
            'continue together: run the new seeds or tasks separately (--seed, --num_seeds, --tasks), '
            'or use --noresume.'
        )
    for step in sorted(set.intersection(*steps), reverse=True):
        try:
            return [
                load_checkpoint(checkpoint_path(run_dir, step), agent, key)
                for run_dir, agent, key in zip(run_dirs, agent_templates, data_key_templates, strict=True)
            ]
        except CheckpointDamaged as error:
            os.replace(error.path, f'{error.path}.damaged')
            print(
                f'warning: checkpoint {error}; kept it as {error.path}.damaged, trying an older one.', file=sys.stderr
            )
    raise UserError(f'No checkpoint step is intact in every one of {", ".join(run_dirs)}; use --noresume.')


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
    try:
        return load_checkpoint(path, agent_template, data_key_template)[0]
    except CheckpointDamaged as error:
        raise UserError(f'Checkpoint {error}; choose another --restore_epoch.') from error
