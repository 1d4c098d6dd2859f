"""A benchmark's time budget: ``[matrix] budget`` or ``--budget``, as a duration ("15m").

Under a budget the plan is not fixed in advance: the first round runs every recipe x API (it
finds what works and measures how long each worker takes on this machine), then the runner
plans one round at a time from what is still imprecise and what fits in the time left
(``bench.run.budget``, ``bench.analysis.allocation``). Without one, ``[matrix] repeats`` rounds
run, as a sweep's always do.

Before anything runs, a budget is checked against what one round of the matrix costs on the
fastest machine this project runs on: a smaller budget cannot hold the first round anywhere,
and is refused with the smallest that could.
"""

import math
import re

from bench.errors import UsageError, quoted
from bench.formatting import duration

# The most rounds a budget may plan: far more than any budget buys, and small enough that a
# round's seed (seed * 1000 + round) stays clear of the next seed's.
MAX_BUDGET_ROUNDS = 999
# One round on the fastest machine the project knows (plain_ae near 45 ms per step at batch 128,
# a quarter of the slowest): a worker process's start-up (imports, data, the preflight's share),
# and each run's build, trace, training and share of the paired blocks under the default
# [training] settings. Only the refusal of a budget that cannot hold one round uses these; the
# runner plans from what the first round measured.
FASTEST_PROCESS_SECONDS = 8.0
FASTEST_RUN_SECONDS = 3.5
# Time a budget keeps back for what follows the last round: the analysis, report and plots.
REPORT_SECONDS = 45.0

_UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


def parse_duration(text: str, what: str = "--budget") -> float:
    """Seconds of a duration written as "15m", "90s", "1h", "1h30m" or "2.5m"; a UsageError
    naming ``what`` for anything else, or for no time at all."""
    match = _DURATION.fullmatch(str(text).strip().lower())
    if not str(text).strip() or match is None:
        raise UsageError(
            f"{what} {quoted(text)} is not a duration: write it as 15m, 90s, 1h or 1h30m"
        )
    seconds = sum(
        float(amount) * _UNIT_SECONDS[unit]
        for amount, unit in zip(match.groups(), "hms")
        if amount is not None
    )
    if seconds <= 0:
        raise UsageError(f"{what} {quoted(text)} gives no time to measure anything")
    return seconds


def budget_seconds(budget: str) -> float | None:
    """A ``[matrix] budget``'s seconds; None for "" (no budget: the fixed rounds)."""
    return parse_duration(budget, "[matrix] budget") if budget else None


def fastest_round_seconds(processes: int, runs: int) -> float:
    """A lower bound of one round of ``runs`` runs in ``processes`` worker processes."""
    return processes * FASTEST_PROCESS_SECONDS + runs * FASTEST_RUN_SECONDS


def check_fits(seconds: float, processes: int, runs: int) -> None:
    """A UsageError when ``seconds`` cannot hold one round and the report on any machine."""
    smallest = fastest_round_seconds(processes, runs) + REPORT_SECONDS
    if seconds < smallest:
        raise UsageError(
            f"a budget of {duration(seconds)} cannot hold one round of this matrix ({runs} runs "
            f"in {processes} worker processes) and its report on even the fastest machine: give "
            f"at least {math.ceil(smallest / 60)}m, or fewer recipes or APIs"
        )
