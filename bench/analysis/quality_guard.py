"""The checks that KL recipes train one objective: final losses within noise, equal in a round."""

import math
from collections import Counter

import numpy as np
import pandas as pd

from bench import recipes
from bench.analysis import verdicts
from bench.analysis.estimators import finite
from bench.analysis.selection import by_recipe_and_api, kl_recipes, ok_runs, trained
from vae_impls import keras_api, registry
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


# The within-round check's outcome for one KL run (``round_checks``).
SAME_LOSS = "same loss"  # its final loss equals another compared recipe's
OUTLIER = "outlier"  # equals none, while two or more others agree with each other: named
UNDECIDED = "undecided"  # equals none, and no two others agree: which is wrong is not known
ALONE = "alone"  # no other KL recipe of its round draws noise as it does: compared with none
OTHER_NOISE = "other noise"  # draws its noise differently from the round's others: not compared
# What said that a run draws its noise differently.
DRAWS_COUNTED = "draws counted"  # runs.csv's noise_draws, counted during fit
NOISE_FROM_ENCODER_TWICE = (
    "encoder twice"  # inferred: verdicts.encoder_twice against the floor's step
)
# The shared network's sampling layer draws once per train step.
ONE_DRAW = 1.0

CHECK_COLUMNS = [
    "recipe",
    "api",
    "keras",  # the Keras and backend of its round's comparison (``_keras_of``)
    "variant",
    "repeat",  # the round, an integer
    "final_loss",
    "check",  # one of SAME_LOSS, OUTLIER, UNDECIDED, ALONE, OTHER_NOISE
    "closest",  # OUTLIER: the nearest loss of an agreeing group; UNDECIDED: of any other
    "agreeing",  # OUTLIER: how many runs that nearest agreeing group holds
    "noise_draws",  # sampling draws per train step (NaN: not counted)
    "usual_draws",  # the draws per step of most of its round's recipes (NaN: not counted)
    "noise_basis",  # OTHER_NOISE: DRAWS_COUNTED or NOISE_FROM_ENCODER_TWICE; "" otherwise
]


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=EXACT_LOSS_TOLERANCE, abs_tol=0.0)


def _keras_of(api: str) -> str:
    """The Keras and backend a run trained with: ports train beside the as-written runs of their
    backend, with the same seeds, so the two are compared; an unknown API is its own."""
    return keras_api.process_group(api) if api in keras_api.APIS else api


def usual_draws(draws) -> float:
    """The draws per step most of a round's runs counted (a tie: one draw, the shared sampling
    layer's, where tied, else the fewest); NaN where none counted."""
    counted = Counter(float(value) for value in finite(draws))
    if not counted:
        return math.nan
    most = max(counted.values())
    tied = [value for value, count in counted.items() if count == most]
    return ONE_DRAW if ONE_DRAW in tied else min(tied)


def agreement_groups(losses: dict) -> list:
    """Runs (keys of ``losses``) grouped by final loss: each loss within EXACT_LOSS_TOLERANCE of
    the next one in order joins its group; largest group first."""
    ordered = sorted(losses, key=losses.get)
    groups = []
    for key in ordered:
        if groups and _same(losses[groups[-1][-1]], losses[key]):
            groups[-1].append(key)
        else:
            groups.append([key])
    return sorted(groups, key=len, reverse=True)


def _nearest(value: float, others) -> float:
    others = np.asarray(list(others), dtype=float)
    return float(others[np.argmin(np.abs(others - value))]) if len(others) else math.nan


class _EncoderVerdicts:
    """``verdicts.encoder_twice`` of each recipe x API against its floor, asked once each."""

    def __init__(self, runs: pd.DataFrame, encoder_layers: int):
        self.runs, self.encoder_layers, self.known = runs, encoder_layers, {}

    def twice(self, recipe: str, api: str) -> bool:
        if (recipe, api) not in self.known:
            mine = verdicts.step_counts(self.runs, recipe, api)
            floor = verdicts.step_counts(self.runs, registry.FLOOR, verdicts.floor_api_of(api))
            self.known[recipe, api] = bool(verdicts.encoder_twice(mine, floor, self.encoder_layers))
        return self.known[recipe, api]


def _check_round(group: pd.DataFrame, encoder: _EncoderVerdicts) -> list:
    """The rows of one round's KL runs of one Keras and backend (``round_checks``)."""
    usual = usual_draws(group.noise_draws)
    runs = {run.Index: run for run in group.itertuples()}
    other_noise = {
        key: DRAWS_COUNTED
        for key, run in runs.items()
        if math.isfinite(run.noise_draws) and math.isfinite(usual) and run.noise_draws != usual
    }
    compared = {key: run.final_loss for key, run in runs.items() if key not in other_noise}
    # Not counted: a run whose encoder runs twice (so its sampling layer draws twice) and whose
    # loss equals no other's is taken to draw its noise differently.
    for key in list(compared):
        run = runs[key]
        alone = not any(_same(run.final_loss, loss) for k, loss in compared.items() if k != key)
        if not math.isfinite(run.noise_draws) and alone and encoder.twice(run.recipe, run.api):
            other_noise[key] = NOISE_FROM_ENCODER_TWICE
            del compared[key]
    checks = {key: (OTHER_NOISE, math.nan, math.nan) for key in other_noise}
    for key, loss in compared.items():
        others = {k: other for k, other in compared.items() if k != key}
        agreeing = [group for group in agreement_groups(others) if len(group) >= 2]
        if not others:
            checks[key] = (ALONE, math.nan, math.nan)
        elif any(_same(loss, other) for other in others.values()):
            checks[key] = (SAME_LOSS, math.nan, math.nan)
        elif agreeing:
            nearest = min(agreeing, key=lambda group: abs(others[group[0]] - loss))
            closest = _nearest(loss, (others[k] for k in nearest))
            checks[key] = (OUTLIER, closest, len(nearest))
        else:
            checks[key] = (UNDECIDED, _nearest(loss, others.values()), math.nan)
    return [
        {
            "recipe": run.recipe,
            "api": run.api,
            "keras": run.keras,
            "variant": run.variant,
            "repeat": int(run.repeat),
            "final_loss": run.final_loss,
            "check": checks[key][0],
            "closest": checks[key][1],
            "agreeing": checks[key][2],
            "noise_draws": run.noise_draws,
            "usual_draws": usual,
            "noise_basis": other_noise.get(key, ""),
        }
        for key, run in runs.items()
    ]


def round_checks(
    runs: pd.DataFrame, encoder_layers: int = verdicts.DEFAULT_ENCODER_CONVOLUTIONS
) -> pd.DataFrame:
    """Each ok KL run's final loss against the other KL recipes' of its round (one seed, one
    start, one noise stream), on its Keras and backend: they train one objective, so they end at
    the same loss to EXACT_LOSS_TOLERANCE.

    Like is compared with like: a run whose sampling layer draws noise a different number of
    times per step than most of its round's (counted during fit; where not counted, an encoder
    that runs twice and a loss that equals no other's) follows other noise after the first step
    and is not compared (OTHER_NOISE). A run whose loss equals no other's is named (OUTLIER) only
    when at least two of the others agree with each other; otherwise (one against one, or all
    apart) it is UNDECIDED, and a run with no other to compare with is ALONE. (Readings that fit
    on numpy arrays see other batches than the harness' pipeline, but the same ones as each
    other, so they match each other.) ``encoder_layers``: the encoder's convolution layers
    (``verdicts.encoder_twice``)."""
    ok = ok_runs(runs)
    kl = ok[kl_recipes(ok.recipe) & ok.final_loss.notna()]
    if kl.empty:
        return pd.DataFrame(columns=CHECK_COLUMNS)
    kl = kl.assign(keras=kl.api.map(_keras_of))
    if "noise_draws" not in kl:
        kl = kl.assign(noise_draws=math.nan)
    encoder = _EncoderVerdicts(runs, encoder_layers)
    rows = []
    for _, group in kl.groupby(["variant", "keras", "repeat"], sort=False):
        rows += _check_round(group, encoder)
    return pd.DataFrame(rows, columns=CHECK_COLUMNS)


def unmatched_losses(runs: pd.DataFrame) -> pd.DataFrame:
    """The KL runs ``round_checks`` names (OUTLIER): a final loss equal to no other's while
    others agree, a recipe that trains something else (the CI gate fails them)."""
    checks = round_checks(runs)
    return checks[checks.check == OUTLIER][["recipe", "api", "repeat", "final_loss", "closest"]]


def quality_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per recipe x API: final loss, BCE and KL (median, IQR) and the quality flag (KL recipes
    only).

    ``beyond_noise``: the median lies beyond ``quality_flag``'s tolerance of the other KL
    recipes'; ``flagged``: besides, at least two of those other recipes' medians lie within it,
    so the recipe is named only against others that agree (one against one names neither).
    ``compared``: how many other KL recipes it was compared with."""
    ok = ok_runs(runs)
    rows = []
    for recipe, api, group in by_recipe_and_api(ok):
        row = {"recipe": recipe, "api": api, "n": len(group), "trained": int(trained(group).sum())}
        for column in ("final_loss", "final_bce", "final_kl"):
            row.update(
                {f"{column}_{key}": value for key, value in _median_and_iqr(group[column]).items()}
            )
        others = ok[
            ok.api.isin(comparable_apis(api)) & (ok.recipe != recipe) & kl_recipes(ok.recipe)
        ]
        if recipes.includes_kl(recipe):
            reference, tolerance, beyond = quality_flag(row["final_loss_median"], others.final_loss)
            medians = finite(others.groupby("recipe").final_loss.median())
            agreeing = int(np.sum(np.abs(medians - reference) <= tolerance))
            compared = len(medians)
        else:
            reference, tolerance, beyond, agreeing, compared = math.nan, math.nan, False, 0, 0
        row.update(
            reference=reference,
            tolerance=tolerance,
            compared=compared,
            beyond_noise=beyond,
            flagged=beyond and agreeing >= 2,
        )
        rows.append(row)
    measures = [
        f"{column}_{key}"
        for column in ("final_loss", "final_bce", "final_kl")
        for key in ("median", "q1", "q3")
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "recipe",
            "api",
            "n",
            "trained",
            *measures,
            "reference",
            "tolerance",
            "compared",
            "beyond_noise",
            "flagged",
        ],
    )
