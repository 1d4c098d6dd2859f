"""The checks that KL recipes train one objective: final losses within noise, equal in a round."""

import math

import numpy as np
import pandas as pd

from bench import recipes
from bench.analysis.estimators import finite
from bench.analysis.selection import by_recipe_and_api, kl_recipes, ok_runs
from vae_impls.keras_api import comparable_apis

# Quality guard: a recipe's median final loss may differ from the median of the other KL recipes'
# runs by at most the larger of these; more is not run-to-run noise but a different objective.
QUALITY_IQR_FACTOR = 3.0
QUALITY_RELATIVE_TOLERANCE = 0.05

# Training is deterministic and identical within a round (same seed, weights, batches, noise), so
# KL recipes that compute the same objective end at the same final loss to float precision.
EXACT_LOSS_TOLERANCE = 1e-5  # relative


def quality_flag(value: float, others) -> tuple:
    """(reference, tolerance, flagged): is ``value`` beyond the noise of the ``others`` losses?

    reference = median of the others; tolerance = max(3 x their IQR, 5% of the reference).
    The others are the runs of the other KL recipes of the same API (for a port: also Keras 3's).
    """
    others = finite(others)
    if len(others) == 0 or not math.isfinite(value):
        return math.nan, math.nan, False
    reference = float(np.median(others))
    q1, q3 = np.percentile(others, [25, 75])
    tolerance = max(QUALITY_IQR_FACTOR * (q3 - q1), QUALITY_RELATIVE_TOLERANCE * abs(reference))
    return reference, tolerance, bool(abs(value - reference) > tolerance)


def _median_and_iqr(values) -> dict:
    sample = finite(values)
    if len(sample) == 0:
        return {"median": math.nan, "q1": math.nan, "q3": math.nan}
    q1, median, q3 = np.percentile(sample, [25, 50, 75])
    return {"median": median, "q1": q1, "q3": q3}


def unmatched_losses(runs: pd.DataFrame) -> pd.DataFrame:
    """KL runs whose final loss equals no other KL recipe's in their round: a recipe that trains
    something else. (Readings that fit on numpy arrays see other batches than the harness'
    pipeline, but the same ones as each other, so they match each other.)"""
    ok = ok_runs(runs)
    kl = ok[kl_recipes(ok.recipe) & ok.final_loss.notna()]
    rows = []
    for run in kl.itertuples():
        others = kl[
            (kl.repeat == run.repeat) & (kl.recipe != run.recipe) & (kl.variant == run.variant)
        ].final_loss
        if (
            len(others)
            and not np.isclose(others, run.final_loss, rtol=EXACT_LOSS_TOLERANCE, atol=0).any()
        ):
            rows.append(
                {
                    "recipe": run.recipe,
                    "api": run.api,
                    "repeat": run.repeat,
                    "final_loss": run.final_loss,
                    "closest": float(others.iloc[np.argmin(np.abs(others - run.final_loss))]),
                }
            )
    return pd.DataFrame(rows, columns=["recipe", "api", "repeat", "final_loss", "closest"])


def quality_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per recipe x API: final loss, BCE and KL (median, IQR) and the quality flag (KL recipes
    only)."""
    ok = ok_runs(runs)
    rows = []
    for recipe, api, group in by_recipe_and_api(ok):
        row = {"recipe": recipe, "api": api, "n": len(group)}
        for column in ("final_loss", "final_bce", "final_kl"):
            row.update(
                {f"{column}_{key}": value for key, value in _median_and_iqr(group[column]).items()}
            )
        others = ok.final_loss[
            ok.api.isin(comparable_apis(api)) & (ok.recipe != recipe) & kl_recipes(ok.recipe)
        ]
        flag = (
            quality_flag(row["final_loss_median"], others)
            if recipes.includes_kl(recipe)
            else (math.nan, math.nan, False)
        )
        row.update(zip(("reference", "tolerance", "flagged"), flag))
        rows.append(row)
    measures = [
        f"{column}_{key}"
        for column in ("final_loss", "final_bce", "final_kl")
        for key in ("median", "q1", "q3")
    ]
    return pd.DataFrame(
        rows, columns=["recipe", "api", "n", *measures, "reference", "tolerance", "flagged"]
    )
