"""Statistics of one results folder: pure functions over its runs, epochs and blocks frames.

A ratio of step times (a KL recipe to the floor, a claim's recipe to its baseline) is measured
paired where it can be: the recipes of a round (and Keras package) share a worker process, and
each run times its train step back to back with those of its references in blocks (blocks.csv).
Each process gives one ratio, the median over its blocks of the block's ratio of median step
times (``process_ratios``), so a burst of other work that spans a few blocks is set aside, and
the blocks in which a neighbour came or went are left out first (``even_blocks``); the
ratio is the geometric mean of the processes' ratios with a 95% t-interval on their logs
(``log_t_interval``). Where the two recipes never shared a process (a Jupyter kernel reading, a
folder from before the blocks), each run is one sample (its median train step in its blocks, else
fit's ms/step) and the ratio of medians gets a 95% percentile-bootstrap CI
(``scipy.stats.bootstrap``, fixed ``random_state``: the same folder always gives the same report)
and a Mann-Whitney U two-sided p-value. ``ratio_between`` picks the method; ``METHODS`` words
both for the report.

Besides the ratios: medians of ms/step and first-epoch seconds with bootstrap CIs, processes whose
ratio lies far from their pair's (``outlier_runs``), the runs a CI half-width needs to reach the
precision target, the quality guard on final losses, the exact-loss check within a round, and the
time to a common loss level.
"""

import functools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from bench import recipes
from bench.results import contention
from bench.results.records import OK, OP_COUNT_COLUMNS, YARDSTICK
from vae_impls import registry
from vae_impls.keras_api import comparable_apis, floor_api

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
    sample = _finite(values)
    if len(sample) == 0:
        return math.nan, math.nan, math.nan
    return (float(np.median(sample)), *_bootstrap_ci((sample,), _median))


def ratio_ci(values, reference_values) -> dict:
    """Ratio of medians of two independent samples with its CI, relative half-width and p-value."""
    sample, reference = _finite(values), _finite(reference_values)
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


OP_COLUMNS = ["graph_ops", *OP_COUNT_COLUMNS.values(), "ops_convolutions"]


def own_step_ms(blocks: pd.DataFrame) -> pd.Series:
    """run_id -> the median of the run's own train-step times in its paired blocks, in ms."""
    if blocks is None or blocks.empty:
        return pd.Series(dtype=float)
    own = blocks[(blocks.model == blocks.recipe) & (blocks.model_api == blocks.api)]
    return own.groupby("run_id").seconds.median() * 1000


def speed_table(runs: pd.DataFrame, blocks: pd.DataFrame = None) -> pd.DataFrame:
    """Per recipe x API (ok runs): ms/step of fit and first-epoch seconds with CIs, the train step's
    time in the paired blocks, trace and op counts."""
    step_ms = own_step_ms(blocks)
    rows = []
    for recipe, api, group in _groups(ok_runs(runs)):
        ms, first = median_ci(group.ms_per_step), median_ci(group.first_epoch_seconds)
        rows.append(
            {
                "recipe": recipe,
                "api": api,
                "n": len(group),
                "ms_per_step": ms[0],
                "ms_low": ms[1],
                "ms_high": ms[2],
                "step_ms": step_ms.reindex(group.run_id).median(),
                "first_epoch_s": first[0],
                "first_epoch_low": first[1],
                "first_epoch_high": first[2],
                "trace_count": group.trace_count.median(),
                **{column: group[column].median() for column in OP_COLUMNS},
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "recipe",
            "api",
            "n",
            "ms_per_step",
            "ms_low",
            "ms_high",
            "step_ms",
            "first_epoch_s",
            "first_epoch_low",
            "first_epoch_high",
            "trace_count",
            *OP_COLUMNS,
        ],
    )


PAIRED, BOOTSTRAP = "paired", "bootstrap"
METHODS = {
    PAIRED: "paired in-process blocks (the recipes of a round and Keras package share a worker "
    "process); 95% t-interval on the log of the per-process ratios of median step times",
    BOOTSTRAP: "separate processes; 95% percentile bootstrap of the ratio of median step times "
    "over runs (a run's median train step in its paired blocks; fit's ms/step where a side has "
    "none)",
}
# What a ratio with its CI carries (``ratio_between``), and a row of the ratio table.
RATIO_FIELDS = ["ratio", "ci_low", "ci_high", "half_width", "method", "n", "p_value"]
RATIO_COLUMNS = ["recipe", "api", "compared_with", "compared_api", *RATIO_FIELDS]
OUTLIER_MADS = 5.0
OUTLIER_MAD_FLOOR = (
    0.01  # in log units: with 3-5 runs a MAD can be ~0, and "5 MADs" would flag 1% noise
)


def process_ratios(blocks: pd.DataFrame) -> pd.DataFrame:
    """Per run and every other model timed in its process: the median over the process's blocks of
    the block's ratio, the run's median step time in the block over the other model's. A block's
    models ran back to back, so a burst of other work that spans a few blocks touches both sides
    of those blocks' ratios and the median over blocks sets them aside."""
    columns = ["run_id", "recipe", "api", "repeat", "compared_with", "compared_api", "ratio"]
    ratios = block_ratios(blocks)
    if ratios.empty:
        return pd.DataFrame(columns=columns)
    return ratios.groupby(columns[:-1], as_index=False).ratio.median()[columns]


def block_ratios(blocks: pd.DataFrame) -> pd.DataFrame:
    """Per run, even block (``even_blocks``) and every other model timed in its process: the run's
    median step time in the block over the other model's. The yardstick is compared with the
    floor only: it measures the machine, not a recipe."""
    columns = ["run_id", "recipe", "api", "repeat", "block", "compared_with", "compared_api"]
    if blocks is None or blocks.empty:
        return pd.DataFrame(columns=[*columns, "ratio"])
    blocks = even_blocks(blocks.assign(process=process_of(blocks)))
    medians = blocks.groupby(
        ["process", "block", "model", "model_api"], as_index=False
    ).seconds.median()
    owners = blocks.loc[
        (blocks.model == blocks.recipe) & (blocks.model_api == blocks.api),
        ["run_id", "recipe", "api", "repeat", "process"],
    ].drop_duplicates()
    own = owners.merge(
        medians, left_on=["process", "recipe", "api"], right_on=["process", "model", "model_api"]
    )
    merged = own[["run_id", "recipe", "api", "repeat", "process", "block", "seconds"]].merge(
        medians, on=["process", "block"], suffixes=("_own", "")
    )
    merged = merged[(merged.model != merged.recipe) | (merged.model_api != merged.api)]
    merged = merged[(merged.model != YARDSTICK) | (merged.recipe == registry.FLOOR)]
    merged = merged.rename(columns={"model": "compared_with", "model_api": "compared_api"})
    return merged.assign(ratio=merged.seconds_own / merged.seconds)[[*columns, "ratio"]]


def set_aside_blocks(blocks: pd.DataFrame) -> pd.DataFrame:
    """(process, block) of each block its process's ratios leave out: a neighbour came or went in
    it (``contention.set_aside``). Blocks without pressure readings are never set aside."""
    if blocks is None or blocks.empty or "pressure_seconds" not in blocks:
        return pd.DataFrame(columns=["process", "block"])
    blocks = blocks.assign(process=process_of(blocks))
    found = [
        (process, block)
        for process, steps in blocks[blocks.pressure_seconds.notna()].groupby("process")
        for block in sorted(contention.set_aside(list(steps.itertuples(index=False))))
    ]
    return pd.DataFrame(found, columns=["process", "block"])


def even_blocks(blocks: pd.DataFrame) -> pd.DataFrame:
    """``blocks`` (with their ``process``) without the blocks ``set_aside_blocks`` names."""
    aside = set_aside_blocks(blocks)
    if aside.empty:
        return blocks
    keys = pd.MultiIndex.from_frame(blocks[["process", "block"]].astype({"block": int}))
    dropped = keys.isin(pd.MultiIndex.from_frame(aside.astype({"block": int})))
    return blocks[~dropped]


def or_empty(blocks) -> pd.DataFrame:
    return blocks if blocks is not None else pd.DataFrame()


def process_of(frame: pd.DataFrame) -> pd.Series:
    """Each row's worker process; a folder from before shared processes had one per run."""
    process = (
        frame["process"].astype(str) if "process" in frame else pd.Series("", index=frame.index)
    )
    return process.where(process != "", frame.run_id.astype(str))


def process_walls(runs: pd.DataFrame) -> pd.Series:
    """Wall seconds of each worker process (every run of a process records the process's)."""
    return runs.assign(process=process_of(runs)).groupby("process").wall_seconds.first()


@functools.cache  # the budget's simulation asks for the same few quantiles thousands of times
def t_quantile(freedom: int, confidence: float = CONFIDENCE) -> float:
    """The two-sided t quantile of a ``confidence`` interval with ``freedom`` degrees."""
    return float(stats.t.ppf((1 + confidence) / 2, freedom))


def log_t_interval(ratios, confidence: float = CONFIDENCE) -> dict:
    """Geometric mean of per-process ratios with a t-interval at ``confidence`` (CONFIDENCE
    unless told), computed on their logs."""
    logs = np.log(_finite(ratios))
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


@dataclass(frozen=True)
class Measured:
    """What every ratio of a folder is computed from: its runs, the per-process ratios of its
    paired measurement (``process_ratios``) and each run's own step time in its blocks
    (``own_step_ms``)."""

    runs: pd.DataFrame
    paired: pd.DataFrame
    step_ms: pd.Series

    @classmethod
    def of(cls, runs: pd.DataFrame, blocks: pd.DataFrame = None) -> "Measured":
        return cls(runs, process_ratios(or_empty(blocks)), own_step_ms(blocks))


def ratio_between(measured: Measured, model: tuple, other: tuple):
    """``model`` relative to ``other``, each a (recipe, api) pair: from the paired measurement
    when the two shared processes, else from separate processes, over each run's own step time
    in its blocks or, for a folder without them, fit's ms/step; None when neither has
    numbers."""
    runs, paired, step_ms = measured.runs, measured.paired, measured.step_ms
    (recipe, api), (other, other_api) = model, other
    mine = paired[
        (paired.recipe == recipe)
        & (paired.api == api)
        & (paired.compared_with == other)
        & (paired.compared_api == other_api)
        & paired.run_id.isin(ok_runs(runs).run_id)
    ]
    if len(mine):
        return {**log_t_interval(mine.ratio), "method": PAIRED, "p_value": math.nan}
    ok = ok_runs(runs)
    sides = [
        ok[(ok.recipe == name) & (ok.api == name_api)]
        for name, name_api in ((recipe, api), (other, other_api))
    ]
    if any(side.empty for side in sides):
        return None
    # Block step times where every run of both sides has them: ~20 steps each, without the
    # epoch-boundary cost a 5-step epoch carries.
    by_blocks = all(side.run_id.isin(step_ms.dropna().index).all() for side in sides)
    sample, reference = (
        step_ms.reindex(side.run_id) if by_blocks else side.ms_per_step for side in sides
    )
    return {**ratio_ci(sample, reference), "method": BOOTSTRAP, "n": len(sample)}


def ratio_table(runs: pd.DataFrame, blocks: pd.DataFrame = None) -> pd.DataFrame:
    """Each KL recipe x API's step time relative to its floor (plain_ae of the same Keras; for a
    port, Keras 3's); from separate processes for a folder without paired blocks."""
    measured = Measured.of(runs, blocks)
    rows = []
    for recipe, api, _ in _groups(ok_runs(runs)):
        if not recipes.includes_kl(recipe):
            continue
        floor = (registry.FLOOR, floor_api(api))
        found = ratio_between(measured, (recipe, api), floor)
        if found is not None:
            rows.append(
                {
                    "recipe": recipe,
                    "api": api,
                    "compared_with": floor[0],
                    "compared_api": floor[1],
                    **found,
                }
            )
    return pd.DataFrame(rows, columns=RATIO_COLUMNS)


def yardstick_ratios(runs: pd.DataFrame, blocks: pd.DataFrame = None) -> dict:
    """api -> the floor's step time relative to the yardstick's (``ratio_between``), for each API
    whose processes timed both: a ratio of the machine's speed out of it."""
    if blocks is None or blocks.empty:
        return {}
    measured = Measured.of(runs, blocks)
    apis = sorted(set(blocks.model_api[blocks.model == YARDSTICK]))
    floor = registry.FLOOR
    found = {api: ratio_between(measured, (floor, api), (YARDSTICK, api)) for api in apis}
    return {api: ratio for api, ratio in found.items() if ratio is not None}


def floor_ratios(runs: pd.DataFrame, blocks: pd.DataFrame = None) -> dict:
    """(recipe, api) -> its ``ratio_table`` row."""
    return {(row.recipe, row.api): row for row in ratio_table(runs, blocks).itertuples(index=False)}


def outlier_runs(blocks: pd.DataFrame) -> pd.DataFrame:
    """Processes whose ratio lies over ``OUTLIER_MADS`` median absolute deviations (of the logs)
    from the median of their pair's processes: a disturbed run, shown rather than hidden."""
    paired = process_ratios(blocks)
    rows = []
    for _, group in paired.groupby(["recipe", "api", "compared_with", "compared_api"]):
        logs = np.log(group.ratio.astype(float))
        center = float(np.median(logs))
        spread = max(float(np.median(np.abs(logs - center))), OUTLIER_MAD_FLOOR)
        distance = np.abs(logs - center) / spread
        for row, mads in zip(group.itertuples(index=False), distance):
            if mads > OUTLIER_MADS:
                rows.append({**row._asdict(), "pair_median": math.exp(center), "mads": float(mads)})
    return pd.DataFrame(rows, columns=[*paired.columns, "pair_median", "mads"])


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


# Training is deterministic and identical within a round (same seed, weights, batches, noise), so
# KL recipes that compute the same objective end at the same final loss to float precision.
EXACT_LOSS_TOLERANCE = 1e-5  # relative


def unmatched_losses(runs: pd.DataFrame) -> pd.DataFrame:
    """KL runs whose final loss equals no other KL recipe's in their round: a recipe that trains
    something else. (Readings that fit on numpy arrays see other batches than the harness'
    pipeline, but the same ones as each other, so they match each other.)"""
    ok = ok_runs(runs)
    kl = ok[_kl_recipes(ok.recipe) & ok.final_loss.notna()]
    rows = []
    for run in kl.itertuples():
        others = kl[
            (kl.repeat == run.repeat)
            & (kl.recipe != run.recipe)
            & (kl.get("variant", "") == getattr(run, "variant", ""))
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
    for recipe, api, group in _groups(ok):
        row = {"recipe": recipe, "api": api, "n": len(group)}
        for column in ("final_loss", "final_bce", "final_kl"):
            row.update(
                {f"{column}_{key}": value for key, value in _median_and_iqr(group[column]).items()}
            )
        others = ok.final_loss[
            ok.api.isin(comparable_apis(api)) & (ok.recipe != recipe) & _kl_recipes(ok.recipe)
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
        rows.append(
            {
                "recipe": recipe,
                "api": api,
                "level": levels[api],
                "n": len(reached),
                "n_reached": int(np.isfinite(seconds).sum()),
                "epoch": np.nanmedian(epoch_reached),
                "seconds": median,
                "seconds_low": low,
                "seconds_high": high,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "recipe",
            "api",
            "level",
            "n",
            "n_reached",
            "epoch",
            "seconds",
            "seconds_low",
            "seconds_high",
        ],
    )
