"""Errors the command line reports as one line, never as a traceback, and the one rule that
reduces any exception to such a line."""

import re
import traceback

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
