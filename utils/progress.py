"""Progress a person sees wherever the output goes: a labelled bar in a terminal, and one line at
least every minute (with speed and time left) when the output is a file or a pipe."""

import sys
import time

import tqdm


def duration(seconds):
    """'2 h 05 min', '7 min 30 s' or '45 s'."""
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f'{hours} h {minutes:02d} min'
    return f'{minutes} min {secs:02d} s' if minutes else f'{secs} s'


class Progress:
    """Counts `unit`s from `initial` to `total`; `enabled=False` makes it silent."""

    def __init__(self, label, total, initial, line_every_s=60.0, unit='step', enabled=True):
        self.label, self.total, self.step, self.unit, self.enabled = label, total, initial, unit, enabled
        self.terminal = sys.stderr.isatty()
        self.bar = tqdm.tqdm(
            total=total,
            initial=initial,
            desc=label,
            unit=unit,
            smoothing=0.1,
            dynamic_ncols=True,
            disable=not (enabled and self.terminal),
        )
        self.line_every_s = line_every_s
        self.last_update = self.last_line = None
        self.timed_steps, self.timed_seconds = 0, 0.0
        self.estimated = False

    def update(self, steps, timed=True):
        """Counts `steps` more. Speed and time left come from the timed calls since the last untimed
        one: pass `timed=False` for a call that compiled or that follows one-off work (the first
        evaluation), so the speed is measured afresh from there, as in a new phase (the online
        phase steps far slower than fused offline updates). The first call only starts the clock."""
        now = time.time()
        self.step += steps
        self.bar.update(steps)
        if not timed:
            self.timed_steps, self.timed_seconds = 0, 0.0
        elif self.last_update is not None:
            self.timed_steps += steps
            self.timed_seconds += now - self.last_update
        self.last_update = now
        self.last_line = self.last_line or now
        if not self.enabled or not self.timed_steps:
            return
        rate = self.timed_steps / max(self.timed_seconds, 1e-9)
        left = (self.total - self.step) / max(rate, 1e-9)
        if not self.estimated and self.timed_steps >= max(self.total // 100, 1) and self.timed_seconds >= 20:
            self.estimated = True
            self.write(f'{self.label}: {rate:.1f} {self.unit}s/s, about {duration(left)} to go.')
        if not self.terminal and now - self.last_line >= self.line_every_s:
            self.last_line = now
            percent = 100 * self.step / max(self.total, 1)
            print(
                f'{self.label}: {self.unit} {self.step}/{self.total} ({percent:.0f}%), {rate:.1f} {self.unit}s/s, '
                f'{duration(left)} left',
                flush=True,
            )

    def write(self, message):
        tqdm.tqdm.write(message)
        sys.stdout.flush()

    def close(self):
        self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
