"""The one kind of error a user sees: a single line naming the problem and the fix."""


class UserError(Exception):
    """Raised for bad input; the CLI prints the message alone and exits non-zero."""
