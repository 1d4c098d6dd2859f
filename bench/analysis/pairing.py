"""The paired design: block and process ratios from blocks.csv, blocks set aside, outliers.

The recipes of a round (and Keras package) share a worker process, and each run times its train
step back to back with those of its references in blocks. Each process gives one ratio, the
median over its blocks of the block's ratio of median step times (``process_ratios``), so a burst
of other work that spans a few blocks is set aside, and the blocks in which a neighbour came or
went are left out first (``even_blocks``).
"""

import math

import numpy as np
import pandas as pd

from bench.results import contention
from bench.results.records import YARDSTICK
from vae_impls import registry

OUTLIER_MADS = 5.0
OUTLIER_MAD_FLOOR = (
    0.01  # in log units: with 3-5 runs a MAD can be ~0, and "5 MADs" would flag 1% noise
)


def own_step_ms(blocks: pd.DataFrame) -> pd.Series:
    """run_id -> the median of the run's own train-step times in its paired blocks, in ms."""
    if blocks is None or blocks.empty:
        return pd.Series(dtype=float)
    own = blocks[(blocks.model == blocks.recipe) & (blocks.model_api == blocks.api)]
    return own.groupby("run_id").seconds.median() * 1000


def process_ratios(blocks: pd.DataFrame) -> pd.DataFrame:
    """Per run and every other model timed in its process: the median over the process's blocks of
    the block's ratio, the run's median step time in the block over the other model's. A block's
    models ran back to back, so a burst of other work that spans a few blocks touches both sides
    of those blocks' ratios and the median over blocks sets them aside."""
    return process_ratios_of(block_ratios(blocks))


def process_ratios_of(ratios: pd.DataFrame) -> pd.DataFrame:
    """``process_ratios`` from the ``block_ratios`` already computed."""
    columns = ["run_id", "recipe", "api", "repeat", "compared_with", "compared_api", "ratio"]
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
    blocks = even_blocks(blocks)
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
    if blocks is None or blocks.empty:
        return pd.DataFrame(columns=["process", "block"])
    found = [
        (process, block)
        for process, steps in blocks[blocks.pressure_seconds.notna()].groupby("process")
        for block in sorted(contention.set_aside(list(steps.itertuples(index=False))))
    ]
    return pd.DataFrame(found, columns=["process", "block"])


def even_blocks(blocks: pd.DataFrame) -> pd.DataFrame:
    """``blocks`` without the blocks ``set_aside_blocks`` names."""
    aside = set_aside_blocks(blocks)
    if aside.empty:
        return blocks
    keys = pd.MultiIndex.from_frame(blocks[["process", "block"]].astype({"block": int}))
    dropped = keys.isin(pd.MultiIndex.from_frame(aside.astype({"block": int})))
    return blocks[~dropped]


def or_empty(blocks) -> pd.DataFrame:
    return blocks if blocks is not None else pd.DataFrame()


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
