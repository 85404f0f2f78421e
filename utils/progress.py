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
        self.started = self.last_line = None
        self.start_step = initial
        self.estimated = False

    def update(self, steps):
        """Counts `steps` more. The first call starts the clock, so compilation does not skew the speed."""
        now = time.time()
        self.step += steps
        self.bar.update(steps)
        if self.started is None:
            self.started, self.last_line, self.start_step = now, now, self.step
            return
        rate = (self.step - self.start_step) / max(now - self.started, 1e-9)
        left = (self.total - self.step) / max(rate, 1e-9)
        enough = self.step - self.start_step >= max(self.total // 100, 1) and now - self.started >= 20
        if not self.enabled:
            return
        if not self.estimated and enough:
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
