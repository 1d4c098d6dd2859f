"""Statistics across results folders: what changed from folder A to folder B, and how each
recipe's ratio to the floor moved over a series of folders.

Two folders from the same host are compared in ms/step: the change is B/A, a ratio of medians
over their ok runs with a 95% bootstrap CI and a Mann-Whitney p-value (``estimators.ratio_ci``);
each run's train step in its process's blocks where every ok run of the pair in both folders has
them (a run a budget timed only has no ``fit`` to time), else its ms/step of ``fit``. Across hosts
ms/step says more about the machines than about the code, so each recipe's ratio to the floor,
measured within its own folder (``step_ratios.ratio_table``: paired where the folder has blocks),
is compared instead: the change is ratio_B / ratio_A, and its CI combines the two ratios' CIs on
the log scale (MOVER: Zou & Donner 2008), whichever way each was computed. A change is
significant when its CI excludes 1.
"""

import math
from dataclasses import dataclass
from types import SimpleNamespace

import pandas as pd

from bench import recipes
from bench.analysis import estimators, selection, step_ratios, verdicts
from bench.analysis.pairing import own_step_ms
from bench.errors import UsageError
from bench.results.env import env_value, same_host
from vae_impls import registry

ABSOLUTE, FLOOR_RATIO = "ms/step", f"ratio to {registry.FLOOR}"
FASTER, SLOWER, NO_CHANGE = "faster", "slower", "no significant change"
REFERENCE = "the reference of the ratios"
SETTINGS_TABLES = ("device", "training", "network")  # the tables the settings hash covers


@dataclass(frozen=True)
class Change:
    """One recipe x API from folder A to folder B; ``a`` and ``b`` are in the comparison's basis."""

    recipe: str
    api: str
    runs_a: int
    runs_b: int
    a: float
    b: float
    change: float  # b / a
    ci_low: float
    ci_high: float
    p_value: float  # NaN for ratios to the floor: no test of a ratio of ratios
    verdict: str

    def slower_than(self, percent: float) -> bool:
        return self.verdict == SLOWER and self.change > 1 + percent / 100


@dataclass(frozen=True)
class Comparison:
    basis: str  # ABSOLUTE or FLOOR_RATIO
    changes: list  # of Change, in registry order
    only_a: list  # (recipe, api) pairs A ran and B did not
    only_b: list


def compare(a, b) -> Comparison:
    """Folder A (``Results``) against folder B, pair by pair."""
    pairs_a, pairs_b = _pairs(a.runs), _pairs(b.runs)
    common = _in_registry_order(pairs_a & pairs_b)
    if not common:
        raise UsageError(f"{a.folder} and {b.folder} have no recipe x API in common")
    if same_host(a.env, b.env):
        changes = [_ms_change(a, b, recipe, api) for recipe, api in common]
        basis = ABSOLUTE
    else:
        ratios_a, ratios_b = (
            step_ratios.floor_ratios(a.runs, a.blocks),
            step_ratios.floor_ratios(b.runs, b.blocks),
        )
        changes = [
            _ratio_change(a.runs, b.runs, ratios_a, ratios_b, recipe, api) for recipe, api in common
        ]
        basis = FLOOR_RATIO
    only_a, only_b = _in_registry_order(pairs_a - pairs_b), _in_registry_order(pairs_b - pairs_a)
    return Comparison(basis, changes, only_a, only_b)


def _pairs(runs: pd.DataFrame) -> set:
    return set(zip(runs.recipe, runs.api))


def _in_registry_order(pairs: set) -> list:
    return sorted(pairs, key=lambda pair: recipes.order_key(*pair))


def _ok_count(runs: pd.DataFrame, recipe: str, api: str) -> int:
    ok = selection.ok_runs(runs)
    return int(((ok.recipe == recipe) & (ok.api == api)).sum())


def _step_samples(a, b, recipe: str, api: str) -> tuple:
    """Each ok run's ms/step of (recipe, api) in folders ``a`` and ``b``: in its blocks where
    every one of them has blocks, else of ``fit`` (module docstring)."""
    mine = [selection.ok_runs(results.runs) for results in (a, b)]
    mine = [ok[(ok.recipe == recipe) & (ok.api == api)] for ok in mine]
    step_ms = [own_step_ms(results.blocks).dropna() for results in (a, b)]
    if all(len(ok) and ok.run_id.isin(ms.index).all() for ok, ms in zip(mine, step_ms)):
        return tuple(ms.reindex(ok.run_id).reset_index(drop=True) for ok, ms in zip(mine, step_ms))
    return tuple(selection.ms_per_step(results.runs, recipe, api) for results in (a, b))


def _ms_change(a, b, recipe: str, api: str) -> Change:
    sample_a, sample_b = _step_samples(a, b, recipe, api)
    ratio = estimators.ratio_ci(sample_b, sample_a)
    a, b = float(sample_a.median()), float(sample_b.median())
    low, high = ratio["ci_low"], ratio["ci_high"]
    return Change(
        recipe,
        api,
        len(sample_a),
        len(sample_b),
        a,
        b,
        ratio["ratio"],
        low,
        high,
        ratio["p_value"],
        _verdict(a, b, SimpleNamespace(**ratio), ABSOLUTE, ratio["p_value"]),
    )


def _ratio_change(runs_a, runs_b, ratios_a: dict, ratios_b: dict, recipe: str, api: str) -> Change:
    counts = _ok_count(runs_a, recipe, api), _ok_count(runs_b, recipe, api)
    if recipe == registry.FLOOR:
        return Change(
            recipe, api, *counts, 1.0, 1.0, math.nan, math.nan, math.nan, math.nan, REFERENCE
        )
    before, after = ratios_a.get((recipe, api)), ratios_b.get((recipe, api))
    a, b = (row.ratio if row is not None else math.nan for row in (before, after))
    change, low, high = change_of_ratios(before, after)
    return Change(
        recipe,
        api,
        *counts,
        a,
        b,
        change,
        low,
        high,
        math.nan,
        _verdict(a, b, SimpleNamespace(ratio=change, ci_low=low, ci_high=high), FLOOR_RATIO),
    )


def change_of_ratios(before, after) -> tuple:
    """(after / before, CI low, CI high) of two independent ratios with CIs (rows with ratio,
    ci_low, ci_high; None where a folder has none): MOVER on the log scale, each bound widened by
    the other ratio's opposite side."""
    if before is None or after is None:
        return math.nan, math.nan, math.nan
    change = after.ratio / before.ratio
    down = math.hypot(math.log(after.ratio / after.ci_low), math.log(before.ci_high / before.ratio))
    up = math.hypot(math.log(after.ci_high / after.ratio), math.log(before.ratio / before.ci_low))
    return (
        change,
        change * math.exp(-down),
        change * math.exp(up),
    )  # a NaN bound (one run) stays NaN


SIGNIFICANCE = 0.05
NO_CHANGE_LEVEL = 1.0  # B over A when nothing changed


def _verdict(a: float, b: float, change, basis: str, p_value: float = math.nan) -> str:
    """Slower or faster when ``change`` (B over A, with its CI) rose or fell against 1
    (``verdicts.rose``: the gate's rule) and, where there is one, the rank test agrees: a
    percentile bootstrap over 3 runs a side can exclude 1 by chance, and their p cannot go below
    0.1."""
    low, high = change.ci_low, change.ci_high
    missing = [side for side, value in (("A", a), ("B", b)) if not math.isfinite(value)]
    if missing:
        return f"no {basis} in {' or '.join(missing)}"
    if not (math.isfinite(low) and math.isfinite(high)):
        return "no CI: a single run"
    if math.isfinite(p_value) and p_value >= SIGNIFICANCE:
        return NO_CHANGE
    if verdicts.rose(change, NO_CHANGE_LEVEL):
        return SLOWER
    return FASTER if verdicts.fell(change, NO_CHANGE_LEVEL) else NO_CHANGE


# --- what a folder ran under --------------------------------------------------------------------


def settings(env: dict) -> dict:
    """env.json's device, training and network settings as {"training.batch_size": 128, ...}."""
    return {
        f"{table}.{key}": value
        for table in SETTINGS_TABLES
        for key, value in (env_value(env, "config", table) or {}).items()
    }


def in_time_order(series: list) -> list:
    """``Results`` oldest first; folders started in the same second by name."""
    return sorted(series, key=lambda results: (results.folder.started(), results.folder.name))


def floor_ratio_history(series: list) -> pd.DataFrame:
    """Each folder's ratios to the floor, a row per folder x recipe x API: ``position`` (the
    folder's index in ``series``), recipe, api, ratio, ci_low, ci_high."""
    rows = [
        {
            "position": position,
            "recipe": recipe,
            "api": api,
            "ratio": row.ratio,
            "ci_low": row.ci_low,
            "ci_high": row.ci_high,
        }
        for position, results in enumerate(series)
        for (recipe, api), row in step_ratios.floor_ratios(results.runs, results.blocks).items()
    ]
    return pd.DataFrame(rows, columns=["position", "recipe", "api", "ratio", "ci_low", "ci_high"])
