"""Errors the command line reports as one line, never as a traceback."""


class UsageError(Exception):
    """Bad input from the user (config, names, paths): one line on stderr, exit status 2."""
