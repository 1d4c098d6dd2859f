"""The report's "Where the wall time went": the share of the worker processes' wall time spent in
the timed train steps every ratio comes from, in training, building, start-up, the untimed rest of
the paired timing, teardown and anything else; and how long the processes stood idle.

The seconds and shares are ``bench.analysis.wall_shares``'; this module words them.
"""

import pandas as pd

from bench.analysis.wall_shares import OTHER, TIMED, TRAINING, UNRECORDED, UNTIMED, WallTime
from bench.formatting import number

WALLTIME_TITLE = "Where the wall time went"
PHASE_LABELS = {
    TIMED: "timed train steps (blocks.csv)",
    UNTIMED: "paired timing, untimed",
    "train_seconds": "training (the epochs of fit)",
    "build_seconds": "building",
    "startup_seconds": "start-up",
    "teardown_seconds": "teardown",
    UNRECORDED: "processes that recorded no phases (runs in a Jupyter kernel, older folders)",
    OTHER: "other",
}


def walltime_blocks(wall: WallTime) -> list:
    """A heading, a sentence (the shares in the timed steps and in training, the idle seconds and
    the longest stall of the most stalled process) and a table of seconds and shares by phase."""
    if not wall.wall > 0:
        return [("h2", WALLTIME_TITLE), ("p", "No worker process recorded its wall time.")]
    return [("h2", WALLTIME_TITLE), ("p", _sentence(wall)), _table(wall)]


def _percent(share: float) -> str:
    return f"{100 * share:.1f}%"


def _sentence(wall: WallTime) -> str:
    shares = wall.shares
    head = (
        f"The {wall.processes} worker process(es) ran {number(wall.wall)} s in all: "
        f"{_percent(shares[TIMED])} in the timed train steps every ratio comes from, "
        f"{_percent(shares[TRAINING])} training. They stood idle "
        f"(stalled) for {number(wall.stalled)} s, {_percent(wall.share(wall.stalled))} of it"
    )
    if not wall.most_stalled:
        return head + "."
    return f"{head}; {wall.most_stalled} stalled most, longest {wall.longest_stall}."


def _table(wall: WallTime) -> tuple:
    return (
        "table",
        pd.DataFrame(
            {
                "where": [PHASE_LABELS[phase] for phase in wall.seconds],
                "seconds": [number(value) for value in wall.seconds.values()],
                "share of wall time": [_percent(share) for share in wall.shares.values()],
            }
        ),
    )
