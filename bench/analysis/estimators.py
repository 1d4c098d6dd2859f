"""The estimators: medians and ratios with bootstrap CIs, t-intervals on logs, runs to a target.

A ratio of two independent samples gets a 95% percentile-bootstrap CI (``scipy.stats.bootstrap``,
fixed ``random_state``: the same folder always gives the same report) and a Mann-Whitney U
two-sided p-value; per-process ratios of the paired design get the geometric mean with a 95%
t-interval on their logs (``log_t_interval``).
"""

import functools
import math

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
N_RESAMPLES = 9999
RANDOM_STATE = 0
PRECISION_TARGET = 0.02  # the target CI half-width of a ratio, relative to the ratio


def _median(sample, axis=-1):
    return np.median(sample, axis=axis)


def _ratio_of_medians(sample, reference, axis=-1):
    return np.median(sample, axis=axis) / np.median(reference, axis=axis)


def finite(values) -> np.ndarray:
    """``values`` as floats, without NaN and infinities."""
    values = np.asarray(values, dtype=float)
    return values[np.isfinite(values)]


def _bootstrap_ci(samples: tuple, statistic) -> tuple:
    """95% percentile-bootstrap CI; NaN when a sample has fewer than 2 values (no spread to
    resample).

    Percentile rather than BCa: with 3-5 runs BCa's acceleration estimate is erratic, and a sample
    of identical values gives a zero-width CI instead of a degenerate-data warning.
    """
    if min(len(sample) for sample in samples) < 2:
        return math.nan, math.nan
    result = stats.bootstrap(
        samples,
        statistic,
        vectorized=True,
        paired=False,
        confidence_level=CONFIDENCE,
        n_resamples=N_RESAMPLES,
        method="percentile",
        random_state=RANDOM_STATE,
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def median_ci(values) -> tuple:
    """(median, CI low, CI high) of the finite ``values``; all NaN when there are none."""
    sample = finite(values)
    if len(sample) == 0:
        return math.nan, math.nan, math.nan
    return (float(np.median(sample)), *_bootstrap_ci((sample,), _median))


def ratio_ci(values, reference_values) -> dict:
    """Ratio of medians of two independent samples with its CI, relative half-width and p-value."""
    sample, reference = finite(values), finite(reference_values)
    if len(sample) == 0 or len(reference) == 0:
        return {
            "ratio": math.nan,
            "ci_low": math.nan,
            "ci_high": math.nan,
            "half_width": math.nan,
            "p_value": math.nan,
        }
    ratio = float(_ratio_of_medians(sample, reference))
    low, high = _bootstrap_ci((sample, reference), _ratio_of_medians)
    p_value = float(stats.mannwhitneyu(sample, reference, alternative="two-sided").pvalue)
    return {
        "ratio": ratio,
        "ci_low": low,
        "ci_high": high,
        "half_width": (high - low) / 2 / ratio,
        "p_value": p_value,
    }


def repeats_needed(half_width: float, repeats: int, target: float = PRECISION_TARGET) -> int:
    """Repeats for a CI half-width of ``target``: the half-width shrinks ~1/sqrt(repeats)."""
    return math.ceil(repeats * (half_width / target) ** 2)


@functools.cache  # the budget's simulation asks for the same few quantiles thousands of times
def t_quantile(freedom: float, confidence: float = CONFIDENCE) -> float:
    """The two-sided t quantile of a ``confidence`` interval with ``freedom`` degrees (a moderated
    variance's need not be whole)."""
    return float(stats.t.ppf((1 + confidence) / 2, freedom))


def log_t_interval(ratios, confidence: float = CONFIDENCE) -> dict:
    """Geometric mean of per-process ratios with a t-interval at ``confidence`` (CONFIDENCE
    unless told), computed on their logs."""
    logs = np.log(finite(ratios))
    if len(logs) == 0:
        return {
            "ratio": math.nan,
            "ci_low": math.nan,
            "ci_high": math.nan,
            "half_width": math.nan,
            "n": 0,
        }
    center = float(np.mean(logs))
    if len(logs) < 2:
        low = high = math.nan
    else:
        margin = t_quantile(len(logs) - 1, confidence) * np.std(logs, ddof=1) / math.sqrt(len(logs))
        low, high = math.exp(center - margin), math.exp(center + margin)
    ratio = math.exp(center)
    return {
        "ratio": ratio,
        "ci_low": low,
        "ci_high": high,
        "half_width": (high - low) / 2 / ratio,
        "n": len(logs),
    }
