"""Where a budget's remaining time goes: the next round's runs, chosen by precision and cost.

After the first round, each round a budget buys holds the runs of every ratio measured in too
few processes for an interval (``MIN_PROCESSES``) that fit in the time left, those in fewest
processes first, then cheapest first,
then runs of the ratios whose confidence interval is still wider than its target: those that
buy most per second first (how far over its target a ratio is, per second its run adds to the
round: a TensorFlow claim's run far over its target before a JAX process that costs minutes for
a ratio just over), as many as fit in a third of the time left (``ROUND_SHARE``), so that the
rule looks again after each smaller round.
A ratio's target is fixed in advance: ``estimators.PRECISION_TARGET`` for a ratio to the floor
and for a reading against its variant, ``CLAIM_PRECISION_TARGET`` for a ratio a claim of the
posts is about, since a verdict needs its interval clear of the claim's bounds.

The rule never looks at where a ratio lies. It takes a paired ratio's half-width as the wider
of two (``rule_half_width``): what the spread of the ratio's blocks within their processes
predicts, times how much the processes of its family spread beyond their blocks, with the
degrees of freedom the moderated interval will have (``predicted_half_width``,
``moderation.Prior``), and its moderated interval's own half-width, which weighs the spread of
its processes' ratios with that prior. Within-process and between-process spread are
independent (for normal data, Cochran's theorem: one-way analysis of variance), so a stop the
first allows is not biased towards processes that happen to agree closely, as one chosen by
their spread alone would be (their intervals then cover less). The second can only keep a ratio
measured longer: one whose processes spread more than its family's is measured until its own
interval reaches the target, where the first alone would stop it with its interval (and its
claim's verdict) wide. A simulation with this project's spread tests the coverage of the two
together (tests/test_allocation.py); docs/budget.md gives the argument.

How long a round takes comes from what the folder measured (``Costs``): each worker process's
wall time, less what its runs' building, training and timed blocks took, is the process's fixed
cost (its start-up); a run costs its building, its training and its own blocks. A run the plan
times only (``PlannedRun.timed_only``) costs its building and its blocks, and for its trace what a
trained run's first (warm-up) epoch took, until runs timed only say what they cost. Medians over
the folder's processes, times a margin for the machine's drift.
"""

import math
from dataclasses import dataclass, field

import pandas as pd

from bench.analysis import claims, estimators, moderation, selection, step_ratios
from bench.config import plan

CLAIM_PRECISION_TARGET = 0.015
# Fewer processes than this and a ratio always counts as over its target: its interval has too
# few degrees of freedom to say, and too few blocks to predict it from.
MIN_PROCESSES = 3
# Beyond this many processes for one claim, the report says only "more than" it.
MOST_PROCESSES = 1000
# A round takes at most this share of the time left (unless not even one run fits in it):
# smaller rounds let the rule look again sooner, so the minutes go where each buys most rather
# than to one round of every ratio over its target.
ROUND_SHARE = 1 / 3
# A run adds at least this much to a round: no run is free, however it is estimated.
MIN_ROUND_SECONDS = 1.0
# An estimate of a round is the median of what its parts took, times this: enough for a machine
# whose speed drifts by a tenth between rounds without breaking the budget.
COST_MARGIN = 1.15


@dataclass(frozen=True)
class Wanted:
    """A ratio the report shows: how wide its CI is (for a paired ratio, as its blocks predict
    it: ``predicted_half_width``), its target, and the runs (recipe, api) one more measurement of
    it needs (a paired ratio: its recipe's run, whose process times the
    other side; across processes: a run of each side)."""

    name: str
    half_width: float
    n: int
    target: float
    pairs: tuple

    @property
    def priority(self) -> float:
        """How far from its target, relative: inf with fewer than ``MIN_PROCESSES``."""
        if self.n < MIN_PROCESSES or not math.isfinite(self.half_width):
            return math.inf
        return self.half_width / self.target


def predicted_half_width(
    block_spread: float, blocks: float, processes: int, prior=moderation.NO_PRIOR
) -> float:
    """The relative half-width of a ratio's 95% moderated t-interval over ``processes``
    processes, each the median of ``blocks`` blocks whose log ratios spread by ``block_spread``
    within a process, where its family's processes spread as ``prior`` says (``NO_PRIOR``: as their
    blocks predict) and its interval has the freedom ``prior`` gives it."""
    if processes < 2:
        return math.nan
    variance = prior.expected_variance(moderation.predicted_variance(block_spread, blocks))
    quantile = estimators.t_quantile(float(prior.interval_freedom(processes)))
    return math.sinh(quantile * math.sqrt(variance / processes))  # as moderation.interval


def rule_half_width(predicted: float, measured: float) -> float:
    """The half-width the rule takes for a paired ratio: its ``predicted_half_width``
    (``predicted``) or its moderated interval's (``measured``), whichever is wider: a ratio stops
    no earlier than its blocks say it may, nor than its own interval says it does; nan where its
    blocks predict nothing (it then counts as measured too little, as without the interval)."""
    return max(predicted, measured) if math.isfinite(measured) else predicted


def group_of(recipe: str, api: str, variant: str = "") -> str:
    """The kind of worker process a run of (recipe, api) belongs to, whatever its round."""
    return plan.process_id(recipe, api, 0, variant)


@dataclass(frozen=True)
class Costs:
    """Seconds a worker process of each kind costs before its runs, and each run's own: as a run
    that trains, and as one timed only."""

    process_seconds: dict  # group_of(...) -> seconds
    run_seconds: dict  # (recipe, api) -> seconds of a run that trains
    timed_seconds: dict = field(default_factory=dict)  # (recipe, api) -> of a run timed only

    @classmethod
    def of(cls, runs: pd.DataFrame, epochs: pd.DataFrame, blocks: pd.DataFrame) -> "Costs":
        parts = _run_parts(runs, epochs, blocks)
        own = parts.build + parts.epochs + parts.blocks
        kinds = [group_of(recipe, api) for recipe, api in zip(runs.recipe, runs.api)]
        processes = (
            runs.assign(own=own, kind=kinds)
            .groupby("process")
            .agg(wall=("wall_seconds", "first"), own=("own", "sum"), kind=("kind", "first"))
        )
        fixed = (processes.wall - processes.own).clip(lower=0).groupby(processes.kind).median()
        trained = selection.trained(runs)
        per_run = own[trained].groupby([runs.recipe[trained], runs.api[trained]]).median()
        return cls(fixed.to_dict(), per_run.to_dict(), _timed_only_costs(runs, parts).to_dict())

    def round_seconds(self, pairs, timed_only=frozenset()) -> float:
        """The estimate of a round of the (recipe, api) ``pairs``: one process per kind; the runs
        of the recipes in ``timed_only`` timed only (``PlannedRun.timed_only``)."""
        pairs = list(dict.fromkeys(pairs))
        groups = {group_of(recipe, api) for recipe, api in pairs}
        fixed = sum(self._known(self.process_seconds, group) for group in groups)
        own = sum(self._known(self._own_seconds(pair[0], timed_only), pair) for pair in pairs)
        return (fixed + own) * COST_MARGIN

    def _own_seconds(self, recipe: str, timed_only) -> dict:
        if recipe in timed_only and self.timed_seconds:
            return self.timed_seconds
        return self.run_seconds

    @staticmethod
    def _known(seconds: dict, key) -> float:
        """The measured seconds of ``key``; for one never measured, the largest of its kind."""
        if key in seconds:
            return seconds[key]
        return max(seconds.values(), default=0.0)


def every_pair_round_seconds(runs: pd.DataFrame, epochs: pd.DataFrame, blocks) -> float:
    """What one more round of every recipe x API with an ok run would take (``Costs``), the
    recipes a budget's rounds timed only (``selection.timed_only_recipes``) timed only again."""
    pairs = selection.ok_runs(runs)[["recipe", "api"]].drop_duplicates()
    if pairs.empty:
        return math.nan
    costs = Costs.of(runs, epochs, blocks)
    return costs.round_seconds(
        list(pairs.itertuples(index=False, name=None)), selection.timed_only_recipes(runs)
    )


def _run_parts(runs: pd.DataFrame, epochs: pd.DataFrame, blocks: pd.DataFrame) -> pd.DataFrame:
    """Per runs.csv row, in seconds: its building (for a run timed only, its trace too), its
    epochs, its first epoch (the warm-up: the trace and a few steps) and its own model's share of
    its process's blocks."""
    trained = epochs.groupby("run_id").seconds.sum() if len(epochs) else pd.Series(dtype=float)
    timed = pd.Series(0.0, index=runs.index)
    if len(blocks):
        own = blocks[(blocks.model == blocks.recipe) & (blocks.model_api == blocks.api)]
        timed = runs.run_id.map(own.groupby("run_id").seconds.sum()).fillna(0.0)
    return pd.DataFrame(
        {
            "build": _column(runs, "build_seconds"),
            "epochs": runs.run_id.map(trained).fillna(0.0),
            "first": _column(runs, "first_epoch_seconds"),
            "blocks": timed,
        }
    )


def _timed_only_costs(runs: pd.DataFrame, parts: pd.DataFrame) -> pd.Series:
    """(recipe, api) -> what a run of it timed only costs: the median of its runs timed only where
    there are any, else of its trained runs' cost with their epochs replaced by the first
    (warm-up) epoch, which holds the trace and more steps than a trace takes."""
    timed = ~selection.trained(runs)
    estimate = parts.build + parts.blocks + parts["first"].where(~timed, 0.0)
    measured = estimate[timed].groupby([runs.recipe[timed], runs.api[timed]]).median()
    guessed = estimate[~timed].groupby([runs.recipe[~timed], runs.api[~timed]]).median()
    return pd.concat([guessed[~guessed.index.isin(measured.index)], measured])


def _column(runs: pd.DataFrame, name: str) -> pd.Series:
    """A runs.csv column of seconds, 0 where empty or absent (older folders)."""
    if name not in runs:
        return pd.Series(0.0, index=runs.index)
    return pd.to_numeric(runs[name], errors="coerce").fillna(0.0)


@dataclass(frozen=True)
class Shown:
    """The ratio tables the report shows: to the floor (``step_ratios.ratio_table``), the claims and
    the readings (``claims.claim_table``, ``claims.reading_table``)."""

    ratios: pd.DataFrame
    claims: pd.DataFrame
    readings: pd.DataFrame

    @classmethod
    def of(cls, runs: pd.DataFrame, blocks: pd.DataFrame) -> "Shown":
        return cls(
            step_ratios.ratio_table(runs, blocks),
            claims.claim_table(runs, blocks),
            claims.reading_table(runs, blocks),
        )


def wanted(shown: Shown, blocks: pd.DataFrame) -> list:
    """Every ratio ``shown``, as a ``Wanted``: each KL recipe to its floor, each claim and each
    reading on every API where both sides have numbers. A paired ratio's half-width is the wider of
    what its ``blocks`` and its family's prior predict and its own interval's
    (``rule_half_width``); one across processes has its interval's."""
    _, spreads, priors = moderation.measured(blocks)
    rows = [
        (
            (row.recipe, row.api),
            (row.compared_with, row.compared_api),
            row,
            estimators.PRECISION_TARGET,
        )
        for row in shown.ratios.itertuples(index=False)
    ]
    for claim_row in shown.claims.itertuples(index=False):
        claim = claim_row.claim
        sides = (claim.recipe, claim_row.api), (claim.baseline, claim_row.api)
        rows.append((*sides, claim_row, CLAIM_PRECISION_TARGET))
    for reading in shown.readings.itertuples(index=False):
        sides = (reading.recipe, reading.api), (reading.undone, reading.api)
        rows.append((*sides, reading, estimators.PRECISION_TARGET))
    return [
        _wanted(model, other, row, target, spreads, priors) for model, other, row, target in rows
    ]


def _wanted(model: tuple, other: tuple, row, target: float, spreads: dict, priors: dict) -> Wanted:
    name = f"{model[0]} / {other[0]} ({model[1]})"
    if row.method != step_ratios.PAIRED:
        return Wanted(name, row.half_width, row.n, target, (model, other))
    spread, blocks = spreads.get((*model, *other), (math.nan, math.nan))
    prior = priors.get(model[1], moderation.NO_PRIOR)
    predicted = predicted_half_width(spread, blocks, row.n, prior)
    half_width = rule_half_width(predicted, row.half_width)
    return Wanted(name, half_width, row.n, target, (model,))


def _needs(method: str, model: tuple, other: tuple) -> tuple:
    if method == step_ratios.PAIRED:
        return (model,)
    return (model, other)


def choose(candidates: list, round_seconds, available: float) -> list:
    """The (recipe, api) pairs of the next round (``round_seconds(pairs)`` estimates a round):
    first every ratio measured in too few processes for an interval, those in fewest processes
    first and of them the one that adds fewest seconds to the round (``_fewest_then_cheapest``),
    each while the round still fits in the ``available`` seconds; then, of the others over
    their target, the one that buys most per second (``_worth``), then the next, each while the
    second part still fits in ``ROUND_SHARE`` of the time the first left, or in all of it where
    the round would otherwise be empty. Empty when none is over its target or none fits.

    Cheapest first: where the time left holds only some of the ratios without an interval, a
    round takes them greedily by cost, so that a process of minutes (JAX's on a CPU) does not
    take the place of a dozen runs of seconds (TensorFlow's), and the claims' recipes, listed
    last, are not the ones left with a single process. Fewest processes before that: a second
    process gives a ratio its first interval, a third only narrows one, so a JAX ratio with one
    process goes before a TensorFlow ratio with two, where the time holds it."""
    over = [candidate for candidate in candidates if candidate.priority > 1]
    unmeasured = [candidate for candidate in over if math.isinf(candidate.priority)]
    measured = [candidate for candidate in over if not math.isinf(candidate.priority)]
    chosen = _fill([], unmeasured, round_seconds, available, _fewest_then_cheapest)
    first = round_seconds(chosen) if chosen else 0.0
    chosen = _fill(chosen, measured, round_seconds, first + (available - first) * ROUND_SHARE)
    return chosen or _fill([], measured, round_seconds, available)


def _with(chosen: list, candidate: Wanted) -> list:
    return [*chosen, *(pair for pair in candidate.pairs if pair not in chosen)]


def _fill(chosen: list, candidates: list, round_seconds, limit: float, worth=None) -> list:
    """``chosen`` and, one at a time, the candidate worth most (``worth``, of the candidate and
    the seconds it adds: ``_worth`` unless given), while the round fits in ``limit`` seconds;
    ties go to the one listed first."""
    worth = worth or _worth
    remaining = list(candidates)
    while remaining:
        base = round_seconds(chosen) if chosen else 0.0
        best = None
        for candidate in remaining:
            extended = _with(chosen, candidate)
            seconds = round_seconds(extended)
            if seconds > limit:
                continue
            value = worth(candidate, seconds - base)
            if best is None or value > best[0]:
                best = (value, candidate, extended)
        if best is None:
            return chosen
        _, candidate, chosen = best
        remaining.remove(candidate)
    return chosen


def _fewest_then_cheapest(candidate: Wanted, seconds: float) -> tuple:
    """A ratio without an interval is worth more the fewer processes it has, then the fewer
    seconds its run adds to the round."""
    return (-candidate.n, -max(seconds, MIN_ROUND_SECONDS))


def _worth(candidate: Wanted, seconds: float) -> tuple:
    """What one more measurement of ``candidate`` buys per second it adds to a round: how far
    over its target it is, in log units, per second. Ties: the furthest over its target."""
    return (math.log(candidate.priority) / max(seconds, MIN_ROUND_SECONDS), candidate.priority)


@dataclass(frozen=True)
class Undecided:
    """A claim x API whose verdict interval still straddles a bound of the claim's range, and
    what deciding it would take at the spread measured."""

    row: object  # its claims.claim_table row
    processes: int  # more processes its ratio needs; 0 when no number of them can decide it
    seconds: float  # what the rule's rounds would take to give them; nan when it would not


def undecided(
    claim_rows: pd.DataFrame, candidates: list, costs: Costs, timed_only=frozenset()
) -> list:
    """Each inconclusive row of ``claim_rows``, with the processes its verdict interval needs to
    clear the nearer bound (its half-width shrinks as 1/sqrt(processes)) and the seconds of the
    rounds that would give them (the runs of the recipes in ``timed_only`` timed only): every
    ratio still over its target rides along, as the rule would take it. Seconds are nan where
    the ratio is at its target already (the rule spends nothing more on it) and both are 0 where
    the ratio lies on a bound."""
    over = [pair for wanted in candidates if wanted.priority > 1 for pair in wanted.pairs]
    found = []
    for row in claim_rows.itertuples(index=False):
        if row.verdict != claims.INCONCLUSIVE:
            continue
        processes = _processes_to_decide(row)
        pairs = _needs(row.method, (row.claim.recipe, row.api), (row.claim.baseline, row.api))
        if processes == 0 or not any(pair in over for pair in pairs):
            found.append(Undecided(row, processes, math.nan if processes else 0.0))
            continue
        seconds = costs.round_seconds([*over, *pairs], timed_only)
        found.append(Undecided(row, processes, processes * seconds))
    return found


def _processes_to_decide(row) -> int:
    """More processes for ``row``'s verdict interval to clear the nearer bound of its claim: the
    fewest for which the interval at the verdict's confidence (that of the interval that would
    decide it), with the spread its plain CI shows, is narrower than the distance to that bound
    (``MOST_PROCESSES`` at most)."""
    if not (row.n >= 2 and math.isfinite(row.ci_high)):
        return MIN_PROCESSES - int(row.n)
    center, n = math.log(row.ratio), int(row.n)
    distance = min(abs(center - math.log(bound)) for bound in row.claim.equivalence_range)
    if distance == 0:
        return 0
    # A bootstrap interval (no df) taken as a t-interval on its n runs.
    freedom = float(row.df) if math.isfinite(row.df) else float(n - 1)
    spread = (math.log(row.ci_high) - center) * math.sqrt(n) / estimators.t_quantile(freedom)
    for processes in range(n + 1, MOST_PROCESSES + 1):
        more = freedom + processes - n  # the prior's freedom stays, each process adds one
        margin = estimators.t_quantile(more, row.verdict_confidence) * spread
        if margin / math.sqrt(processes) < distance:
            return processes - n
    return MOST_PROCESSES - n
