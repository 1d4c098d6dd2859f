"""The CI regression gate's decisions: a run's ratios to plain_ae against a committed baseline.

A ratio to the floor measured within one process cancels most of a machine's speed, so baselines
travel between machines. A recipe x API fails the gate when its ratio rose above baseline x
(1 + tolerance) and the rise is significant (its 95% CI lies wholly above the baseline ratio),
when it fails where the baseline says it works, when its final loss leaves the baseline's band,
or when the baseline has no entry for it.

A slowdown shared by every recipe, the floor included, leaves every ratio as it was. Where the
run timed the yardstick (``[training] yardstick``: a fixed computation that measures the
machine), the floor's ratio to it is checked against the baseline's: a ratio again, so it travels
between machines. And when the baseline was recorded on the same host as the run, the floor's own
ms/step is checked too, with its own (wider) tolerance: absolute times move more than ratios from
one run to the next.
"""

import math
from dataclasses import dataclass, field
from types import SimpleNamespace

import pandas as pd

from bench import recipes
from bench.analysis import estimators, quality_guard, selection, step_ratios, verdicts
from bench.analysis.baseline_file import run_summaries
from bench.errors import UsageError
from vae_impls import registry

DEFAULT_TOLERANCE = 0.06
DEFAULT_FLOOR_TOLERANCE = 0.25
# The allowed rise of the floor's ratio to the yardstick: below the 10% of a slowdown shared by
# every recipe, above what a machine 3x slower moves it by (docs/gate.md, measured).
DEFAULT_YARDSTICK_TOLERANCE = 0.08
RATIO_CHECK, FLOOR_CHECK = "ratio to floor", "floor ms/step"
YARDSTICK_CHECK = "floor / yardstick"
# Final losses may move by this much relative to the baseline's band before the gate objects.
LOSS_BAND_TOLERANCE = 0.05

PASS_VERDICTS = ("ok", "faster", "fails as before", "now works")
# What a decision's reason can be (``bench.report.gate_table`` words each).
NO_ENTRY, RUN_ERROR, NOW_WORKS = "no entry", "run error", "now works"
RATIO_ROSE, FASTER_NOW, NOT_IN_RUN = "ratio rose", "faster", "not in run"
LOSS_OUTSIDE_BAND, LOSS_UNMATCHED = "loss outside band", "loss unmatched"
FLOOR_ROSE, YARDSTICK_ROSE = "floor rose", "yardstick ratio rose"


@dataclass(frozen=True)
class Reason:
    """Why a decision went as it did, as data: its kind and the numbers its words need."""

    kind: str
    facts: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    recipe: str
    api: str
    baseline_ratio: float
    ratio: float
    ci_low: float
    ci_high: float
    ms_per_step: float
    baseline_ms_per_step: float
    verdict: str
    reason: Reason | None  # None: nothing to say (an ok check)
    check: str = RATIO_CHECK

    @property
    def passed(self) -> bool:
        return self.verdict in PASS_VERDICTS

    @property
    def change(self) -> float:
        return (
            self.ratio / self.baseline_ratio - 1
            if self.baseline_ratio and math.isfinite(self.ratio)
            else math.nan
        )


def floor_decisions(
    runs: pd.DataFrame, baseline: dict, tolerance: float = DEFAULT_FLOOR_TOLERANCE
) -> list:
    """The floor's own ms/step against the baseline's, per API: for a run on the baseline's host."""
    decisions = []
    for key, entry in baseline["entries"].items():
        recipe, api = key.split("/")
        if recipe != registry.FLOOR or not entry.get("ms_per_step"):
            continue
        median, low, high = (
            value / entry["ms_per_step"]
            for value in estimators.median_ci(selection.ms_per_step(runs, recipe, api))
        )
        regressed = verdicts.above(SimpleNamespace(ci_low=low), 1 + tolerance)
        why = Reason(FLOOR_ROSE, {"tolerance": tolerance}) if regressed else None
        decisions.append(
            Decision(
                recipe,
                api,
                1.0,
                median,
                low,
                high,
                median * entry["ms_per_step"],
                entry["ms_per_step"],
                "regression" if regressed else "ok",
                why,
                FLOOR_CHECK,
            )
        )
    return decisions


def yardstick_decisions(
    runs: pd.DataFrame,
    blocks: pd.DataFrame,
    baseline: dict,
    tolerance: float = DEFAULT_YARDSTICK_TOLERANCE,
) -> list:
    """The floor's ratio to the yardstick against the baseline's, per API that has both: a
    regression when it rose by more than ``tolerance`` and its CI lies wholly above the baseline's
    ratio (the rule of the recipes' ratios)."""
    decisions = []
    for api, ratio in step_ratios.yardstick_ratios(runs, blocks).items():
        entry = baseline["entries"].get(f"{registry.FLOOR}/{api}") or {}
        expected = entry.get("yardstick_ratio")
        if not expected:
            continue
        current = SimpleNamespace(**ratio)  # read as a ratio table's row
        regressed = verdicts.rose(current, expected, tolerance)
        why = Reason(YARDSTICK_ROSE, {"tolerance": tolerance}) if regressed else None
        decisions.append(
            Decision(
                registry.FLOOR,
                api,
                expected,
                current.ratio,
                current.ci_low,
                current.ci_high,
                float(selection.ms_per_step(runs, registry.FLOOR, api).median()),
                entry.get("ms_per_step") or math.nan,
                "regression" if regressed else "ok",
                why,
                YARDSTICK_CHECK,
            )
        )
    return decisions


def _loss_outside(band, final_loss: float) -> bool:
    low, high = band
    margin = LOSS_BAND_TOLERANCE * abs(high)
    return not (low - margin <= final_loss <= high + margin)


def _decide(entry, summary, ratio, final_loss, tolerance) -> tuple:
    if entry is None:
        return "no baseline", Reason(NO_ENTRY)
    if summary["status"] == "fails":
        error = Reason(RUN_ERROR, {"error": summary["error"]})
        return ("fails as before" if entry["status"] == "fails" else "new failure"), error
    if entry["status"] == "fails":
        return "now works", Reason(NOW_WORKS)
    if (
        ratio is not None
        and entry["ratio"] is not None
        and verdicts.rose(ratio, entry["ratio"], tolerance)
    ):
        return "regression", Reason(RATIO_ROSE, {"tolerance": tolerance})
    if (
        entry.get("final_loss")
        and math.isfinite(final_loss)
        and _loss_outside(entry["final_loss"], final_loss)
    ):
        band = {"final_loss": final_loss, "band": tuple(entry["final_loss"])}
        return "loss moved", Reason(LOSS_OUTSIDE_BAND, {**band, "margin": LOSS_BAND_TOLERANCE})
    if (
        ratio is not None
        and entry["ratio"] is not None
        and verdicts.fell(ratio, entry["ratio"], tolerance)
    ):
        return "faster", Reason(FASTER_NOW)
    return "ok", None


def decide(
    runs: pd.DataFrame,
    baseline: dict,
    tolerance: float = DEFAULT_TOLERANCE,
    blocks: pd.DataFrame = None,
) -> list:
    """One ``Decision`` per recipe x API of the run, plus one per baseline entry the run lacks."""
    if not tolerance > 0:
        raise UsageError(f"tolerance must be positive, got {tolerance}")
    entries, ratios, summaries = (
        baseline["entries"],
        step_ratios.floor_ratios(runs, blocks),
        run_summaries(runs),
    )
    unmatched = quality_guard.unmatched_losses(runs)
    decisions = []
    for (recipe, api), summary in summaries.items():
        entry, ratio = entries.get(f"{recipe}/{api}"), ratios.get((recipe, api))
        verdict, why = _decide(entry, summary, ratio, summary["median_final_loss"], tolerance)
        mismatch = unmatched[(unmatched.recipe == recipe) & (unmatched.api == api)]
        if verdict == "ok" and len(mismatch):
            first = mismatch.iloc[0]
            facts = {"final_loss": first.final_loss, "round": first["repeat"]}
            verdict, why = "loss moved", Reason(LOSS_UNMATCHED, {**facts, "closest": first.closest})
        decisions.append(
            Decision(
                recipe,
                api,
                baseline_ratio=(entry or {}).get("ratio") or math.nan,
                ratio=ratio.ratio if ratio is not None else math.nan,
                ci_low=ratio.ci_low if ratio is not None else math.nan,
                ci_high=ratio.ci_high if ratio is not None else math.nan,
                ms_per_step=summary["ms_per_step"],
                baseline_ms_per_step=(entry or {}).get("ms_per_step") or math.nan,
                verdict=verdict,
                reason=why,
            )
        )
    for key, entry in entries.items():
        recipe, api = key.split("/")
        if (recipe, api) not in summaries:
            decisions.append(
                Decision(
                    recipe,
                    api,
                    entry.get("ratio") or math.nan,
                    math.nan,
                    math.nan,
                    math.nan,
                    math.nan,
                    entry.get("ms_per_step") or math.nan,
                    "not run",
                    Reason(NOT_IN_RUN),
                )
            )
    return sorted(decisions, key=lambda decision: recipes.order_key(decision.recipe, decision.api))
