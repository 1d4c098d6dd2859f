"""What the manager and its workers share about processes: the environment a worker starts
with, and how a worker dies with its manager and leaves quickly."""

import ctypes
import json
import os
import signal
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def worker_environment() -> dict:
    """The environment of a subprocess: this project importable wherever it is started from."""
    paths = [str(PROJECT_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }


def last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def die_with_manager() -> None:
    """Ask Linux to kill this worker when the runner dies (e.g. its process group is SIGKILLed):
    the worker has its own process group, so it would otherwise live on and skew other work."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def exit_now(status: int) -> None:
    """Leave without interpreter teardown: TensorFlow's takes seconds, paid by every process."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def write_stall_notes(path: Path, stalled_seconds: float, longest: str) -> None:
    """A worker's stalls so far (``bench.measure.stall``), whole, replacing the last: what the
    manager reads of a worker stopped by a signal in the middle of a wait."""
    partial = path.with_name(f"{path.name}.partial")
    try:
        partial.write_text(
            json.dumps({"stalled_seconds": stalled_seconds, "stall": longest}), encoding="utf-8"
        )
        os.replace(partial, path)
    except OSError:
        pass  # a note the manager may miss; the watch goes on


def read_stall_notes(path: Path) -> dict:
    """What ``write_stall_notes`` kept at ``path``, as a result's fields (``stalled_seconds``,
    ``stall``); {} where it kept nothing (the worker never stood idle that long)."""
    try:
        kept = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    seconds, stall = (
        (kept.get(key) for key in ("stalled_seconds", "stall"))
        if isinstance(kept, dict)
        else (None, None)
    )
    if not isinstance(seconds, (int, float)) or not isinstance(stall, str):
        return {}
    return {"stalled_seconds": float(seconds), "stall": stall}
