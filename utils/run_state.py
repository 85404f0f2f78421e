"""What a run's loop changes, in one object: the stacked agents and data-order keys, the step, the
online phase once it began, and the clocks of logging and saving.

The loop in `main.py` reads and advances this state; nothing else holds a copy of it, so a
reader finds every change of the training state where the loop makes it.
"""

import dataclasses
import os
import time
from typing import Any

from utils.checkpoints import checkpoint_path, save_checkpoint
from utils.fused_updates import host_seeds


@dataclasses.dataclass
class RunState:
    """The stacked (task, seed) agents and their data-order keys at `step`.

    `elapsed_before` is the training time of earlier commands (a resumed run), so the saved
    elapsed time covers the whole run. `online` is the online phase (`utils.online.Online`) from
    its first step on. `timed_save` is the step of the newest checkpoint that the clock
    (`--save_minutes`) or a stop made, the only such checkpoint kept. `called` holds the jitted
    functions (updates, validation, evaluation) called so far, and `compiled` says whether one of
    them ran for the first time, hence compiled, since the previous update.
    """

    agents: Any
    keys: Any
    step: int
    elapsed_before: float = 0.0
    online: Any = None
    started: float = dataclasses.field(default_factory=time.time)
    last_log_time: float = dataclasses.field(default_factory=time.time)
    last_log_step: int = 0
    last_save_time: float = dataclasses.field(default_factory=time.time)
    timed_save: int | None = None
    called: set = dataclasses.field(default_factory=set)
    compiled: bool = False

    def __post_init__(self):
        self.last_log_step = self.step

    def elapsed(self):
        """Seconds of training in this run, earlier commands included."""
        return self.elapsed_before + time.time() - self.started

    def speed(self):
        """Steps per second since the previous call (or the start); restarts that clock."""
        now = time.time()
        steps_per_second = (self.step - self.last_log_step) / max(now - self.last_log_time, 1e-9)
        self.last_log_time, self.last_log_step = now, self.step
        return steps_per_second

    def note_call(self, fn):
        """Remembers a call of `fn`; its first call in this process compiles it."""
        if fn not in self.called:
            self.called.add(fn)
            self.compiled = True

    def timed_update(self):
        """Whether the update just made ran at training speed: nothing compiled since the previous
        update (so the progress display's speed and time left leave compilation out)."""
        timed, self.compiled = not self.compiled, False
        return timed

    def seconds_since_save(self):
        return time.time() - self.last_save_time

    def save(self, run_dirs, kept=True):
        """Writes checkpoint_<step> of agent i (and its online state) into `run_dirs[i]`. A checkpoint
        not `kept` (made by the clock or a stop, not by --save_interval or a phase's end) replaces
        the previous such one, so clock-made checkpoints do not pile up."""
        online_states = self.online.states() if self.online is not None else [None] * len(run_dirs)
        seeds = zip(run_dirs, host_seeds(self.agents), host_seeds(self.keys), online_states, strict=True)
        for run_dir, agent, key, online_state in seeds:
            save_checkpoint(run_dir, self.step, agent, key, self.elapsed(), online_state)
        self.last_save_time = time.time()
        if self.timed_save is not None:
            for run_dir in run_dirs:
                os.remove(checkpoint_path(run_dir, self.timed_save))
        self.timed_save = None if kept else self.step
