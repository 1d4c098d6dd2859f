"""Where the benchmark's wall time went: the share of its worker processes' wall time spent in the
timed train steps every ratio comes from, in training, building, start-up, the untimed rest of
the paired timing, teardown and anything else; and how long the processes stood idle.

It reads the runs and blocks frames of a results folder (``bench.results.folder.Results``): each
run row carries its own building and epochs, and its process's wall time, start-up, paired timing,
teardown and stalls (``bench.measure.phases``). What a process did not record (a folder from before
these columns, a run in a Jupyter kernel) counts as other.
"""

import pandas as pd

from bench.formatting import number

TITLE = "Where the wall time went"
# Recorded once per process and repeated on each of its runs: the first row says it.
PER_PROCESS = ("wall_seconds", "startup_seconds", "blocks_seconds", "teardown_seconds")
PER_RUN = ("build_seconds", "train_seconds")
TIMED, UNTIMED = "timed train steps (blocks.csv)", "paired timing, untimed"
PHASE_LABELS = {
    "train_seconds": "training (the epochs of fit)",
    "build_seconds": "building",
    "startup_seconds": "start-up",
    "teardown_seconds": "teardown",
}


def walltime_blocks(runs: pd.DataFrame, blocks) -> list:
    """A heading, a sentence (the shares in the timed steps and in training, the idle seconds and
    the longest stall of the most stalled process) and a table of seconds and shares by phase."""
    processes = _processes(runs, blocks)
    wall = processes.wall_seconds.sum()
    if not wall > 0:
        return [("h2", TITLE), ("p", "No worker process recorded its wall time.")]
    seconds = _seconds_by_phase(processes)
    return [("h2", TITLE), ("p", _sentence(processes, seconds, wall)), _table(seconds, wall)]


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
    """Label -> seconds, in the table's order; "other" is the wall time no phase covers."""
    untimed = (processes.blocks_seconds - processes.timed).clip(lower=0)
    seconds = {
        TIMED: processes.timed.sum(),
        UNTIMED: untimed.sum(),  # NaN where no paired timing was recorded: sum() skips them
        **{label: processes[column].sum() for column, label in PHASE_LABELS.items()},
    }
    seconds["other"] = max(processes.wall_seconds.sum() - sum(seconds.values()), 0.0)
    return seconds


def _share(seconds: float, wall: float) -> str:
    return f"{100 * seconds / wall:.1f}%"


def _sentence(processes: pd.DataFrame, seconds: dict, wall: float) -> str:
    stalled = processes.stalled_seconds.sum()
    head = (
        f"The {len(processes)} worker process(es) ran {number(wall)} s in all: "
        f"{_share(seconds[TIMED], wall)} in the timed train steps every ratio comes from, "
        f"{_share(seconds[PHASE_LABELS['train_seconds']], wall)} training. They stood idle "
        f"(stalled) for {number(stalled)} s, {_share(stalled, wall)} of it"
    )
    if not stalled > 0:
        return head + "."
    worst = processes.stalled_seconds.idxmax()
    return f"{head}; {worst} stalled most, longest {processes.stall[worst]}."


def _table(seconds: dict, wall: float) -> tuple:
    return (
        "table",
        pd.DataFrame(
            {
                "where": list(seconds),
                "seconds": [number(value) for value in seconds.values()],
                "share of wall time": [_share(value, wall) for value in seconds.values()],
            }
        ),
    )
