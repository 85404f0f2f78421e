"""Run directories: naming, write checks, and the JSON records saved beside the logs."""

import json
import os

from utils.errors import UserError


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


def write_json(path, payload):
    tmp_path = f'{path}.tmp'
    with open(tmp_path, 'w') as f:
        json.dump(payload, f, indent=2, sort_keys=True, default=str)
    os.replace(tmp_path, path)
