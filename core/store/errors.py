"""The one error type users see."""


class SieveError(ValueError):
    """A user-facing error: one line that names the file, column or parameter."""
