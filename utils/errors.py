"""The one exception type for mistakes a user can fix (bad flags, names or dataset files).

`main.py` and the command-line tools catch it and print its message without a traceback,
then exit with status 2, so a wrong flag never looks like a crash in the project.
"""


class UserError(Exception):
    """Bad input from the user; the message alone must say what is wrong and how to fix it."""
