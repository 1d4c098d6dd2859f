"""A cause in words: the layers a step runs more often than the floor's, and what that costs.

The numbers are ``bench.analysis.causes``' (a ``Cause``: its layers against the floor's and the
nearest recipe's); this module only words them, for the answer's why column and the report's
"Where the cost comes from".
"""

import math
import re

from bench.analysis import verdicts
from bench.analysis.causes import Cause
from bench.results.records import OUTSIDE_LAYERS

# What the ops outside every layer's scope are, in words.
OUTSIDE_LAYERS_TEXT = "the ops outside the layers (loss, sampling, optimizer)"


def layer_list(layers) -> str:
    """'encoder_conv_0 … encoder_conv_2 and the mu/log_var heads' from the layers' names."""
    layers = list(layers)
    convolutions = [layer for layer in layers if re.fullmatch(r"encoder_conv_\d+", layer)]
    heads = [head for head in ("mu", "log_var") if head in layers]
    rest = [
        OUTSIDE_LAYERS_TEXT if layer == OUTSIDE_LAYERS else layer
        for layer in layers
        if layer not in convolutions and layer not in heads
    ]
    parts = []
    if len(convolutions) > 2:
        parts.append(f"{convolutions[0]} … {convolutions[-1]}")
    else:
        parts += convolutions
    if heads:
        parts.append(f"the {'/'.join(heads)} head{'s' if len(heads) > 1 else ''}")
    parts += rest
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def _times(value: float) -> str:
    """'twice', '3 times', '1.27 times': a ratio of op counts, to three figures."""
    return "twice" if value == 2 else f"{value:.3g} times"


def _cost_text(extra_ms: float) -> str:
    """', +31.4 ms/step' for a positive, known cost; "" otherwise."""
    return f", +{extra_ms:.1f} ms/step" if math.isfinite(extra_ms) and extra_ms > 0 else ""


def cause_text(cause: Cause, slower: bool) -> str:
    """One phrase: which layers run more often than in the floor, and what that costs; where
    none does, that a gap (``slower``) lies outside the traced graph."""
    repeated = cause.repeated_layers
    if cause.encoder_twice:
        return encoder_twice_text(cause)
    if repeated:
        groups = {}
        for layer, times in repeated.items():
            groups.setdefault(times, []).append(layer)
        runs = "; ".join(
            f"{layer_list(layers)} run {_times(times)} as often as in the floor"
            for times, layers in groups.items()
        )
        return runs + _cost_text(cause.extra_ms)
    if slower:
        cost = f" ({_cost_text(cause.extra_ms)[2:]})" if _cost_text(cause.extra_ms) else ""
        return f"no layer runs more often than in the floor: the gap{cost} lies outside the graph"
    return "no layer runs more often than in the floor"


def encoder_twice_text(cause: Cause) -> str:
    """The encoder in the graph twice (``verdicts.encoder_twice`` against the floor), with the
    encoder layers that run twice where the floor's or the nearest recipe's layer counts name
    them, else with the convolutions over the floor's, as the answer words them without scopes."""
    extra = _cost_text(cause.extra_ms)
    near = cause.nearest
    twice = near if near and near.encoder.basis == verdicts.LAYER_COUNTS and near.encoder else None
    verdict = cause.floor.encoder
    if verdict.basis == verdicts.OP_TYPES and twice is None:
        return f"encoder in the graph twice: {verdict.extra_convolutions:+g} convolutions{extra}"
    layers = layer_list(
        layer for layer in (twice or cause.floor).repeated if verdicts.is_encoder(layer)
    )
    return f"{layers} run twice per step: the encoder is in the graph twice{extra}"


def nearest_text(cause: Cause) -> str:
    """How the recipe's step differs from the nearest recipe's, in op types."""
    near = cause.nearest
    if near is None:
        return ""
    if near.same_graph:
        return f"the same layers and ops as {near.other}"
    changes = ", ".join(f"{count:+d} {op}" for op, count in near.op_difference.items())
    return f"against {near.other}, the nearest recipe: {changes or 'the same op counts'}"
