"""The cost model in words: why each recipe costs what it does over its floor, from its counts.

``why_phrase`` words one ``RecipeCost`` (``bench.analysis.cost_model``) for the answer's "why"
column; ``cost_blocks`` is the report section "What the extra time is made of": per floor API,
each count's fit and each recipe's gap, its extra units and what one unit costs. This module
computes nothing: the numbers are the cost model's.
"""

import math

import pandas as pd

from bench.analysis import cost_model
from bench.analysis.cost_model import CostModel, CountFit, RecipeCost
from bench.formatting import MISSING, number, ratio_text, significant
from vae_impls.keras_api import API_LABELS

TITLE = "What the extra time is made of"
# What one unit of each count is, singular and plural.
UNIT_NAMES = {
    "graph_ops": ("operator", "operators"),
    "compiled_ops": ("compiled kernel", "compiled kernels"),
    "ops_convolutions": ("convolution", "convolutions"),
    "ops_matmul": ("matrix product", "matrix products"),
}
# The few letters a count's unit has where a row must stay short (the answer's why column).
SHORT_UNIT_NAMES = {"graph_ops": ("op", "ops"), "compiled_ops": ("kernel", "kernels")}
REGIME_TEXT = {
    cost_model.LAUNCH_BOUND: "this step is bound by launching operators, so every extra "
    "operation costs time whatever its size",
    cost_model.ARITHMETIC_BOUND: "this step is bound by arithmetic",
}
INTRO = (
    "Each floor API's recipes, fitted as: extra ms per step of fit over the floor (the paired "
    "ratio, less 1, times the floor's ms/step) = a per-unit cost x the units the recipe's traced "
    "step runs more than the floor's, one line per count through the floor's own point. A count "
    f"explains the gaps when its per-unit cost lies above 0 with its whole 95% CI and its R² is "
    f"at least {cost_model.EXPLAINS_R2:g}, or its misses are no larger than the gaps' own "
    "measurement noise (noise p >= 0.05; gaps near the noise leave any line a low R²). "
    "Operators explaining: the step is bound by launching them; convolutions or matrix products: "
    "by arithmetic. A recipe's gap is put down to the explaining count where its prediction lies "
    "in the gap's CI, within a factor of 2 of it, or within "
    f"{cost_model.NEGLIGIBLE:.0%} of the floor's step of it."
)


def unit_name(count: str, units: float = 2) -> str:
    singular, plural = UNIT_NAMES.get(count, (count, count))
    return singular if abs(units) == 1 else plural


def short_unit_name(count: str, units: float = 2) -> str:
    """``unit_name`` in its short form where it has one: 'ops'."""
    singular, plural = SHORT_UNIT_NAMES.get(count, UNIT_NAMES.get(count, (count, count)))
    return singular if abs(units) == 1 else plural


def unit_cost(ms: float) -> str:
    """A per-unit cost in µs below a millisecond, in ms above: '23 µs', '15.7 ms'."""
    if not math.isfinite(ms):
        return MISSING
    return f"{significant(ms * 1000)} µs" if abs(ms) < 1 else f"{significant(ms)} ms"


def _units_text(count: str, units: float) -> str:
    return f"{units:+.0f} {unit_name(count, units)}"


def _all_units(record: RecipeCost) -> str:
    return ", ".join(_units_text(count, units) for count, units in record.extra_units.items())


def why_phrase(record: RecipeCost) -> str:
    """One recipe's gap to the floor in words: the count that explains it and what one unit
    costs, or that no count explains it, or that there is no gap."""
    gap = (
        f"{record.extra_ms:+.1f} ms/step"
        if abs(record.extra_ms) >= 0.05
        else (f"{record.extra_ms * 1000:+.0f} µs/step")
    )
    if record.regime in REGIME_TEXT:
        if record.units:
            return (
                f"{_units_text(record.count, record.units)} per step at ~"
                f"{unit_cost(record.fit.unit_ms)} each ({_how_well(record.fit)}): "
                f"{REGIME_TEXT[record.regime]}"
            )
        return (
            f"no {unit_name(record.count, 1)} more than the floor, and no cost beyond noise "
            f"({gap}): {REGIME_TEXT[record.regime]}"
        )
    if record.regime == cost_model.NO_GAP:
        return f"no gap to the floor beyond noise ({gap})"
    if record.regime == cost_model.UNEXPLAINED and record.fit:
        return (
            f"{gap} that no count explains: its {_units_text(record.count, record.units)} at "
            f"~{unit_cost(record.fit.unit_ms)} each would cost {record.predicted_ms:+.1f} ms/step"
        )
    if record.regime == cost_model.UNEXPLAINED:
        return f"{gap} that no count explains ({_all_units(record)})"
    return f"{gap}; no per-step counts recorded on this backend"


def _how_well(fit: CountFit) -> str:
    """'R² 0.96', or with a low R² that the line misses the gaps by no more than their noise."""
    if fit.r_squared >= cost_model.EXPLAINS_R2:
        return f"R² {fit.r_squared:.2f}"
    return f"R² {fit.r_squared:.2f}, misses within the noise"


def cost_blocks(models: list) -> list:
    """The report section: the method, then per floor API its regime, fits and recipes."""
    if not models:
        return [("h2", TITLE), ("p", "No floor ran here: there is no gap to explain.")]
    blocks = [("h2", TITLE), ("p", INTRO)]
    for model in models:
        blocks.append(("p", regime_sentence(model)))
        if model.fits:
            blocks.append(("table", fits_table(model)))
        if model.recipes:
            blocks.append(("table", recipes_table(model)))
    return blocks


def regime_sentence(model: CostModel) -> str:
    """One floor API's regime in a sentence."""
    label = API_LABELS.get(model.floor_api, model.floor_api)
    floor = f"{label} (floor {number(model.floor_ms)} ms/step, {_floor_units(model)})"
    best = model.best
    if best is not None:
        return (
            f"{floor}: {unit_name(best.count)} explain the recipes' gaps, at "
            f"~{unit_cost(best.unit_ms)} each [{unit_cost(best.unit_ms_low)}, "
            f"{unit_cost(best.unit_ms_high)}], {_how_well(best)}: "
            f"{REGIME_TEXT[best.regime]}."
        )
    if model.regime == cost_model.NOT_COUNTED:
        return f"{floor}: no per-step counts recorded, so no count can explain a gap."
    return f"{floor}: no count explains the recipes' gaps."


def _floor_units(model: CostModel) -> str:
    return (
        ", ".join(
            f"{units:.0f} {unit_name(count, units)}" for count, units in model.floor_units.items()
        )
        or "no counts"
    )


def fits_table(model: CostModel) -> pd.DataFrame:
    return pd.DataFrame(
        [_fit_row(fit) for fit in model.fits],
        columns=["count", "per unit", "95% CI", "R²", "noise p", "recipes", "explains"],
    )


def _fit_row(fit: CountFit) -> list:
    return [
        unit_name(fit.count),
        unit_cost(fit.unit_ms),
        f"[{unit_cost(fit.unit_ms_low)}, {unit_cost(fit.unit_ms_high)}]",
        number(fit.r_squared, 2),
        significant(fit.noise_p) if math.isfinite(fit.noise_p) else MISSING,
        fit.points,
        "yes" if fit.explains else "no",
    ]


def recipes_table(model: CostModel) -> pd.DataFrame:
    rows = [
        [
            record.recipe,
            API_LABELS.get(record.api, record.api),
            ratio_text(_ratio_row(record)),
            number(record.extra_ms, 2),
            _all_units(record) or MISSING,
            number(record.predicted_ms, 2),
            record.regime,
        ]
        for record in model.recipes
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "recipe",
            "API",
            "ratio",
            "extra ms/step",
            "extra units",
            "predicted ms",
            "regime",
        ],
    )


def _ratio_row(record: RecipeCost):
    return pd.Series(
        {"ratio": record.ratio, "ci_low": record.ratio_low, "ci_high": record.ratio_high}
    )
