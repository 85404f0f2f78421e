"""Ctrl-C and SIGTERM as a request to stop cleanly: the training loop saves the current step and
exits with one line (status 130 or 143) instead of a traceback. A second signal exits at once."""

import os
import signal
import sys

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class StopRequested(Exception):
    """Raised by the training loop after it saved the step at which a stop signal arrived."""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


class StopSignals:
    def __init__(self):
        self.received = None
        self.previous = {}

    def __enter__(self):
        for signum in EXIT_CODES:
            self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.received is not None:
            print(f'\n{name} again: exiting now without saving.', file=sys.stderr, flush=True)
            os._exit(EXIT_CODES[signum])
        self.received = signum
        print(f'\n{name}: saving the current step, then exiting (send it again to exit at once).', file=sys.stderr)

    @property
    def exit_code(self):
        return EXIT_CODES[self.received]

    @property
    def name(self):
        return signal.Signals(self.received).name
