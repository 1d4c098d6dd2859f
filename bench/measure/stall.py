"""A watch for stalls: stretches of a worker's life in which wall time passes and CPU time
hardly does, every thread waiting.

A worker that trains or times keeps a core busy; one that waits (on a lock, on another thread, on a
timed wait inside TensorFlow) spends wall time that no phase of its work explains. ``StallWatch``
samples the process's CPU time (all threads) from a daemon thread and records each stretch of at
least ``min_seconds`` in which it rose by less than ``IDLE_CPU_SHARE`` of the wall time, with where
the watched thread stood. A wait that holds the GIL (a C++ destructor run from Python) stops the
watch's thread too: the stretch is seen as it ends, and the place named is where the watched
thread stands then, just after the wait (docs/failures.md).

With a ``notes`` path, the watch also keeps there, as each sample finds the process idle, the
stalls so far with the stretch still going on (``bench.processes.write_stall_notes``): a process
stopped by a signal in the middle of a wait (a hung train step at its time limit) writes no
result, and the runner reads the stall from there.
"""

import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.processes import PROJECT_ROOT, write_stall_notes

SAMPLE_SECONDS = 0.5
STALL_SECONDS = 2.0  # shorter idle stretches are a worker's ordinary pauses
IDLE_CPU_SHARE = 0.05  # of one core: a stretch under it computed nothing
FRAMES_NAMED = 3  # the watched thread's innermost Python frames that locate a stall


@dataclass(frozen=True)
class Stall:
    """One idle stretch: when it began (seconds after the watch's origin), how long, and where."""

    started: float
    seconds: float
    where: str

    def __str__(self) -> str:
        return f"{self.seconds:.1f} s idle from {self.started:.1f} s: {self.where}"


class StallWatch:
    """Records the stalls of this process while it runs (``with StallWatch() as watch:``); the
    thread that makes it is the one whose place each stall names.

    ``origin``: the ``time.monotonic()`` that stall starts count from (default: when it starts).
    """

    def __init__(
        self, sample_seconds=SAMPLE_SECONDS, min_seconds=STALL_SECONDS, origin=None, notes=None
    ):
        self.stalls = []
        self._sample_seconds, self._min_seconds, self._origin = sample_seconds, min_seconds, origin
        self._notes = Path(notes) if notes else None
        self._watched = threading.get_ident()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="stall-watch", daemon=True)

    def __enter__(self) -> "StallWatch":
        if self._origin is None:
            self._origin = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopped.set()
        self._thread.join()

    @property
    def stalled_seconds(self) -> float:
        return sum(stall.seconds for stall in self.stalls)

    @property
    def longest(self) -> Stall | None:
        return max(self.stalls, key=lambda stall: stall.seconds, default=None)

    def _watch(self) -> None:
        """Compare each sample with the one before; a run of idle intervals is one stretch."""
        wall, cpu = time.monotonic(), time.process_time()
        idle_since, where = None, ""
        while not self._stopped.wait(self._sample_seconds):
            now, used = time.monotonic(), time.process_time()
            if used - cpu < IDLE_CPU_SHARE * (now - wall):
                if idle_since is None:
                    idle_since, where = wall, self._where()
                self._note(idle_since, now, where)
            elif idle_since is not None:
                self._record(idle_since, wall, where)
                idle_since = None
            wall, cpu = now, used
        if idle_since is not None:
            self._record(idle_since, wall, where)

    def _record(self, started: float, ended: float, where: str) -> None:
        if ended - started >= self._min_seconds:
            self.stalls.append(Stall(started - self._origin, ended - started, where))

    def _note(self, idle_since: float, now: float, where: str) -> None:
        """The stalls so far, the one going on included, into ``notes`` (whole, replaced)."""
        if self._notes is None or now - idle_since < self._min_seconds:
            return
        ongoing = Stall(idle_since - self._origin, now - idle_since, where)
        stalls = [*self.stalls, ongoing]
        longest = max(stalls, key=lambda stall: stall.seconds)
        write_stall_notes(self._notes, sum(stall.seconds for stall in stalls), str(longest))

    def _where(self) -> str:
        frame = sys._current_frames().get(self._watched)
        return frames_text(frame) if frame else "the watched thread has ended"


def frames_text(frame) -> str:
    """A thread's innermost Python frames on one line, innermost first:
    "bench/measure/worker.py:58 _run_here < bench/measure/worker.py:40 run < ..."."""
    named = []
    while frame is not None and len(named) < FRAMES_NAMED:
        code = frame.f_code
        named.append(f"{_short_path(code.co_filename)}:{frame.f_lineno} {code.co_name}")
        frame = frame.f_back
    return " < ".join(named)


def _short_path(filename: str) -> str:
    """Relative to the project for its own files; the file's name for any other."""
    path = Path(filename)
    try:
        return path.relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return path.name
