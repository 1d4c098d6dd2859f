"""Time to quality: the seconds each KL recipe takes to reach its API's common loss level."""

import math

import numpy as np
import pandas as pd

from bench.analysis.estimators import median_ci
from bench.analysis.selection import by_recipe_and_api, kl_recipes, ok_runs


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
    kl_epochs = epochs[epochs.run_id.isin(ok_ids) & kl_recipes(epochs.recipe)]
    levels = kl_epochs.sort_values("epoch").groupby("run_id").tail(1).groupby("api").loss.max()
    rows = []
    for recipe, api, group in by_recipe_and_api(kl_epochs):
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
