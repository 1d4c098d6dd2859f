"""One rule per verdict: the floor's ratio, slower than it, rose past a baseline, encoder twice.

Every place that answers one of these questions (the answer's cells and why, the report's causes
and Backends, the findings, the CI gate and ``compare``) calls this module, so that no two of
them can disagree on one folder.

A ratio here is anything with ``ratio``, ``ci_low`` and ``ci_high`` (a ratio table's row, a
``Change``, a ratios.csv row). Its whole CI decides: a ratio lies *above* a level when its CI's
lower bound does, and it *rose* past a baseline when, besides, its point estimate moved past the
baseline by more than a tolerance.

Whether a recipe runs the encoder twice is read from the layer counts of the traced train step
(``RunResult.op_scopes``) where both sides name the encoder's layers: every encoder layer they
share runs exactly twice as often. Where a backend does not scope its ops to the encoder's layers
(JAX leaves a functional model's outer layers unscoped; a folder from before PyTorch scoped its
operators), the convolutions by
op type decide: the forward convolutions, where a backend counts them apart (TensorFlow's
``Conv2D``), exceed the other's by the encoder's convolution layers; elsewhere every convolution
counted together exceeds the other's by at least that many. The verdict says which it read.
"""

import math
import re
from dataclasses import dataclass

import pandas as pd

from bench.results.env import env_value
from bench.results.records import CONVOLUTION_OPS, OK, OP_COUNT_COLUMNS, parse_scopes
from vae_impls import registry
from vae_impls.keras_api import APIS, floor_api
from vae_impls.network_spec import NetworkSpec

FLOOR_LEVEL = 1.0  # a ratio to the floor: the floor's own
# The layers of the shared encoder (vae_impls.network's fixed names): convolutions and heads.
ENCODER_LAYER = re.compile(r"encoder_conv_\d+|mu|log_var")
# The op type of a forward convolution, where a backend counts it apart from its gradients.
FORWARD_CONVOLUTION = "Conv2D"
# What an encoder verdict was read from.
LAYER_COUNTS, OP_TYPES = "layer counts", "convolution counts"


# --- ratios -----------------------------------------------------------------------------------


def above(ratio, level: float) -> bool:
    """Whether ``ratio``'s whole CI lies above ``level`` (a NaN bound: not known to)."""
    return math.isfinite(ratio.ci_low) and ratio.ci_low > level


def below(ratio, level: float) -> bool:
    """Whether ``ratio``'s whole CI lies below ``level``."""
    return math.isfinite(ratio.ci_high) and ratio.ci_high < level


def slower(ratio) -> bool:
    """Whether a ratio (to the floor, or of a claim's recipe to its baseline; None: none) lies
    above 1 with its whole CI: "slower than the floor"."""
    return ratio is not None and above(ratio, FLOOR_LEVEL)


def faster(ratio) -> bool:
    """Whether a ratio (None: none) lies below 1 with its whole CI: ``slower`` the other way."""
    return ratio is not None and below(ratio, FLOOR_LEVEL)


def rose(ratio, baseline: float, tolerance: float = 0.0) -> bool:
    """Whether ``ratio`` rose past ``baseline`` x (1 + ``tolerance``) with its whole CI above
    ``baseline``: the CI gate's regression and ``compare``'s "slower" (a change against 1)."""
    return ratio.ratio > baseline * (1 + tolerance) and above(ratio, baseline)


def fell(ratio, baseline: float, tolerance: float = 0.0) -> bool:
    """Whether ``ratio`` fell below ``baseline`` x (1 - ``tolerance``) with its whole CI below
    ``baseline``: ``rose`` the other way."""
    return ratio.ratio < baseline * (1 - tolerance) and below(ratio, baseline)


# --- the floor --------------------------------------------------------------------------------


def floor_api_of(api: str) -> str:
    """The API of ``api``'s floor; a runs.csv's unknown API (a hand-edited row) is its own."""
    return floor_api(api) if api in APIS else api


def floor_ratio(ratios: pd.DataFrame, recipe: str, api: str):
    """``recipe`` on ``api``'s ratio to the floor of its own Keras (a row of a ratio table or of
    ratios.csv), or None."""
    rows = ratios[
        (ratios.recipe == recipe)
        & (ratios.api == api)
        & (ratios.compared_with == registry.FLOOR)
        & (ratios.compared_api == floor_api_of(api))
    ]
    return rows.iloc[0] if len(rows) else None


def floor_runs(runs: pd.DataFrame, api: str) -> pd.DataFrame:
    """The floor's ok runs on the API ``api`` is compared with."""
    return runs[
        (runs.recipe == registry.FLOOR) & (runs.api == floor_api_of(api)) & (runs.status == OK)
    ]


# --- the encoder in the graph twice -----------------------------------------------------------


def is_encoder(layer: str) -> bool:
    return bool(ENCODER_LAYER.fullmatch(layer))


def encoder_convolutions(env: dict) -> int:
    """How many convolution layers the encoder has: env.json's network spec, else the default
    spec's."""
    filters = env_value(env, "config", "network", "encoder_filters")
    return len(filters) if isinstance(filters, list) else len(NetworkSpec().encoder_filters)


DEFAULT_ENCODER_CONVOLUTIONS = len(NetworkSpec().encoder_filters)


@dataclass(frozen=True)
class StepCounts:
    """What a traced train step's counts say of it: layer -> op type -> count ({}: not scoped),
    its forward convolutions where counted apart, and all its convolutions (NaN: unknown)."""

    scopes: dict
    forward: float
    convolutions: float


NO_COUNTS = StepCounts({}, math.nan, math.nan)


def counts_of_scopes(scopes: dict) -> StepCounts:
    """The ``StepCounts`` of scoped op counts alone (every counted op is in some scope)."""
    if not scopes:
        return NO_COUNTS
    by_type = {}
    for types in scopes.values():
        for op, count in types.items():
            by_type[op] = by_type.get(op, 0) + count
    forward = by_type.get(FORWARD_CONVOLUTION, math.nan)
    return StepCounts(scopes, forward, sum(by_type.get(op, 0) for op in CONVOLUTION_OPS))


def step_counts(runs: pd.DataFrame, recipe: str, api: str) -> StepCounts:
    """``recipe`` on ``api``'s counts, from its ok runs: the layer scopes of the first that has
    them (every run traces the same graph), else the medians of the op count columns."""
    ok = runs[(runs.recipe == recipe) & (runs.api == api) & (runs.status == OK)]
    for text in ok.op_scopes if "op_scopes" in ok else ():
        scopes = parse_scopes(text)
        if scopes:
            return counts_of_scopes(scopes)
    if ok.empty:
        return NO_COUNTS
    return StepCounts({}, _median(ok, OP_COUNT_COLUMNS[FORWARD_CONVOLUTION]), _convolutions(ok))


def _median(runs: pd.DataFrame, column: str) -> float:
    return (
        float(runs[column].median()) if column in runs and runs[column].notna().any() else math.nan
    )


def _convolutions(runs: pd.DataFrame) -> float:
    """The median convolutions of ``runs``: their ops_convolutions, else (a folder from before
    that column) the sum of TensorFlow's convolution columns."""
    total = _median(runs, "ops_convolutions")
    if math.isfinite(total):
        return total
    columns = [OP_COUNT_COLUMNS[op] for op in OP_COUNT_COLUMNS if op in CONVOLUTION_OPS]
    return sum(_median(runs, column) for column in columns)


@dataclass(frozen=True)
class EncoderTwice:
    """Whether a step runs the encoder twice against another's, and what said so."""

    twice: bool | None  # None: neither layer nor convolution counts on both sides
    basis: str  # LAYER_COUNTS, OP_TYPES, or "" without counts
    extra_convolutions: float  # mine minus theirs, all convolutions; NaN: unknown
    layers: tuple = ()  # the encoder layers running twice as often, by LAYER_COUNTS

    def __bool__(self) -> bool:
        return bool(self.twice)


def encoder_twice(
    mine: StepCounts, theirs: StepCounts, encoder_layers: int = DEFAULT_ENCODER_CONVOLUTIONS
) -> EncoderTwice:
    """Whether ``mine`` runs the encoder twice against ``theirs``: by the layer counts where both
    name encoder layers, else by the convolutions (the module's docstring)."""
    extra = mine.convolutions - theirs.convolutions
    mine_layers, their_layers = _layer_totals(mine.scopes), _layer_totals(theirs.scopes)
    shared = [layer for layer in their_layers if is_encoder(layer) and layer in mine_layers]
    if shared:
        twice = all(mine_layers[layer] == 2 * their_layers[layer] for layer in shared)
        return EncoderTwice(twice, LAYER_COUNTS, extra, tuple(shared) if twice else ())
    if not math.isfinite(extra):
        return EncoderTwice(None, "", extra)
    forward = mine.forward - theirs.forward
    twice = forward == encoder_layers if math.isfinite(forward) else extra >= encoder_layers
    return EncoderTwice(bool(twice), OP_TYPES, extra)


def _layer_totals(scopes: dict) -> dict:
    return {layer: sum(types.values()) for layer, types in scopes.items()}
