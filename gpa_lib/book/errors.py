class BookError(Exception):
    """A pipeline failure with a one-line, user-facing message (the CLI prints it and exits non-zero)."""
