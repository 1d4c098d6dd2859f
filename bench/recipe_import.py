"""A user's recipe is first imported in a child process of its own, with a deadline and an exit
check: a file that fails, exits or hangs at import is refused in one line naming it and the
cause, and the command that asked goes on to say so (exit status 2) instead of ending or waiting
with it.

``checked_record(spec)`` starts ``python -m bench.recipes SPEC RESULT`` in its own process
group, with no stdin (an ``input()`` at import ends instead of waiting), and reads back what
``bench.recipes.load_here`` found: the recipe's record (``bench.recipes.UserRecipe.record``) or
the one-line problem. The manager never imports the recipe itself; ``run``, ``verify`` and
``list --recipe`` all load through here.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.errors import UsageError
from bench.processes import last_line, worker_environment

# Long enough for a recipe that imports TensorFlow at its top on a loaded machine; a recipe
# that keeps its framework imports in build() takes about a second.
IMPORT_TIMEOUT_SECONDS = 120.0
# What the child runs: ``bench.recipes``'s ``checked_in_child`` (its ``__main__``).
CHILD_MODULE = "bench.recipes"


def checked_record(spec: str, timeout: float | None = None) -> dict:
    """The record of the recipe ``spec`` names (an absolute file path or a module name), from
    a child process that imported and checked it within ``timeout`` seconds (by default
    ``IMPORT_TIMEOUT_SECONDS``); a UsageError naming ``spec`` and the cause."""
    timeout = IMPORT_TIMEOUT_SECONDS if timeout is None else timeout
    with tempfile.TemporaryDirectory(prefix="kl-bench-recipe-") as scratch:
        result, output = Path(scratch, "result.json"), Path(scratch, "output.txt")
        with open(output, "w", encoding="utf-8") as captured:
            child = subprocess.Popen(
                [sys.executable, "-m", CHILD_MODULE, spec, str(result)],
                env=_environment(),
                stdin=subprocess.DEVNULL,
                stdout=captured,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: ended whole at the deadline
            )
            try:
                status = child.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _end(child)
                status = None
            except BaseException:  # Ctrl-C, SIGTERM: the child goes with the command
                _end(child)
                raise
        if status is None:
            raise UsageError(
                f"{spec}: its import did not end within {timeout:g} s (does it wait for "
                "something, or run a long computation, at import?)"
            )
        answer = _read(result)
        if answer is None:
            said = last_line(output.read_text(encoding="utf-8", errors="replace"))
            raise UsageError(
                f"{spec}: ended the process at import (exit status {status})"
                + (f": {said}" if said else "")
            )
        if "error" in answer:
            raise UsageError(str(answer["error"]))
        return answer["recipe"]


def _environment() -> dict:
    """The worker's environment, with this process's import path: a module name is found in
    the child where it is found here."""
    env = worker_environment()
    paths = [*env["PYTHONPATH"].split(os.pathsep), *(entry or os.getcwd() for entry in sys.path)]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(path for path in paths if path))
    return env


def _end(child: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def _read(result: Path):
    try:
        answer = json.loads(result.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    answered = isinstance(answer, dict) and ("error" in answer or "recipe" in answer)
    return answer if answered else None
