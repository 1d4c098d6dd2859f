"""Errors the command line reports as one line, never as a traceback, and the one rule that
reduces any exception to such a line; the exit statuses of every command, and how a command
stops on Ctrl-C or SIGTERM.

Exit statuses (``python -m bench``): 0 done; 1 the gate or compare found a regression; 2 bad input,
refused in one line before any work; 3 a benchmark measured nothing it planned; 130 Ctrl-C;
143 SIGTERM.
"""

import contextlib
import re
import signal
import traceback

GATE_FAILED = 1  # check found a regression, compare --fail-slower a slowdown
BAD_INPUT = 2  # a UsageError: one line on stderr, nothing written
NOTHING_MEASURED = 3  # no planned run measured its recipe (as pytest exits 5 for no tests)
INTERRUPTED = 130  # the shell's status for a process ended by Ctrl-C
TERMINATED = 143  # ... and by SIGTERM
QUOTED_LENGTH = 80  # characters of a value an error message quotes: a line stays a line

# Lines Keras 3 wraps around a layer's real error message.
_WRAPPER_LINES = (
    "Exception encountered when calling",
    "Could not automatically infer the output shape",
)
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# tf.function re-raises errors from converted code with the traced frames before the message.
_AUTOGRAPH_HEADER = "in user code:"
_EXCEPTION_PREFIX = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception): ")


class UsageError(Exception):
    """Bad input from the user (config, names, paths): one line on stderr, exit status 2."""


class Terminated(Exception):
    """SIGTERM, as an exception, so that it stops a command the way Ctrl-C does."""


def quoted(value) -> str:
    """``repr(value)``, cut to about ``QUOTED_LENGTH`` characters: an error that quotes a
    megabyte-long value is still one readable line."""
    try:
        text = repr(value)
    except ValueError:  # an integer of more digits than Python converts to text
        return f"(a {type(value).__name__} too long to show)"
    if len(text) <= QUOTED_LENGTH:
        return text
    return f"{text[: QUOTED_LENGTH - 3]}... ({len(text):,} characters)"


@contextlib.contextmanager
def sigterm_raises():
    """Within: SIGTERM raises ``Terminated`` in the main thread, as Ctrl-C raises
    KeyboardInterrupt, so that cleanups run and the command can say where it stopped."""

    def raise_terminated(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def stop_status(stop: BaseException) -> int:
    """The exit status of a command stopped by ``stop``: Ctrl-C's or SIGTERM's."""
    return TERMINATED if isinstance(stop, Terminated) else INTERRUPTED


def stop_word(stop: BaseException) -> str:
    return "terminated" if isinstance(stop, Terminated) else "interrupted"


def summarize_exception(error: BaseException) -> str:
    """``ExceptionType: first meaningful line`` of an error, on one line."""
    lines = [_ANSI_ESCAPE.sub("", line).strip() for line in str(error).splitlines()]
    if lines and lines[0] == _AUTOGRAPH_HEADER:
        lines = _after_traced_frames(lines)
    meaningful = [line for line in lines if line and not line.startswith(_WRAPPER_LINES)]
    if meaningful:
        return f"{type(error).__name__}: {meaningful[0]}"
    frames = traceback.extract_tb(error.__traceback__)
    where = f" in {frames[-1].name}()" if frames else ""
    return f"{type(error).__name__}: (no message){where}"


def _after_traced_frames(lines: list) -> list:
    """The original error of an autograph-converted function: after its frames, as "Type: message".

    Each frame is a ``File ...`` line followed by one line of code.
    """
    frames = [index for index, line in enumerate(lines) if line.startswith("File ")]
    rest = lines[frames[-1] + 2 :] if frames else lines[1:]
    return [_EXCEPTION_PREFIX.sub("", line, count=1) for line in rest]
