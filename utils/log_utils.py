"""CSV logs that survive restarts, and optional Weights & Biases."""

import csv
import os
import sys
import time

from utils.errors import UserError


class CsvLogger:
    """Appends one row per call; the header is the union of keys in first-seen order.

    On resume, `truncate_after(step)` drops rows logged after the restored checkpoint, so
    the continued log has neither duplicated nor missing steps. A row torn by a crash is
    dropped with a warning; a file that is not this kind of log is set aside, not overwritten.
    Each write replaces the file atomically; a write error names the file and leaves no
    temporary file behind.
    """

    def __init__(self, path):
        self.path = path
        self.rows = read_log(path) if os.path.exists(path) else []

    def truncate_after(self, step):
        self.rows = [row for row in self.rows if int(float(row['step'])) <= step]
        self._write()

    def log(self, row, step):
        self.rows.append({'step': step, **{k: _plain(v) for k, v in row.items()}})
        self._write()

    def _write(self):
        fields = []
        for row in self.rows:
            fields.extend(k for k in row if k not in fields)
        tmp_path = f'{self.path}.tmp'
        try:
            with open(tmp_path, 'w', newline='') as f:
                writer = csv.DictWriter(f, fieldnames=fields)
                writer.writeheader()
                writer.writerows(self.rows)
            os.replace(tmp_path, self.path)
        except OSError as error:
            if os.path.exists(tmp_path):
                os.remove(tmp_path)
            raise UserError(f'Could not write {self.path}: {error.strerror or error}.') from error


def read_log(path):
    """The rows of a CSV log written by `CsvLogger`, without torn rows; a foreign file is moved aside."""
    try:
        with open(path, newline='') as f:
            reader = csv.DictReader(f)
            header, rows = reader.fieldnames or [], list(reader)
    except (OSError, csv.Error, UnicodeDecodeError) as error:
        header, rows = [], []
        print(f'warning: cannot read {path} ({error}).', file=sys.stderr)
    if 'step' not in header:
        aside = f'{path}.unreadable-{int(time.time())}'
        os.replace(path, aside)
        print(f'warning: {path} is not a training log (no step column); moved it to {aside}.', file=sys.stderr)
        return []
    good = [row for row in rows if _is_complete(row, header)]
    if len(good) < len(rows):
        print(f'warning: dropped {len(rows) - len(good)} torn row(s) of {path}.', file=sys.stderr)
    return good


def _is_complete(row, header):
    if None in row or any(row.get(key) is None for key in header):
        return False
    try:
        float(row['step'])
    except ValueError:
        return False
    return True


def _plain(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


class WandbLogger:
    """Mirrors logs to Weights & Biases; imported only when asked for, so wandb stays optional."""

    def __init__(self, mode, project, group, name, config):
        try:
            import wandb
        except ImportError as error:
            raise UserError(f'--wandb_mode={mode} needs wandb: pip install wandb') from error
        self.run = wandb.init(project=project, group=group, name=name, config=config, mode=mode)

    def log(self, row, step):
        self.run.log({k: _plain(v) for k, v in row.items()}, step=step)

    def finish(self):
        self.run.finish()
