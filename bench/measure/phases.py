"""Where a worker process's wall time goes, phase by phase.

Each run records its own building (the recipe built and seeded, ``fit`` set up and ended: its
training phase less its epochs) and training (its epochs, as epochs.csv has them). The process
records its start-up (from the kernel's start of the process, so the interpreter's own start and
every import count, to its session being open), its paired timing, its teardown and the seconds
its ``StallWatch`` found idle; every run of the process carries those, as it carries the manager's
``wall_seconds``. What no phase covers (the manager starting the process, profiles, pictures, the
result written) is the report's "other". A run in a Jupyter kernel records the same phases from
inside its kernel (``bench.measure.kernel``).
"""

import collections
import contextlib
import os
import time
from dataclasses import replace
from pathlib import Path

from bench.results.records import RunResult

STARTUP, BLOCKS, TEARDOWN = "startup", "blocks", "teardown"


class Phases:
    """A process's wall seconds by phase, each phase's times summed."""

    def __init__(self):
        self.seconds = collections.Counter()

    @contextlib.contextmanager
    def timed(self, phase: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - started

    def started_up(self) -> None:
        """Start-up ends now: its seconds are the process's age."""
        age = process_age()
        if age is not None:
            self.seconds[STARTUP] = age

    def of_process(self, result: RunResult, watch) -> RunResult:
        """``result`` with the process's phases, and the stalls ``watch`` (a ``StallWatch``)
        recorded."""
        return replace(
            result,
            startup_seconds=self.seconds.get(STARTUP),
            blocks_seconds=self.seconds.get(BLOCKS),
            teardown_seconds=self.seconds.get(TEARDOWN),
            stalled_seconds=watch.stalled_seconds,
            stall=str(watch.longest or ""),
        )


def with_own_startup(result: RunResult, seconds: float) -> RunResult:
    """``result`` of a run in a kernel, with the start-up of the worker that started the kernel
    added to the kernel's own: where the kernel recorded none, the result is as it was."""
    if result.startup_seconds is None:
        return result
    return replace(result, startup_seconds=result.startup_seconds + seconds)


def of_run(result: RunResult, seconds: float) -> RunResult:
    """``result`` with its training phase of ``seconds`` split: its epochs, and the rest."""
    epochs = sum(epoch.seconds for epoch in result.epochs)
    return replace(result, train_seconds=epochs, build_seconds=max(seconds - epochs, 0.0))


def process_age() -> float | None:
    """Seconds since this process started, by the kernel: the start time in /proc/self/stat
    (clock ticks after boot, to 10 ms) against CLOCK_BOOTTIME, the clock it counts on. None where
    /proc cannot say."""
    try:
        stat = Path("/proc/self/stat").read_text(encoding="ascii")
    except OSError:
        return None
    # Fields after the command name, which may hold spaces and ")": the 3rd field is [0], so the
    # 22nd, starttime, is [19].
    start_ticks = int(stat[stat.rindex(")") + 2 :].split()[19])
    started = start_ticks / os.sysconf("SC_CLK_TCK")
    return max(time.clock_gettime(time.CLOCK_BOOTTIME) - started, 0.0)


def origin() -> float:
    """The ``time.monotonic()`` of this process's start (now, where /proc cannot say)."""
    return time.monotonic() - (process_age() or 0.0)
