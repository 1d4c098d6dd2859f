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
from dataclasses import dataclass
from types import SimpleNamespace

import pandas as pd

from bench import recipes
from bench.analysis import estimators, quality_guard, selection, step_ratios
from bench.errors import UsageError, quoted
from bench.formatting import number, signed_percent, text_table, with_ci
from bench.results.env import VERSIONED, host_id
from bench.results.records import OK
from vae_impls import registry

DEFAULT_TOLERANCE = 0.06
DEFAULT_FLOOR_TOLERANCE = 0.25
# The allowed rise of the floor's ratio to the yardstick: below the 10% of a slowdown shared by
# every recipe, above what a machine 3x slower moves it by (docs/gate.md, measured).
DEFAULT_YARDSTICK_TOLERANCE = 0.08
RATIO_CHECK, FLOOR_CHECK = "ratio to floor", "floor ms/step"
YARDSTICK_CHECK = "floor / yardstick"
# What a baseline records of the run it came from, and names when the judged run differs.
VERSIONS = ("python", *VERSIONED)
# Final losses may move by this much relative to the baseline's band before the gate objects.
LOSS_BAND_TOLERANCE = 0.05
BASELINE_VERSION = 1

PASS_VERDICTS = ("ok", "faster", "fails as before", "now works")


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
    why: str
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


def _summaries(runs: pd.DataFrame) -> dict:
    """(recipe, api) -> status ("works"/"fails"), median ms/step and final-loss band of a run."""
    summaries = {}
    for (recipe, api), group in runs.groupby(["recipe", "api"], sort=False):
        ok = group[group["status"] == OK]
        summaries[recipe, api] = {
            "status": "works" if len(ok) else "fails",
            "ok_runs": len(ok),
            "error": "" if len(ok) else str(group["error"].iloc[0]),
            "ms_per_step": float(ok["ms_per_step"].median()) if len(ok) else math.nan,
            "final_loss": [float(ok["final_loss"].min()), float(ok["final_loss"].max())]
            if len(ok)
            else None,
            "median_final_loss": float(ok["final_loss"].median()) if len(ok) else math.nan,
        }
    return summaries


def _json_number(value):
    return None if value is None or not math.isfinite(value) else float(value)


def make_baseline(
    runs: pd.DataFrame,
    env: dict,
    sources: list = (),
    blocks: pd.DataFrame = None,
    settings_hash: str = None,
) -> dict:
    """The baseline file's content from the runs (and paired blocks) of one or more runs of the CI
    config (``sources``: their results folders' names); ``env`` is the first one's env.json."""
    ratios = step_ratios.floor_ratios(runs, blocks)
    yardsticks = step_ratios.yardstick_ratios(runs, blocks)
    entries = {}
    for (recipe, api), summary in _summaries(runs).items():
        ratio = ratios.get((recipe, api))
        yardstick = yardsticks.get(api) if recipe == registry.FLOOR else None
        entries[f"{recipe}/{api}"] = {
            **summary,
            **_yardstick_entry(yardstick),
            "ms_per_step": _json_number(summary["ms_per_step"]),
            "median_final_loss": _json_number(summary["median_final_loss"]),
            "ratio": None if ratio is None else _json_number(ratio.ratio),
            "ci": None
            if ratio is None
            else [_json_number(ratio.ci_low), _json_number(ratio.ci_high)],
        }
    machine = {key: env.get(key) for key in (*VERSIONS, "cpu", "gpu")}
    return {
        "version": BASELINE_VERSION,
        "machine": machine,
        "host": host_id(env),
        "config": env.get("config", {}).get("name"),
        "settings_hash": settings_hash,
        "git": env.get("git"),
        "sources": list(sources),
        "entries": entries,
    }


def _yardstick_entry(ratio) -> dict:
    """The floor's ratio to the yardstick, with its CI, for the floor's baseline entry."""
    if ratio is None:
        return {}
    return {
        "yardstick_ratio": _json_number(ratio["ratio"]),
        "yardstick_ci": [_json_number(ratio["ci_low"]), _json_number(ratio["ci_high"])],
    }


def differences(baseline: dict, env: dict, settings_hash: str) -> list:
    """What the run under judgement ran differently from the baseline's runs, one line each."""
    recorded = baseline.get("machine", {})
    found = [
        f"{package} {recorded.get(package)} in the baseline, {env.get(package)} here"
        for package in VERSIONS
        if recorded.get(package) != env.get(package)
    ]
    if baseline.get("settings_hash") and baseline["settings_hash"] != settings_hash:
        found.append(
            f"settings hash {baseline['settings_hash']} in the baseline, {settings_hash} here"
        )
    return found


def on_baseline_host(baseline: dict, env: dict) -> bool:
    """Whether ``env`` (a run's env.json) names the machine the baseline was measured on."""
    return bool(baseline.get("host")) and baseline.get("host") == host_id(env)


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
        regressed = math.isfinite(low) and low > 1 + tolerance
        why = (
            f"CI lower bound {low:.3f} x the baseline's ms/step > {1 + tolerance:.2f}"
            if regressed
            else ""
        )
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
        regressed = _rose(current, expected, tolerance)
        why = (
            f"ratio {current.ratio:.3f} > {expected:.3f} x {1 + tolerance:.2f}, CI lower bound "
            f"{current.ci_low:.3f} above the baseline: every step slower than the machine"
            if regressed
            else ""
        )
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


def check_baseline(baseline: dict, source: str) -> dict:
    if (
        not isinstance(baseline, dict)
        or baseline.get("version") != BASELINE_VERSION
        or "entries" not in baseline
    ):
        raise UsageError(
            f"{source} is not a kl-bench baseline (version {BASELINE_VERSION}); "
            "write one with: python -m bench check --update-baseline"
        )
    return _checked_entries(baseline, source)


def _checked_entries(baseline: dict, path: str) -> dict:
    """``baseline`` when every part the gate reads has the type it reads; a UsageError naming the
    first part that does not."""
    entries = baseline["entries"]
    if not isinstance(entries, dict) or not isinstance(baseline.get("machine", {}), dict):
        raise UsageError(f"{path} is not a kl-bench baseline: its entries or machine are no table")
    for key, entry in entries.items():
        if key.count("/") != 1 or not _is_entry(entry):
            raise UsageError(
                f"{path} is not a kl-bench baseline: its entry {quoted(key)} is not a RECIPE/API "
                f"key with a status, ratio, ms_per_step and final_loss band of the gate's types"
            )
    return baseline


def _is_entry(entry) -> bool:
    def is_number(value) -> bool:
        return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))

    if not isinstance(entry, dict) or entry.get("status") not in ("works", "fails"):
        return False
    if "ratio" not in entry:  # the gate reads it as entry["ratio"]
        return False
    band = entry.get("final_loss")
    good_band = band is None or (
        isinstance(band, list) and len(band) == 2 and all(is_number(end) for end in band)
    )
    return good_band and all(is_number(entry.get(key)) for key in ("ratio", "ms_per_step"))


def _loss_outside(band, final_loss: float) -> bool:
    low, high = band
    margin = LOSS_BAND_TOLERANCE * abs(high)
    return not (low - margin <= final_loss <= high + margin)


def _decide(entry, summary, ratio, final_loss, tolerance) -> tuple:
    if entry is None:
        return (
            "no baseline",
            "no baseline entry: review, then python -m bench check --update-baseline",
        )
    if summary["status"] == "fails":
        if entry["status"] == "fails":
            return "fails as before", summary["error"]
        return "new failure", summary["error"]
    if entry["status"] == "fails":
        return "now works", "failed in the baseline; update the baseline once reviewed"
    if ratio is not None and entry["ratio"] is not None and _rose(ratio, entry["ratio"], tolerance):
        return "regression", (
            f"ratio {ratio.ratio:.3f} > {entry['ratio']:.3f} x {1 + tolerance:.2f}, "
            f"CI lower bound {ratio.ci_low:.3f} above the baseline"
        )
    if (
        entry.get("final_loss")
        and math.isfinite(final_loss)
        and _loss_outside(entry["final_loss"], final_loss)
    ):
        low, high = entry["final_loss"]
        return (
            "loss moved",
            f"final loss {final_loss:.4f} outside baseline band [{low:.4f}, {high:.4f}] +-5%",
        )
    if (
        ratio is not None
        and entry["ratio"] is not None
        and _rose(ratio, entry["ratio"], -tolerance)
    ):
        return "faster", "ratio and CI below the baseline's: consider updating the baseline"
    return "ok", ""


def _rose(ratio, baseline_ratio: float, tolerance: float) -> bool:
    """Whether ``ratio`` moved past baseline x (1 + tolerance), upward for a positive tolerance and
    downward for a negative one, with its CI wholly on that side of the baseline."""
    if tolerance > 0:
        return ratio.ratio > baseline_ratio * (1 + tolerance) and ratio.ci_low > baseline_ratio
    return ratio.ratio < baseline_ratio * (1 + tolerance) and ratio.ci_high < baseline_ratio


def compare(
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
        _summaries(runs),
    )
    unmatched = quality_guard.unmatched_losses(runs)
    decisions = []
    for (recipe, api), summary in summaries.items():
        entry, ratio = entries.get(f"{recipe}/{api}"), ratios.get((recipe, api))
        verdict, why = _decide(entry, summary, ratio, summary["median_final_loss"], tolerance)
        mismatch = unmatched[(unmatched.recipe == recipe) & (unmatched.api == api)]
        if verdict == "ok" and len(mismatch):
            verdict, why = (
                "loss moved",
                (
                    f"final loss {mismatch.final_loss.iloc[0]:.6f} equals no other recipe's in "
                    f"round {mismatch.repeat.iloc[0]} (closest {mismatch.closest.iloc[0]:.6f})"
                ),
            )
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
                why=why,
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
                    "in the baseline but not in this run",
                )
            )
    return sorted(decisions, key=lambda decision: recipes.order_key(decision.recipe, decision.api))


def format_table(decisions: list) -> str:
    header = (
        "recipe",
        "API",
        "check",
        "baseline",
        "current [95% CI]",
        "change",
        "ms/step (baseline)",
        "verdict",
    )
    rows = []
    for d in decisions:
        current = with_ci(d.ratio, d.ci_low, d.ci_high, digits=3)
        ms = f"{number(d.ms_per_step)} ({number(d.baseline_ms_per_step)})"
        verdict = d.verdict + (f": {d.why}" if d.why and not d.passed else "")
        rows.append(
            (
                d.recipe,
                d.api,
                d.check,
                number(d.baseline_ratio, 3),
                current,
                signed_percent(d.change),
                ms,
                verdict,
            )
        )
    return text_table(header, rows)
