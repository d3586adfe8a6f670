"""Errors a user can cause. The CLI prints them as one line (no traceback) and exits non-zero."""


class UserError(Exception):
    """Something the user can fix: the message names the thing and the fix."""

    exit_code = 2


class MissingWeightsError(UserError):
    """A model file needed to run offline is not where we look for it."""
