"""How much of a run the machine spent under other work: the CPU pressure of its timed steps,
over the whole run, and whether that makes it a shared run.

``bench.results.contention`` looks at changes inside a block (a neighbour that came or went); a
neighbour that stays for the whole run changes nothing inside a block, yet every ratio is then
measured on a machine with fewer free cores than a quiet one (docs/method.md, "Other work on the
machine"). Each timed step records the seconds in which some task waited for a CPU meanwhile
(blocks.csv ``pressure_seconds``); a step is under other work when that is over ``STEP_SHARE`` of
its own time, and a run is shared when over ``SHARED_SHARE`` of its timed seconds were. The end of
a benchmark records the summary in env.json (``ENV_KEY``); a folder without it gets it from
blocks.csv, and one without pressure readings is unknown, never quiet.
"""

import math
from dataclasses import dataclass

import pandas as pd

ENV_KEY = "other_work"  # env.json: the run's OtherWork.record()
# A step is under other work when some task waited for a CPU over half of it: a worker's own
# threads make a few percent at most (a quiet GPU run: 0.1% at the 90th percentile of its steps),
# a neighbour that takes a core for the whole step makes nearly all of it (docs/method.md).
STEP_SHARE = 0.5
# A run is shared when over a tenth of its timed seconds were under other work: the median over a
# process's blocks sets aside a burst in a few of them, not a neighbour in most (docs/method.md).
SHARED_SHARE = 0.10
QUIET, SHARED, UNKNOWN = "quiet", "shared", "unknown"


@dataclass(frozen=True)
class OtherWork:
    """A run's timed steps under other work: ``share`` of their seconds (None: no step has a
    pressure reading), the mean pressure over them, and the processes measured and shared."""

    share: float | None = None
    pressure: float | None = None
    processes: int = 0
    shared_processes: int = 0

    @property
    def state(self) -> str:
        """``QUIET``, ``SHARED`` or ``UNKNOWN`` (no pressure reading: other work unmeasured)."""
        if self.share is None:
            return UNKNOWN
        return SHARED if self.share > SHARED_SHARE else QUIET

    @property
    def shared(self) -> bool:
        return self.state == SHARED

    def record(self) -> dict:
        """env.json's entry: the summary and the thresholds it was judged by."""
        return {
            "state": self.state,
            "share": _rounded(self.share),
            "pressure": _rounded(self.pressure),
            "processes": self.processes,
            "shared_processes": self.shared_processes,
            "step_share": STEP_SHARE,
            "shared_share": SHARED_SHARE,
        }

    @classmethod
    def from_record(cls, entry) -> "OtherWork":
        """The summary env.json holds; unknown for anything unreadable (a folder is data)."""
        if not isinstance(entry, dict):
            return cls()
        share, pressure = _fraction(entry.get("share")), _fraction(entry.get("pressure"))
        counts = [entry.get(key) for key in ("processes", "shared_processes")]
        if share is None or not all(isinstance(n, int) and n >= 0 for n in counts):
            return cls()
        return cls(share, pressure, *counts)


def _rounded(value):
    return None if value is None else round(value, 4)


def _fraction(value):
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value) if 0 <= value <= 1.5 else None


def per_process(blocks: pd.DataFrame) -> pd.DataFrame:
    """Per process with pressure readings: its timed seconds, the share of them under other work
    and its mean pressure (pressure seconds over step seconds)."""
    columns = ["process", "seconds", "share", "pressure"]
    if blocks is None or blocks.empty or "pressure_seconds" not in blocks:
        return pd.DataFrame(columns=columns)
    read = blocks[blocks.pressure_seconds.notna() & (blocks.seconds > 0)]
    if read.empty:
        return pd.DataFrame(columns=columns)
    read = read.assign(
        busy=read.seconds.where(read.pressure_seconds > STEP_SHARE * read.seconds, 0.0)
    )
    sums = read.groupby("process", as_index=False)[["seconds", "busy", "pressure_seconds"]].sum()
    return sums.assign(
        share=sums.busy / sums.seconds, pressure=sums.pressure_seconds / sums.seconds
    )[columns]


def of_blocks(blocks: pd.DataFrame) -> OtherWork:
    """The run's summary from its timed steps (blocks.csv); unknown without pressure readings."""
    processes = per_process(blocks)
    if processes.empty:
        return OtherWork()
    seconds = processes.seconds.sum()
    return OtherWork(
        float((processes.share * processes.seconds).sum() / seconds),
        float((processes.pressure * processes.seconds).sum() / seconds),
        len(processes),
        int((processes.share > SHARED_SHARE).sum()),
    )


def of_results(results) -> OtherWork:
    """A folder's summary: from its blocks.csv where it has pressure readings, else from its
    env.json (a reference folder keeps no blocks.csv), else unknown."""
    return of_blocks_or_env(results.blocks, results.env)


def of_blocks_or_env(blocks: pd.DataFrame, env: dict) -> OtherWork:
    """``of_blocks`` where ``blocks`` have pressure readings, else ``env``'s entry (``ENV_KEY``:
    env.json's, or a baseline file's), else unknown."""
    measured = of_blocks(blocks)
    if measured.state != UNKNOWN:
        return measured
    return OtherWork.from_record(env.get(ENV_KEY) if isinstance(env, dict) else None)
