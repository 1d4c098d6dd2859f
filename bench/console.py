"""Printing to a terminal or a pipe that may close: ``python -m bench run ... | head`` must not
stop a benchmark, and ``python -m bench list | head`` must not end in a traceback."""

import os
import sys


def say(text: str = "", out=None) -> None:
    """Print one line; once the reader has gone, later lines go nowhere and the work goes on."""
    out = out or sys.stdout
    try:
        print(text, file=out, flush=True)
    except BrokenPipeError:
        silence(out)


def silence(out=None) -> None:
    """Point ``out`` (a stream with a file descriptor) at /dev/null, so that the interpreter's
    last flush at exit does not fail on the closed pipe again."""
    out = out or sys.stdout
    try:
        descriptor = out.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not backed by a file: nothing to redirect
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, descriptor)
    os.close(devnull)
