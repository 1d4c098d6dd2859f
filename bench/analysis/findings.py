"""What the report's sentences state, decided here and worded in ``bench.report``.

The fastest and the slowest KL recipe of each API where the intervals name one (and those tied
with it), how precise the ratios are against the
target, whether a gap to the floor survives every variant of a sweep, what a reading of post
VII's notebook changes in its traced train step, and whether the runs trained long enough for a
time to quality to mean anything. Each is returned as data; the report only words it.
"""

import dataclasses
import math
from dataclasses import dataclass

import pandas as pd

from bench.analysis import causes, estimators, step_times, verdicts
from bench.analysis.tables import side_by_side
from bench.results.env import env_value
from vae_impls import registry

# A gap to the floor worth naming: the CI's lower bound above this ratio.
GAP = 1.05
# Time to quality means something only after enough training: full passes over the data.
MIN_PASSES_FOR_QUALITY = 3
# What the notebook's readings are compared with, besides the floor: post VII's class.
CLASS_RECIPE = "model_add_loss"


# --- the fastest KL recipe ----------------------------------------------------------------------


# Two overlapping intervals are a tie only where both are at most this wide (half-width over the
# ratio): an overlap with a wide interval is not a tie, it tells the two apart from nothing.
TIE_HALF_WIDTH = 0.05


@dataclass(frozen=True)
class Extreme:
    """The KL recipe(s) the intervals name fastest (or slowest) on one API, and those they cannot
    tell from the leader; ``named`` is empty unless the intervals support a name."""

    named: pd.DataFrame  # the leader and every recipe tied with it; empty: none named
    unresolved: pd.DataFrame  # overlapping the leader's interval without a tie (wide, or no CI)

    @property
    def leader(self):
        """The row with the lowest (or highest) ratio, named or not; None without candidates."""
        frames = [frame for frame in (self.named, self.unresolved) if len(frame)]
        return frames[0].iloc[0] if frames else None


@dataclass(frozen=True)
class Fastest:
    """One API's KL recipes ranked by their ratio to the floor, and which of them the intervals
    name fastest and slowest."""

    api: str
    floor_speed: object  # the floor's speed_table row, or None where the floor has no runs
    ranked: pd.DataFrame  # ratio_table rows with a ratio, fastest first
    fastest: Extreme
    slowest: Extreme

    @property
    def tied(self) -> pd.DataFrame:
        """The recipes named fastest: the leader and those tied with it."""
        return self.fastest.named

    @property
    def one_process(self) -> bool:
        """Whether no ratio has an interval: each recipe measured in one process, which decides
        nothing (a quick run)."""
        return len(self.ranked) > 0 and not self.ranked.apply(_has_ci, axis=1).any()


def fastest_per_api(speed: pd.DataFrame, ratios: pd.DataFrame) -> list:
    """A ``Fastest`` for each API of ``speed`` (a speed_table), from ``ratios`` (a ratio_table)."""
    return [_fastest(api, speed, ratios) for api in dict.fromkeys(speed.api)]


def _fastest(api: str, speed: pd.DataFrame, ratios: pd.DataFrame) -> Fastest:
    ranked = ratios[ratios.api == api].dropna(subset=["ratio"]).sort_values("ratio")
    return Fastest(
        api,
        speed_row(speed, registry.FLOOR, verdicts.floor_api_of(api)),
        ranked,
        extreme(ranked, fastest=True),
        extreme(ranked.iloc[::-1], fastest=False),
    )


def _where(frame: pd.DataFrame, mask: list) -> pd.DataFrame:
    return frame[pd.Series(mask, index=frame.index, dtype=bool)]


def _has_ci(row) -> bool:
    return math.isfinite(row.ci_low) and math.isfinite(row.ci_high)


def _narrow(row) -> bool:
    return _has_ci(row) and (row.ci_high - row.ci_low) / 2 / row.ratio <= TIE_HALF_WIDTH


def extreme(ranked: pd.DataFrame, fastest: bool) -> Extreme:
    """The ``Extreme`` of ``ranked`` (ratio rows, the leader first): the leader is named where
    its interval exists and every interval overlapping it is a tie (both at most
    ``TIE_HALF_WIDTH`` wide); a recipe without an interval overlaps every other, and a leader
    without one is unresolved alone."""
    if ranked.empty:
        return Extreme(ranked, ranked)
    leader = ranked.iloc[0]
    others = ranked.iloc[1:]
    if not _has_ci(leader):
        return Extreme(ranked.iloc[:0], ranked.iloc[:1])
    apart = [
        _has_ci(row) and (row.ci_low > leader.ci_high if fastest else row.ci_high < leader.ci_low)
        for row in others.itertuples()
    ]
    overlapping = _where(others, [not separate for separate in apart])
    tied = [_narrow(leader) and _narrow(row) for row in overlapping.itertuples()]
    unresolved = _where(overlapping, [not tie for tie in tied])
    if len(unresolved):
        return Extreme(ranked.iloc[:0], pd.concat([ranked.iloc[:1], unresolved]))
    return Extreme(pd.concat([ranked.iloc[:1], overlapping]), unresolved)


# --- precision of the ratios --------------------------------------------------------------------


@dataclass(frozen=True)
class Precision:
    """The widest and the median CI half-width of the ratios, against
    ``estimators.PRECISION_TARGET``, and what reaching the target at the median would take."""

    widest: object  # the ratio row with the widest CI
    median: object  # the ratio row with the median half-width
    runs_needed: int  # for the median pair to reach the target; 0 when it already does
    hours_needed: float  # the rounds that would add them, in hours; NaN or 0: unknown

    @property
    def within_target(self) -> bool:
        return self.median.half_width <= estimators.PRECISION_TARGET

    @property
    def more_rounds(self) -> int:
        """The rounds of the whole matrix that would add ``runs_needed`` to the median pair's."""
        return max(self.runs_needed - int(self.median.n), 0)


def precision(ratios: pd.DataFrame, round_seconds: float = math.nan):
    """The ``Precision`` of ``ratios``, where one more round of the whole matrix takes
    ``round_seconds`` (``allocation.every_pair_round_seconds``); None when no ratio has a CI."""
    finite = ratios.dropna(subset=["half_width"])
    if finite.empty:
        return None
    widest = finite.loc[finite.half_width.idxmax()]
    median = finite.sort_values("half_width").iloc[len(finite) // 2]
    if median.half_width <= estimators.PRECISION_TARGET:
        return Precision(widest, median, 0, 0.0)
    needed = estimators.repeats_needed(median.half_width, int(median.n))
    found = Precision(widest, median, needed, math.nan)
    return dataclasses.replace(found, hours_needed=found.more_rounds * round_seconds / 3600)


# --- gaps across a sweep ------------------------------------------------------------------------


@dataclass(frozen=True)
class Gap:
    """A KL recipe's ratio to the floor at each variant of a sweep, and where its CI lies above
    ``GAP``."""

    recipe: str
    api: str
    rows: dict  # variant -> its ratio_table row, in the sweep's order

    @property
    def survives(self) -> dict:
        """variant -> whether the gap holds there: a CI whose lower bound lies above ``GAP``."""
        return {variant: verdicts.above(row, GAP) for variant, row in self.rows.items()}

    @property
    def everywhere(self) -> bool:
        return all(self.survives.values())

    @property
    def nowhere(self) -> bool:
        return not any(self.survives.values())

    @property
    def lost_at(self) -> list:
        """The variants where the gap does not hold."""
        return [variant for variant, kept in self.survives.items() if not kept]


def gaps(ratios: pd.DataFrame) -> list:
    """A ``Gap`` for each recipe x API of ``ratios``: ratio_tables stacked with a variant column."""
    return [Gap(recipe, api, rows) for recipe, api, rows in side_by_side(ratios, "variant")]


# --- why the notebook is slower -----------------------------------------------------------------

SLOWER, FASTER, SAME = "slower", "faster", "no difference"


@dataclass(frozen=True)
class Explanation:
    """A reading of the notebook against the variant it undoes: which way its CI lies, and the op
    counts by which its traced train step differs."""

    reading: object  # its reading_table row
    outcome: str  # SLOWER: the CI lies above 1, FASTER: below 1, SAME: it holds 1 or is unknown
    extra_ops: dict  # op column -> how many more ops than the variant's; only nonzero counts
    # Its layers against the variant's (``causes.compare_layers``); None where either has no scopes.
    layers: causes.LayerComparison | None = None

    @property
    def same_graph(self) -> bool:
        if self.layers is not None:
            return self.layers.same_graph
        return not self.extra_ops


def explain(reading, speed: pd.DataFrame, scopes: dict | None = None) -> Explanation:
    """The ``Explanation`` of one reading_table row, from the op counts in ``speed`` and, where
    ``scopes`` (recipe -> scoped op counts on the reading's API) has both, its layers'."""
    difference = op_difference(speed, reading.recipe, reading.undone, reading.api)
    extra = {
        column: value for column, value in difference.items() if value and math.isfinite(value)
    }
    mine, theirs = (scopes or {}).get(reading.recipe), (scopes or {}).get(reading.undone)
    layers = causes.compare_layers(mine, theirs, reading.undone) if mine and theirs else None
    return Explanation(reading, _outcome(reading), extra, layers)


def _outcome(row) -> str:
    if verdicts.slower(row):
        return SLOWER
    if verdicts.faster(row):
        return FASTER
    return SAME


def speed_row(speed: pd.DataFrame, recipe: str, api: str):
    """``recipe`` on ``api``'s row of a speed_table; None where it has no ok runs."""
    found = speed[(speed.recipe == recipe) & (speed.api == api)]
    return found.iloc[0] if len(found) else None


def op_difference(speed: pd.DataFrame, recipe: str, other: str, api: str) -> dict:
    """Op counts of ``recipe`` minus ``other``'s on ``api``, by column, where both have them."""
    mine, theirs = speed_row(speed, recipe, api), speed_row(speed, other, api)
    if mine is None or theirs is None:
        return {}
    return {column: mine[column] - theirs[column] for column in step_times.OP_COLUMNS}


def op_baselines(readings: pd.DataFrame) -> list:
    """(recipe, api) whose op counts the readings are compared with: on each API of theirs, post
    VII's class and the floor."""
    return [
        pair
        for api in dict.fromkeys(readings.api)
        for pair in ((CLASS_RECIPE, api), (registry.FLOOR, verdicts.floor_api_of(api)))
    ]


# --- time to quality ----------------------------------------------------------------------------


def trains_long_enough(env: dict) -> bool:
    """Whether the runs trained ``MIN_PASSES_FOR_QUALITY`` or more full passes over the data (env
    .json's config): only then does a loss level they reach say anything of convergence."""
    return (
        env_value(env, "config", "training", "steps_per_epoch") == 0
        and (env_value(env, "config", "training", "epochs") or 0) >= MIN_PASSES_FOR_QUALITY
    )
