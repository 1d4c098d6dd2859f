"""Statistics of one results folder: pure functions over the ``runs.csv`` / ``epochs.csv`` frames.

Every run of a recipe x API is one sample (its ``ms_per_step`` is already the median over its
timed epochs), so uncertainty comes from run-to-run variation: medians and ratios of medians get
95% percentile-bootstrap CIs (``scipy.stats.bootstrap``, fixed ``random_state``: the same folder
always gives the same report), differences a Mann-Whitney U two-sided p-value.
"""
import math

import numpy as np
import pandas as pd
from scipy import stats

from bench import recipes
from bench.results import OK
from vae_impls import registry
from vae_impls.keras_api import comparable_apis

CONFIDENCE = 0.95
N_RESAMPLES = 9999
RANDOM_STATE = 0
PRECISION_TARGET = 0.02  # the target CI half-width of a ratio, relative to the ratio

# Quality guard: a recipe's median final loss may differ from the median of the other KL recipes'
# runs by at most the larger of these; more is not run-to-run noise but a different objective.
QUALITY_IQR_FACTOR = 3.0
QUALITY_RELATIVE_TOLERANCE = 0.05

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


def repeats_needed(half_width: float, repeats: int, target: float = PRECISION_TARGET) -> int:
    """Repeats for a CI half-width of ``target``: the half-width shrinks ~1/sqrt(repeats)."""
    return math.ceil(repeats * (half_width / target) ** 2)


def in_registry_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in registry recipe order, then API order, so every table reads the same way."""
    keys = [recipes.order_key(recipe, api) for recipe, api in zip(frame.recipe, frame.api)]
    return frame.iloc[sorted(range(len(frame)), key=keys.__getitem__)]


def _groups(frame: pd.DataFrame):
    """(recipe, api, rows) in registry order."""
    keys = in_registry_order(frame[["recipe", "api"]].drop_duplicates())
    for recipe, api in keys.itertuples(index=False):
        yield recipe, api, frame[(frame.recipe == recipe) & (frame.api == api)]


def ok_runs(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs.status == OK]


def _kl_recipes(names: pd.Series) -> pd.Series:
    return names.map(recipes.includes_kl).astype(bool)


def ms_per_step(runs: pd.DataFrame, recipe: str, api: str) -> pd.Series:
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


def floor_reference(speed: pd.DataFrame, api: str):
    """(recipe, api) of the floor a recipe on ``api`` is compared with, or None."""
    for reference_api in comparable_apis(api):
        if ((speed.recipe == registry.FLOOR) & (speed.api == reference_api)).any():
            return registry.FLOOR, reference_api
    return None


def fastest_reference(speed: pd.DataFrame, api: str):
    """(recipe, api) of the fastest KL recipe among ``api``'s references, or None.

    The floor is left out: the ratio to it is reported on its own.
    """
    pool = speed[speed.api.isin(comparable_apis(api)) & _kl_recipes(speed.recipe)].dropna(
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
            sample, reference_sample = ms_per_step(runs, recipe, api), ms_per_step(runs, *found)
            rows.append({"recipe": recipe, "api": api, "reference": reference, "reference_recipe": found[0],
                         "reference_api": found[1], "n": len(sample), "n_reference": len(reference_sample),
                         **ratio_ci(sample, reference_sample)})
    return pd.DataFrame(rows, columns=["recipe", "api", "reference", "reference_recipe", "reference_api", "n",
                                       "n_reference", "ratio", "ci_low", "ci_high", "half_width", "p_value"])


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
        others = ok.final_loss[ok.api.isin(comparable_apis(api)) & (ok.recipe != recipe) & _kl_recipes(ok.recipe)]
        flag = (quality_flag(row["final_loss_median"], others) if recipes.includes_kl(recipe)
                else (math.nan, math.nan, False))
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
    kl_epochs = epochs[epochs.run_id.isin(ok_ids) & _kl_recipes(epochs.recipe)]
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
