"""The one exception type for mistakes a user can fix (bad flags, names or dataset files).

Entry points wrap their `main` in `exit_on_user_error`, which prints the message without a
traceback and exits with status 2, so a wrong flag never looks like a crash in the project.
"""

import difflib
import functools
import os
import sys


class UserError(Exception):
    """Bad input from the user; the message alone must say what is wrong and how to fix it."""


def closest(name, choices):
    """' Did you mean a, b?' for the choices that look like `name`, else ''."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    return f' Did you mean {", ".join(close)}?' if close else ''


def exit_on_user_error(function):
    """Runs `function`; a `UserError` becomes one line on stderr and exit status 2."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except UserError as error:
            print(f'error: {error}', file=sys.stderr)
            sys.exit(2)

    return wrapper


def run_app(main, prepare_argv=None):
    """absl's `app.run(main)` with the project's conventions for every entry point: `--help` exits 0
    (absl ends it with status 1), a malformed flag or a `UserError` (also one raised by
    `prepare_argv(argv) -> argv`, run before parsing) is one line on stderr with status 2, and
    third-party chatter is kept out of the output unless `--verbosity` asks for it; output piped into
    a reader that stops early (`| head`) ends quietly."""
    from absl import app, flags

    from utils.quiet_output import quiet_third_party_output

    @exit_on_user_error
    def parse_flags(argv):
        if prepare_argv is not None:
            argv = prepare_argv(argv)
        try:
            return flags.FLAGS(argv)
        except SystemExit as done:  # Raised while parsing only by absl's --help, --helpshort, --helpfull.
            sys.exit(0 if done.code == 1 else done.code)
        except flags.Error as error:
            raise UserError(str(error)) from None

    def quiet_main(argv):
        if not flags.FLAGS['verbosity'].present:
            quiet_third_party_output()
        try:
            return main(argv)
        except BrokenPipeError:  # Output piped into `head` or a pager that closed: stop quietly.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's recipe: no error at exit.
            sys.exit(1)

    app.run(exit_on_user_error(quiet_main), flags_parser=parse_flags)
