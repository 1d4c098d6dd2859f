"""Statistics of one results folder: pure functions over the ``runs.csv`` / ``epochs.csv`` frames.

Every run of a recipe x API is one sample (its ``ms_per_step`` is already the median over its
timed epochs), so uncertainty comes from run-to-run variation: medians and ratios of medians get
95% percentile-bootstrap CIs (``scipy.stats.bootstrap``, fixed ``random_state``: the same folder
always gives the same report), differences a Mann-Whitney U two-sided p-value.
"""
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from vae_impls import registry
from vae_impls.keras_api import APIS

CONFIDENCE = 0.95
N_RESAMPLES = 9999
RANDOM_STATE = 0
PRECISION_TARGET = 0.02  # the target CI half-width of a ratio, relative to the ratio

# Quality guard: a recipe's median final loss may differ from the median of the other KL recipes'
# runs by at most the larger of these; more is not run-to-run noise but a different objective.
QUALITY_IQR_FACTOR = 3.0
QUALITY_RELATIVE_TOLERANCE = 0.05

NOT_RUN = "not run"


@dataclass(frozen=True)
class Claim:
    """A speed ratio the posts claim, with the posts' own GTX 960 numbers behind it."""
    recipe: str
    baseline: str
    low: float  # claimed ratio recipe/baseline of ms/step: low..high
    high: float  # math.inf for "at least low"
    post: str
    says: str
    posts_recipe_figure: str
    posts_baseline_figure: str


# The posts' claims and every figure they measured on their GTX 960: one table.
CLAIMS = (
    Claim("notebook_globals", "model_add_loss", 1.3, 1.5, "VII",
          "notebook globals are 1.3-1.5x slower than model.add_loss in a class",
          "'factor 1.5' slower (text: 1.3-1.5x), post VII",
          "~44 ms/step, 10 s/epoch at batch 256 (235 steps), post VII"),
    Claim("vae_loss_layer", "kl_layer", 1.36, 1.5, "IV",
          "the loss layer after the decoder is about 1.4x slower than the KL layer",
          "15 s/epoch, post IV",
          "10-11 s/epoch (post IV); 11 s/epoch, ~23 ms/step at batch 128 (469 steps), post V"),
    Claim("model_add_loss", "kl_layer", 0.9, 1.1, "VII",
          "model.add_loss is comparable to the KL layer",
          "~44 ms/step, 10 s/epoch at batch 256 (235 steps), post VII",
          "~23 ms/step, 11 s/epoch at batch 128 (469 steps), post V"),
)


def _median(sample, axis=-1):
    return np.median(sample, axis=axis)


def _ratio_of_medians(sample, reference, axis=-1):
    return np.median(sample, axis=axis) / np.median(reference, axis=axis)


def _finite(values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values[np.isfinite(values)]


def _bootstrap_ci(samples: tuple, statistic) -> tuple:
    """95% percentile-bootstrap CI; NaN when a sample has fewer than 2 values (no spread to resample).

    Percentile rather than BCa: with 3-5 runs BCa's acceleration estimate is erratic, and a sample
    of identical values gives a zero-width CI instead of a degenerate-data warning.
    """
    if min(len(sample) for sample in samples) < 2:
        return math.nan, math.nan
    result = stats.bootstrap(samples, statistic, vectorized=True, paired=False, confidence_level=CONFIDENCE,
                             n_resamples=N_RESAMPLES, method="percentile", random_state=RANDOM_STATE)
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def median_ci(values) -> tuple:
    """(median, CI low, CI high) of the finite ``values``; all NaN when there are none."""
    sample = _finite(values)
    if len(sample) == 0:
        return math.nan, math.nan, math.nan
    return (float(np.median(sample)), *_bootstrap_ci((sample,), _median))


def ratio_ci(values, reference_values) -> dict:
    """Ratio of medians of two independent samples with its CI, relative half-width and p-value."""
    sample, reference = _finite(values), _finite(reference_values)
    if len(sample) == 0 or len(reference) == 0:
        return {"ratio": math.nan, "ci_low": math.nan, "ci_high": math.nan, "half_width": math.nan,
                "p_value": math.nan}
    ratio = float(_ratio_of_medians(sample, reference))
    low, high = _bootstrap_ci((sample, reference), _ratio_of_medians)
    p_value = float(stats.mannwhitneyu(sample, reference, alternative="two-sided").pvalue)
    return {"ratio": ratio, "ci_low": low, "ci_high": high, "half_width": (high - low) / 2 / ratio,
            "p_value": p_value}


def verdict(ci_low: float, ci_high: float, claimed_low: float, claimed_high: float) -> str:
    """``reproduced`` when the CI lies inside the claimed range, ``not reproduced`` when it lies
    entirely outside it, else (overlap, or no CI) ``inconclusive``."""
    if claimed_low <= ci_low and ci_high <= claimed_high:
        return "reproduced"
    if ci_high < claimed_low or ci_low > claimed_high:
        return "not reproduced"
    return "inconclusive"


def repeats_needed(half_width: float, repeats: int, target: float = PRECISION_TARGET) -> int:
    """Repeats for a CI half-width of ``target``: the half-width shrinks ~1/sqrt(repeats)."""
    return math.ceil(repeats * (half_width / target) ** 2)


def _rank(sequence, item) -> int:
    return sequence.index(item) if item in sequence else len(sequence)


def _order(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in registry recipe order, then API order, so every table reads the same way."""
    key = frame.recipe.map(lambda recipe: _rank(list(registry.RECIPES), recipe)) * 10 + frame.api.map(
        lambda api: _rank(APIS, api))
    return frame.assign(_key=key).sort_values(["_key", "recipe"], kind="stable").drop(columns="_key")


def _groups(frame: pd.DataFrame):
    """(recipe, api, rows) in registry order."""
    keys = _order(frame[["recipe", "api"]].drop_duplicates())
    for recipe, api in keys.itertuples(index=False):
        yield recipe, api, frame[(frame.recipe == recipe) & (frame.api == api)]


def ok_runs(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs.status == "ok"]


def _is_kl_recipe(recipe):
    """For a name or, elementwise, a Series of names."""
    # The floor minimizes BCE alone: its loss and curves are not comparable with the KL recipes'.
    return recipe != registry.FLOOR


def _ms_per_step(runs: pd.DataFrame, recipe: str, api: str) -> pd.Series:
    ok = ok_runs(runs)
    return ok.ms_per_step[(ok.recipe == recipe) & (ok.api == api)]


def speed_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per recipe x API (ok runs): ms/step and first-epoch seconds with CIs, trace and op counts."""
    rows = []
    for recipe, api, group in _groups(ok_runs(runs)):
        ms, first = median_ci(group.ms_per_step), median_ci(group.first_epoch_seconds)
        rows.append({"recipe": recipe, "api": api, "n": len(group),
                     "ms_per_step": ms[0], "ms_low": ms[1], "ms_high": ms[2],
                     "first_epoch_s": first[0], "first_epoch_low": first[1], "first_epoch_high": first[2],
                     "trace_count": group.trace_count.median(), "graph_ops": group.graph_ops.median()})
    return pd.DataFrame(rows, columns=["recipe", "api", "n", "ms_per_step", "ms_low", "ms_high", "first_epoch_s",
                                       "first_epoch_low", "first_epoch_high", "trace_count", "graph_ops"])


def reference_apis(api: str) -> tuple:
    """APIs whose runs a recipe on ``api`` is compared with, in order of preference.

    A port is Keras 3 code, so it is compared with Keras 3 references too: the floor has no port.
    """
    return (api, "keras3") if api == "keras3-port" else (api,)


def floor_reference(speed: pd.DataFrame, api: str):
    """(recipe, api) of the floor a recipe on ``api`` is compared with, or None."""
    for reference_api in reference_apis(api):
        if ((speed.recipe == registry.FLOOR) & (speed.api == reference_api)).any():
            return registry.FLOOR, reference_api
    return None


def fastest_reference(speed: pd.DataFrame, api: str):
    """(recipe, api) of the fastest KL recipe among ``api``'s references, or None.

    The floor is left out: the ratio to it is reported on its own.
    """
    pool = speed[speed.api.isin(reference_apis(api)) & _is_kl_recipe(speed.recipe)].dropna(
        subset=["ms_per_step"])
    if pool.empty:
        return None
    fastest = pool.loc[pool.ms_per_step.idxmin()]
    return fastest.recipe, fastest.api


def ratio_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Each recipe x API's ms/step relative to the floor and to the fastest KL recipe of its API."""
    speed = speed_table(runs)
    rows = []
    for recipe, api in speed[["recipe", "api"]].itertuples(index=False):
        for reference, found in (("floor", floor_reference(speed, api)),
                                 ("fastest", fastest_reference(speed, api))):
            if found is None or found == (recipe, api):
                continue  # a recipe compared with itself says nothing
            sample, reference_sample = _ms_per_step(runs, recipe, api), _ms_per_step(runs, *found)
            rows.append({"recipe": recipe, "api": api, "reference": reference, "reference_recipe": found[0],
                         "reference_api": found[1], "n": len(sample), "n_reference": len(reference_sample),
                         **ratio_ci(sample, reference_sample)})
    return pd.DataFrame(rows, columns=["recipe", "api", "reference", "reference_recipe", "reference_api", "n",
                                       "n_reference", "ratio", "ci_low", "ci_high", "half_width", "p_value"])


def claim_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Each claim of ``CLAIMS`` on every API where both of its recipes have ok runs."""
    rows = []
    for claim in CLAIMS:
        for api in APIS:
            sample, reference = _ms_per_step(runs, claim.recipe, api), _ms_per_step(runs, claim.baseline, api)
            if sample.empty or reference.empty:
                continue
            ratio = ratio_ci(sample, reference)
            rows.append({"claim": claim, "api": api, "recipe_ms": sample.median(), "baseline_ms": reference.median(),
                         **ratio, "verdict": verdict(ratio["ci_low"], ratio["ci_high"], claim.low, claim.high)})
    return pd.DataFrame(rows, columns=["claim", "api", "recipe_ms", "baseline_ms", "ratio", "ci_low", "ci_high",
                                       "half_width", "p_value", "verdict"])


def quality_flag(value: float, others) -> tuple:
    """(reference, tolerance, flagged): is ``value`` beyond the noise of the ``others`` losses?

    reference = median of the others; tolerance = max(3 x their IQR, 5% of the reference).
    The others are the runs of the other KL recipes of the same API (for a port: also Keras 3's).
    """
    others = _finite(others)
    if len(others) == 0 or not math.isfinite(value):
        return math.nan, math.nan, False
    reference = float(np.median(others))
    q1, q3 = np.percentile(others, [25, 75])
    tolerance = max(QUALITY_IQR_FACTOR * (q3 - q1), QUALITY_RELATIVE_TOLERANCE * abs(reference))
    return reference, tolerance, bool(abs(value - reference) > tolerance)


def _median_and_iqr(values) -> dict:
    sample = _finite(values)
    if len(sample) == 0:
        return {"median": math.nan, "q1": math.nan, "q3": math.nan}
    q1, median, q3 = np.percentile(sample, [25, 50, 75])
    return {"median": median, "q1": q1, "q3": q3}


def quality_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per recipe x API: final loss, BCE and KL (median, IQR) and the quality flag (KL recipes only)."""
    ok = ok_runs(runs)
    rows = []
    for recipe, api, group in _groups(ok):
        row = {"recipe": recipe, "api": api, "n": len(group)}
        for column in ("final_loss", "final_bce", "final_kl"):
            row.update({f"{column}_{key}": value for key, value in _median_and_iqr(group[column]).items()})
        others = ok.final_loss[ok.api.isin(reference_apis(api)) & (ok.recipe != recipe) & _is_kl_recipe(ok.recipe)]
        flag = quality_flag(row["final_loss_median"], others) if _is_kl_recipe(recipe) else (math.nan, math.nan, False)
        row.update(zip(("reference", "tolerance", "flagged"), flag))
        rows.append(row)
    measures = [f"{column}_{key}" for column in ("final_loss", "final_bce", "final_kl")
                for key in ("median", "q1", "q3")]
    return pd.DataFrame(rows, columns=["recipe", "api", "n", *measures, "reference", "tolerance", "flagged"])


def time_to_level(run_epochs: pd.DataFrame, level: float) -> tuple:
    """(epoch, cumulative seconds incl. warm-up) at which the epoch-mean loss first is <= level."""
    curve = run_epochs.sort_values("epoch")
    reached = (curve.loss <= level).to_numpy()
    if not reached.any():
        return math.nan, math.nan
    first = int(np.argmax(reached))
    return float(curve.epoch.iloc[first]), float(curve.seconds.cumsum().iloc[first])


def time_to_quality_table(runs: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """Seconds until each KL recipe reaches its API's common loss level.

    The level is the highest last-epoch loss of any ok KL run of that API, so every run reaches it.
    """
    ok_ids = ok_runs(runs).run_id
    kl_epochs = epochs[epochs.run_id.isin(ok_ids) & _is_kl_recipe(epochs.recipe)]
    levels = kl_epochs.sort_values("epoch").groupby("run_id").tail(1).groupby("api").loss.max()
    rows = []
    for recipe, api, group in _groups(kl_epochs):
        reached = [time_to_level(run, levels[api]) for _, run in group.groupby("run_id")]
        epoch_reached, seconds = (np.array(values) for values in zip(*reached))
        median, low, high = median_ci(seconds)
        rows.append({"recipe": recipe, "api": api, "level": levels[api], "n": len(reached),
                     "n_reached": int(np.isfinite(seconds).sum()), "epoch": np.nanmedian(epoch_reached),
                     "seconds": median, "seconds_low": low, "seconds_high": high})
    return pd.DataFrame(rows, columns=["recipe", "api", "level", "n", "n_reached", "epoch", "seconds",
                                       "seconds_low", "seconds_high"])


def _registry_status(recipe: str, api: str) -> str:
    try:
        return registry.status(recipe, api)
    except (registry.UnknownRecipe, ValueError):
        return "unknown"


def expected_pairs(runs: pd.DataFrame, matrix: dict = None) -> list:
    """The recipe x API pairs the config asked for (env.json's [matrix]: every pair with a variant,
    as the runner plans them), else the pairs the folder has runs of."""
    if matrix and matrix.get("recipes") and matrix.get("apis"):
        return [(recipe, api) for recipe in matrix["recipes"] for api in matrix["apis"]
                if _registry_status(recipe, api) != registry.NOT_APPLICABLE]
    return list(dict.fromkeys(zip(runs.recipe, runs.api)))


def _observed(group: pd.DataFrame) -> tuple:
    """(status, error) seen for one recipe x API: ok if any run was, else the first problem."""
    if group.empty:
        return NOT_RUN, ""
    if (group.status == "ok").any():
        return "ok", ""
    first = group.iloc[0]
    return first.status, first.error


def _cell(expected: str, observed: str, api: str) -> str:
    if observed == "failed":
        return registry.FAILS
    if expected == registry.WORKS and api == "keras3-port":
        return "port"
    return expected


def compatibility(runs: pd.DataFrame, matrix: dict = None) -> pd.DataFrame:
    """Every registry recipe x the APIs run or asked for: the registry's status, what the runs showed
    (``not run`` for an expected pair without runs, "" for a pair nobody asked for) and the cell
    shown: works / fails / port / n/a, where an observed failure overrides the registry."""
    expected_set = set(expected_pairs(runs, matrix))
    recipes = list(dict.fromkeys([*registry.RECIPES, *runs.recipe]))
    used_apis = set(runs.api) | {api for _, api in expected_set}
    # a folder without runs still gets the registry's whole matrix
    apis = [api for api in APIS if api in used_apis] + sorted(used_apis - set(APIS)) or list(APIS)
    rows = []
    for recipe in recipes:
        for api in apis:
            expected = _registry_status(recipe, api)
            observed, error = _observed(runs[(runs.recipe == recipe) & (runs.api == api)])
            if observed == NOT_RUN and (recipe, api) not in expected_set:
                observed = ""
            cell = _cell(expected, observed, api)
            if not error and cell == registry.FAILS and recipe in registry.RECIPES:
                error = registry.RECIPES[recipe].expected_errors.get(api, "")
            rows.append({"recipe": recipe, "api": api, "expected": expected, "observed": observed, "cell": cell,
                         "error": error})
    return pd.DataFrame(rows, columns=["recipe", "api", "expected", "observed", "cell", "error"])


def _expected_repeats(recipe: str, api: str, repeats: int, matrix: dict = None) -> int:
    once = _registry_status(recipe, api) == registry.FAILS and not (matrix or {}).get("repeat_expected_failures")
    return min(repeats, 1) if once else repeats


def unfinished_runs(runs: pd.DataFrame, matrix: dict = None) -> pd.DataFrame:
    """Runs that did not finish ok, and expected runs (pair x repeat) missing from the folder.

    Repeats expected: the matrix's ``repeats``, else the highest repeat number in the folder; pairs
    that fail as written are expected in round 1 only unless ``repeat_expected_failures`` is set.
    """
    failed = runs.loc[runs.status != "ok", ["recipe", "api", "repeat", "status", "error"]]
    repeats = (matrix or {}).get("repeats") or runs.repeat.max()
    repeats = int(repeats) if pd.notna(repeats) else 0
    present = set(zip(runs.recipe, runs.api, runs.repeat))
    missing = pd.DataFrame([{"recipe": recipe, "api": api, "repeat": repeat, "status": NOT_RUN, "error": ""}
                            for recipe, api in expected_pairs(runs, matrix)
                            for repeat in range(1, _expected_repeats(recipe, api, repeats, matrix) + 1)
                            if (recipe, api, repeat) not in present], columns=failed.columns)
    return _order(pd.concat([failed, missing], ignore_index=True))
