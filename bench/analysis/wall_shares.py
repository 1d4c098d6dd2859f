"""Where the workers' wall time went: seconds and shares by phase, and the idle stretches.

It reads the runs and blocks frames of a results folder (``bench.results.folder.Results``): each
run row carries its own building and epochs, and its process's wall time, start-up, paired timing,
teardown and stalls (``bench.measure.phases``); a run in a Jupyter kernel records them from inside
its kernel. A process that recorded no phases at all (runs in a kernel, in folders from before
it recorded them) is counted apart, as unrecorded; what a process left uncovered is other. The
report words it (``bench.report.walltime``).
"""

from dataclasses import dataclass

import pandas as pd

# Recorded once per process and repeated on each of its runs: the first row says it.
PER_PROCESS = ("wall_seconds", "startup_seconds", "blocks_seconds", "teardown_seconds")
PER_RUN = ("build_seconds", "train_seconds")
TIMED, UNTIMED, TRAINING, OTHER = "timed", "untimed", "train_seconds", "other"
UNRECORDED = "unrecorded"  # the wall time of processes that recorded no start-up
# The phases in the order the report lists them, after the timed and untimed paired timing.
PHASES = ("train_seconds", "build_seconds", "startup_seconds", "teardown_seconds")


@dataclass(frozen=True)
class WallTime:
    """The worker processes' wall time, in seconds, and how it divides."""

    processes: int  # worker processes that recorded a wall time
    wall: float  # their wall seconds in all
    seconds: dict  # phase (TIMED, UNTIMED, each of PHASES, OTHER) -> seconds, in that order
    stalled: float  # seconds they stood idle
    most_stalled: str  # the process that stalled most; "" where none stalled
    longest_stall: str  # that process's longest stall, as recorded

    def share(self, seconds: float) -> float:
        """``seconds`` as a fraction of the wall time."""
        return seconds / self.wall

    @property
    def shares(self) -> dict:
        """phase -> its fraction of the wall time."""
        return {phase: self.share(value) for phase, value in self.seconds.items()}


def wall_time_of(runs: pd.DataFrame, blocks) -> WallTime:
    """The ``WallTime`` of a folder's runs and blocks (None or empty: no timed steps)."""
    processes = _processes(runs, blocks)
    wall = float(processes.wall_seconds.sum())
    stalled = float(processes.stalled_seconds.sum())
    worst = processes.stalled_seconds.idxmax() if stalled > 0 else ""
    return WallTime(
        len(processes),
        wall,
        _seconds_by_phase(processes) if wall > 0 else {},
        stalled,
        str(worst),
        str(processes.stall[worst]) if worst else "",
    )


def _processes(runs: pd.DataFrame, blocks) -> pd.DataFrame:
    """One row per worker process with a wall time: its phases, its stalls and the seconds of
    its timed steps."""
    grouped = runs.groupby("process")
    processes = grouped[list(PER_PROCESS)].first().join(grouped[list(PER_RUN)].sum())
    processes = processes.join(grouped.stalled_seconds.first()).join(grouped.stall.max())
    return (
        processes[processes.wall_seconds.notna()]
        .join(_timed_per_process(blocks))
        .fillna({"timed": 0.0})
    )


def _timed_per_process(blocks) -> pd.Series:
    if blocks is None or blocks.empty:
        return pd.Series(dtype=float, name="timed")
    return blocks.seconds.groupby(blocks.process).sum().rename("timed")


def _seconds_by_phase(processes: pd.DataFrame) -> dict:
    """Phase -> seconds, in the report's order; UNRECORDED (only where some process recorded no
    phases) is those processes' wall time, OTHER the wall time no phase covers."""
    untimed = (processes.blocks_seconds - processes.timed).clip(lower=0)
    seconds = {
        TIMED: processes.timed.sum(),
        UNTIMED: untimed.sum(),  # NaN where no paired timing was recorded: sum() skips them
        **{column: processes[column].sum() for column in PHASES},
    }
    unrecorded = processes.wall_seconds[processes.startup_seconds.isna()].sum()
    if unrecorded > 0:
        seconds[UNRECORDED] = unrecorded
    seconds[OTHER] = max(processes.wall_seconds.sum() - sum(seconds.values()), 0.0)
    return seconds
