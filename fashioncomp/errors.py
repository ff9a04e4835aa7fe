"""Errors caused by the user's input or environment.

The command line prints these as one clear message (no traceback) and exits with status 2;
anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Base class of every error a user can fix: bad data, config, files, disk."""
