"""Errors that reach the user as one line, never as a traceback."""


class InputError(ValueError):
    """Bad input from the user: a shape, a value, a file. The message names the problem."""
