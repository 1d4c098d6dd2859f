"""A benchmark under a time budget: the rounds after the first, planned one at a time.

``Budget`` is the clock: the seconds a command was given, from when it started, less what the
report needs at the end (``bench.config.budget.REPORT_SECONDS``). After each round
``next_round`` asks the analysis which ratios are still wider than their target and which of
their runs fit in the time left (``bench.analysis.allocation``), and returns the next round's
runs, or none with the reason the benchmark ends there. Each budget a folder was given, and
what it bought, is kept in env.json's "budgets" (``record``), which the report reads.
"""

import time
from dataclasses import dataclass, field

from bench.analysis import allocation
from bench.config import budget as budget_config
from bench.config import plan
from bench.results.folder import ResultsFolder

TARGET_REACHED = "every ratio reached its precision target"
OUT_OF_TIME = "the next round did not fit in the time left"
PLAN_FULL = f"the plan holds {plan.MAX_PLANNED_RUNS:,} runs, the most a plan may"
ROUNDS_USED = f"{budget_config.MAX_BUDGET_ROUNDS} rounds, the most a budget plans"


@dataclass
class Budget:
    """``seconds`` from ``started`` (``time.time()``); ``ended``: why no round followed."""

    seconds: float
    command: str
    started: float = field(default_factory=time.time)
    rounds: list = field(default_factory=list)  # the rounds this budget added
    ended: str = ""

    def left(self) -> float:
        """Seconds a further round may take: what is left before the report's share."""
        used = time.time() - self.started
        return self.seconds - used - budget_config.REPORT_SECONDS

    def entry(self) -> dict:
        """What env.json's "budgets" keeps of this budget."""
        return {
            "seconds": self.seconds,
            "command": self.command,
            "started_at": self.started,
            "wall_seconds": time.time() - self.started,
            "rounds_added": list(self.rounds),
            "ended": self.ended,
        }


def next_round(folder: ResultsFolder, config, runs: list, budget: Budget) -> list:
    """The runs of the round after the last of ``runs``; [] with ``budget.ended`` set when the
    benchmark ends here."""
    results = folder.read()
    shown = allocation.Shown.of(results.runs, results.blocks)
    candidates = allocation.wanted(shown, results.blocks)
    costs = allocation.Costs.of(results.runs, results.epochs, results.blocks)
    timed_only = {recipe for recipe in set(results.runs.recipe) if plan.timed_only(config, recipe)}
    pairs = allocation.choose(
        candidates, lambda chosen: costs.round_seconds(chosen, timed_only), budget.left()
    )
    repeat = max(run.repeat for run in runs) + 1
    if not pairs:
        over = [candidate for candidate in candidates if candidate.priority > 1]
        budget.ended = OUT_OF_TIME if over else TARGET_REACHED
        return []
    if repeat > budget_config.MAX_BUDGET_ROUNDS:
        budget.ended = ROUNDS_USED
        return []
    added = plan.round_runs(config, repeat, [("", pair) for pair in pairs], added=True)
    if len(runs) + len(added) > plan.MAX_PLANNED_RUNS:
        budget.ended = PLAN_FULL
        return []
    budget.rounds.append(repeat)
    return added


def record(folder: ResultsFolder, budget: Budget) -> None:
    """Keep ``budget`` in env.json's "budgets", after those given before (by --resume)."""
    folder.update_env(budgets=[*folder.read_env().get("budgets", []), budget.entry()])
