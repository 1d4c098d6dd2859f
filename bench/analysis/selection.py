"""The rows every analysis selects the same way: ok runs, KL recipes, registry order, processes."""

import pandas as pd

from bench import recipes
from bench.results.records import OK


def in_registry_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in registry recipe order, then API order, so every table reads the same way."""
    keys = [recipes.order_key(recipe, api) for recipe, api in zip(frame.recipe, frame.api)]
    return frame.iloc[sorted(range(len(frame)), key=keys.__getitem__)]


def by_recipe_and_api(frame: pd.DataFrame):
    """(recipe, api, rows) in registry order."""
    keys = in_registry_order(frame[["recipe", "api"]].drop_duplicates())
    for recipe, api in keys.itertuples(index=False):
        yield recipe, api, frame[(frame.recipe == recipe) & (frame.api == api)]


def ok_runs(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs.status == OK]


def trained(runs: pd.DataFrame) -> pd.Series:
    """Which runs trained: all but those a budget's round timed only (``PlannedRun.timed_only``),
    which have no ms/step of ``fit``, first epoch or losses."""
    if "timed_only" not in runs:
        return pd.Series(True, index=runs.index)
    return ~runs.timed_only.fillna(False).astype(bool)


def timed_only_recipes(runs: pd.DataFrame) -> set:
    """The recipes some of whose runs a budget's round timed only: a further round would time
    theirs only, as the folder's own later rounds did (read from its rows, not its config: a
    config may name recipe files, and reading a folder runs no code from it)."""
    return set(runs.recipe[~trained(runs)])


def kl_recipes(names: pd.Series) -> pd.Series:
    """Which of the recipe ``names`` add a KL term (all but the floor)."""
    return names.map(recipes.includes_kl).astype(bool)


def ms_per_step(runs: pd.DataFrame, recipe: str, api: str) -> pd.Series:
    """The ms/step of fit of each ok run of ``recipe`` x ``api`` that trained (``trained``)."""
    ok = ok_runs(runs)
    return ok.ms_per_step[(ok.recipe == recipe) & (ok.api == api) & trained(ok)]
