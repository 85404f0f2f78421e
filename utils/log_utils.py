"""CSV logs that survive restarts, and optional Weights & Biases."""

import csv
import os


class CsvLogger:
    """Appends one row per call; the header is the union of keys in first-seen order.

    On resume, `truncate_after(step)` drops rows logged after the restored checkpoint, so
    the continued log has neither duplicated nor missing steps.
    """

    def __init__(self, path):
        self.path = path
        self.rows = []
        if os.path.exists(path):
            with open(path, newline='') as f:
                self.rows = list(csv.DictReader(f))

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
        with open(tmp_path, 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp_path, self.path)


def _plain(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


class WandbLogger:
    """Mirrors logs to Weights & Biases; imported only when asked for, so wandb stays optional."""

    def __init__(self, mode, project, group, name, config):
        from utils.errors import UserError

        try:
            import wandb
        except ImportError as error:
            raise UserError(f'--wandb_mode={mode} needs wandb: pip install wandb') from error
        self.run = wandb.init(project=project, group=group, name=name, config=config, mode=mode)

    def log(self, row, step):
        self.run.log({k: _plain(v) for k, v in row.items()}, step=step)

    def finish(self):
        self.run.finish()
