"""A ratio of step times with its CI, paired or across processes; each KL recipe's to its floor.

Paired: the geometric mean of the processes' ratios (``pairing.process_ratios``) with a 95%
t-interval on their logs, its variance moderated by the other ratios its processes measured
(``moderation.interval``; ``df`` its degrees of freedom). Where the two recipes never shared a
process (a folder from before the blocks, or from before a Jupyter kernel's worker timed the
kernel reading's variants in turns with it: ``bench.measure.beside``), each run is one sample (its
median train step in its blocks, else fit's ms/step) and the ratio of medians gets a 95%
percentile-bootstrap CI and a Mann-Whitney U p-value (``estimators.ratio_ci``).
``ratio_between`` picks the method; ``METHODS`` words both for the report.
"""

import math
from dataclasses import dataclass, field

import pandas as pd

from bench import recipes
from bench.analysis import moderation
from bench.analysis.estimators import finite, ratio_ci
from bench.analysis.pairing import or_empty, own_step_ms
from bench.analysis.selection import by_recipe_and_api, ok_runs
from bench.results.records import YARDSTICK
from vae_impls import registry
from vae_impls.keras_api import floor_api

PAIRED, BOOTSTRAP = "paired", "bootstrap"
METHODS = {
    PAIRED: "paired in-process blocks (the recipes of a round and Keras package share a worker "
    "process; a Jupyter kernel's run and the worker that started it take turns in its blocks); "
    "95% t-interval on the log of the per-process ratios of median step times, its "
    "variance moderated by the other ratios its processes measured (docs/method.md)",
    BOOTSTRAP: "separate processes; 95% percentile bootstrap of the ratio of median step times "
    "over runs (a run's median train step in its paired blocks; fit's ms/step where a side has "
    "none)",
}
# What a ratio with its CI carries (``ratio_between``), and a row of the ratio table.
# ``df``: the degrees of freedom of its interval (a bootstrap one's infinite: taken as normal).
RATIO_FIELDS = ["ratio", "ci_low", "ci_high", "half_width", "method", "n", "p_value", "df"]
RATIO_COLUMNS = ["recipe", "api", "compared_with", "compared_api", *RATIO_FIELDS]


@dataclass(frozen=True)
class Measured:
    """What every ratio of a folder is computed from: its runs, the per-process ratios of its
    paired measurement (``pairing.process_ratios``), each run's own step time in its blocks
    (``own_step_ms``), each paired ratio's block spread and each API's prior
    (``moderation.measured``)."""

    runs: pd.DataFrame
    paired: pd.DataFrame
    step_ms: pd.Series
    spreads: dict = field(default_factory=dict)
    priors: dict = field(default_factory=dict)

    @classmethod
    def of(cls, runs: pd.DataFrame, blocks: pd.DataFrame = None) -> "Measured":
        paired, spreads, priors = moderation.measured(or_empty(blocks))
        return cls(runs, paired, own_step_ms(blocks), spreads, priors)


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
        prior = measured.priors.get(api, moderation.NO_PRIOR)
        predicted = moderation.predicted_of(measured.spreads, (recipe, api, other, other_api))
        found = moderation.interval(mine.ratio, prior, predicted)
        return {**found, "method": PAIRED, "p_value": math.nan}
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
    # A bootstrap interval is taken as normal on logs: infinite degrees of freedom.
    # n: the runs with a number (a run timed only has no ms/step of fit).
    found = ratio_ci(sample, reference)
    return {**found, "method": BOOTSTRAP, "n": len(finite(sample)), "df": math.inf}


def ratio_table(runs: pd.DataFrame, blocks: pd.DataFrame = None) -> pd.DataFrame:
    """Each KL recipe x API's step time relative to its floor (plain_ae of the same Keras; for a
    port, Keras 3's); from separate processes for a folder without paired blocks."""
    measured = Measured.of(runs, blocks)
    rows = []
    for recipe, api, _ in by_recipe_and_api(ok_runs(runs)):
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
