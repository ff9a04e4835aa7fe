"""Errors caused by the user's input or environment.

The command line prints these as one clear message (no traceback) and exits with status 2;
anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Base class of every error a user can fix: bad data, config, files, disk."""


class DataWarning(UserWarning):
    """A problem in the user's data that the pipeline works around with a defined fallback
    (e.g. a truncated image decoded as far as it goes). The CLI prints it as one `warning:` line."""
