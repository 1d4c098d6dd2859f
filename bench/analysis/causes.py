"""Where a recipe's cost comes from: the layers its traced train step runs, against the floor's
and against the recipe nearest to it.

A worker records, for the op types where a layer's work shows (convolutions, their gradients,
matrix products), how many of each every layer's name scope holds in the traced step
(``RunResult.op_scopes``: layer -> op type -> count). Any backend that can say the same feeds
this module plain dicts. A layer that runs twice per step holds twice the floor's ops; every
encoder layer doing so is the encoder wired into the graph twice. Only what the counts show is
claimed: a gap with the floor's layer counts lies outside the traced graph.
"""

import math
from dataclasses import dataclass

import pandas as pd

from bench.analysis import verdicts
from bench.analysis.verdicts import EncoderTwice
from bench.results.records import OK, parse_scopes
from vae_impls import registry


@dataclass(frozen=True)
class LayerComparison:
    """One recipe's scoped op counts against another's."""

    other: str  # the recipe compared with
    op_difference: dict  # op type -> mine minus theirs, nonzero only
    repeated: dict  # layer -> how many times its ops the other's (> 1), where both have it
    added: tuple  # layers only mine has
    removed: tuple  # layers only theirs has
    shared: tuple  # layers both have
    encoder: EncoderTwice  # whether mine runs the encoder twice against the other's

    @property
    def same_graph(self) -> bool:
        return not (self.op_difference or self.repeated or self.added or self.removed)

    @property
    def encoder_twice(self) -> bool:
        """``verdicts.encoder_twice`` of the two steps."""
        return bool(self.encoder)


@dataclass(frozen=True)
class Cause:
    """Why ``recipe`` on ``api`` costs what it does: its layers against the floor's and against
    the nearest other recipe's, and the ms per step its gap to the floor costs (NaN: unknown)."""

    recipe: str
    api: str
    floor: LayerComparison
    nearest: LayerComparison | None
    extra_ms: float

    @property
    def repeated_layers(self) -> dict:
        """layer -> times, of the layers running more often than in the floor."""
        return self.floor.repeated

    @property
    def encoder_twice(self) -> bool:
        """``verdicts.encoder_twice`` against the floor's step."""
        return self.floor.encoder_twice


def totals(scopes: dict) -> dict:
    """layer -> its ops of every counted type."""
    return {layer: sum(types.values()) for layer, types in scopes.items()}


def op_totals(scopes: dict) -> dict:
    """op type -> its count over every layer."""
    found = {}
    for types in scopes.values():
        for op, count in types.items():
            found[op] = found.get(op, 0) + count
    return found


def compare_layers(
    mine: dict,
    theirs: dict,
    other: str,
    encoder_layers: int = verdicts.DEFAULT_ENCODER_CONVOLUTIONS,
) -> LayerComparison:
    """``mine`` against ``theirs`` (layer -> op type -> count each); ``encoder_layers``: the
    encoder's convolution layers, for a verdict read from the convolutions."""
    my_ops, their_ops = op_totals(mine), op_totals(theirs)
    difference = {
        op: my_ops.get(op, 0) - their_ops.get(op, 0)
        for op in dict.fromkeys([*their_ops, *my_ops])
        if my_ops.get(op, 0) != their_ops.get(op, 0)
    }
    my_layers, their_layers = totals(mine), totals(theirs)
    repeated = {
        layer: my_layers[layer] / their_layers[layer]
        for layer in my_layers
        if their_layers.get(layer) and my_layers[layer] > their_layers[layer]
    }
    return LayerComparison(
        other,
        difference,
        repeated,
        added=tuple(layer for layer in my_layers if layer not in their_layers),
        removed=tuple(layer for layer in their_layers if layer not in my_layers),
        shared=tuple(layer for layer in my_layers if layer in their_layers),
        encoder=verdicts.encoder_twice(
            verdicts.counts_of_scopes(mine), verdicts.counts_of_scopes(theirs), encoder_layers
        ),
    )


def distance(mine: dict, theirs: dict) -> int:
    """How many counted ops differ, layer by layer and type by type."""
    layers = set(mine) | set(theirs)
    return sum(
        abs(mine.get(layer, {}).get(op, 0) - theirs.get(layer, {}).get(op, 0))
        for layer in layers
        for op in set(mine.get(layer, {})) | set(theirs.get(layer, {}))
    )


def nearest(mine: dict, others: dict) -> str:
    """The recipe of ``others`` (name -> scopes) whose counts differ least from ``mine``; ""
    for none. Ties go to the first, in the order given."""
    if not others:
        return ""
    return min(others, key=lambda name: distance(mine, others[name]))


def find(
    recipe: str,
    api: str,
    scopes: dict,
    extra_ms: float = math.nan,
    encoder_layers: int = verdicts.DEFAULT_ENCODER_CONVOLUTIONS,
):
    """The ``Cause`` of ``recipe`` on ``api`` from ``scopes`` (recipe -> its scoped counts on
    that API, the floor's included); None where the recipe or the floor has none."""
    mine, floor = scopes.get(recipe), scopes.get(registry.FLOOR)
    if not mine or not floor or recipe == registry.FLOOR:
        return None
    others = {
        name: counts
        for name, counts in scopes.items()
        if name not in (recipe, registry.FLOOR) and counts
    }
    near = nearest(mine, others)
    return Cause(
        recipe,
        api,
        compare_layers(mine, floor, registry.FLOOR, encoder_layers),
        compare_layers(mine, others[near], near, encoder_layers) if near else None,
        extra_ms,
    )


def of_folder(
    runs: pd.DataFrame,
    ratios: pd.DataFrame,
    encoder_layers: int = verdicts.DEFAULT_ENCODER_CONVOLUTIONS,
) -> list:
    """(``Cause``, slower) of every recipe x API with scoped op counts in ``runs``; slower:
    ``verdicts.slower`` of its ratio to the floor (a ratio_table row)."""
    found = []
    for api in dict.fromkeys(runs.api):
        for recipe in scopes_of_runs(runs, api):
            ratio = verdicts.floor_ratio(ratios, recipe, api)
            cause = cause_of(runs, recipe, api, ratio, encoder_layers)
            if cause is not None:
                found.append((cause, verdicts.slower(ratio)))
    return found


def cause_of(runs: pd.DataFrame, recipe: str, api: str, ratio, encoder_layers: int):
    """The ``Cause`` of ``recipe`` on ``api`` from ``runs``' scoped counts, costed with its
    ``ratio`` to the floor (None: unknown); None without scoped counts."""
    scopes = scopes_with_floor(runs, api)
    return find(recipe, api, scopes, extra_ms(runs, ratio, api), encoder_layers)


def extra_ms(runs: pd.DataFrame, ratio, api: str) -> float:
    """The ms per step of fit a gap costs: (ratio - 1) x the floor's median; NaN: unknown."""
    ok = verdicts.floor_runs(runs, api)
    if ratio is None or ok.empty:
        return math.nan
    return (ratio.ratio - 1) * ok.ms_per_step.median()


def scopes_with_floor(runs: pd.DataFrame, api: str) -> dict:
    """recipe -> scoped op counts on ``api``, and on the API of its floor (a port's: Keras 3's
    as written, whose recipes a port is compared with too) where ``api`` has none."""
    return {**scopes_of_runs(runs, verdicts.floor_api_of(api)), **scopes_of_runs(runs, api)}


def scopes_of_runs(runs: pd.DataFrame, api: str) -> dict:
    """recipe -> the scoped op counts of its first ok run on ``api`` that has them (every run of
    a recipe traces the same graph)."""
    if "op_scopes" not in runs:
        return {}
    found = {}
    ok = runs[(runs.status == OK) & (runs.api == api)]
    for row in ok.itertuples():
        if row.recipe not in found:
            parsed = parse_scopes(row.op_scopes)
            if parsed:
                found[row.recipe] = parsed
    return found
