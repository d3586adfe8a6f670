"""Errors a user can cause. The CLI prints them as one line (no traceback) and exits non-zero."""


class UserError(Exception):
    """Something the user can fix: the message names the thing and the fix."""

    exit_code = 2
    # set where every torchrun process raises the same error and another one prints it: this one waits for that
    # one to end (torchrun then stops this one) instead of printing the line once more (cli.common.one_line_errors)
    said_elsewhere = False
    # set where the step took a SIGTERM before this error (its Terminated swallowed, or replaced by this error in
    # its clean-up: cli.common.sigterm_interrupts): the line said, the process ends by SIGTERM, not with exit_code
    after_sigterm = False


class MissingWeightsError(UserError):
    """A model file needed to run offline is not where we look for it."""
