"""Why a recipe costs what it does on an API: its step's layers or convolutions against the floor's.

The answer's ``why`` column (worded in ``bench.report.answer_table``) is ``bench.analysis.causes``'
finding where both the recipe and the floor scope their ops to layers; a folder or a backend
without layer scopes falls back on the op counts by type. Either way the encoder in the graph
twice is ``bench.analysis.verdicts.encoder_twice``, the rule the report's causes and its Backends
table read too. Beside it stands the cost model's record of the pair
(``bench.analysis.cost_model``): which count explains its gap to the floor, and at what cost per
unit, so that a recipe slower for its extra operators (a launch-bound step) has a cause too.
"""

import math
from dataclasses import dataclass

import pandas as pd

from bench.analysis import causes, verdicts
from bench.analysis.cost_model import RecipeCost
from bench.analysis.verdicts import EncoderTwice
from bench.results.records import OK, OP_COUNT_COLUMNS
from vae_impls import registry

FLOOR, CAUSE, OP_COUNTS, NO_COUNTS = "floor", "cause", "op counts", "no op counts"


@dataclass(frozen=True)
class Why:
    """What explains a working pair's cost: the floor itself (FLOOR), its layers (CAUSE: a
    ``causes.Cause``), its op counts (OP_COUNTS: the encoder verdict and, where TensorFlow's op
    types are counted apart, each type's count over the floor's), or nothing (NO_COUNTS)."""

    kind: str
    cause: causes.Cause | None = None
    slower: bool = False  # its ratio to the floor lies above 1 with its whole CI
    encoder: EncoderTwice | None = None
    op_difference: dict | None = None  # op type -> mine minus the floor's; None: not by type
    cost: RecipeCost | None = None  # the cost model's record of the pair; None: not modelled

    @property
    def encoder_twice(self) -> bool:
        """Whether the layers or the convolutions show the encoder in the graph twice."""
        if self.cause is not None:
            return bool(self.cause.encoder_twice)
        return bool(self.encoder and self.encoder.twice)


def why_of(pair, runs: pd.DataFrame, encoder_layers: int, cost: RecipeCost | None = None) -> Why:
    """Why ``pair`` (an ``answer.Pair`` with ok runs) costs what it does on its API; ``cost`` is
    the cost model's record of it (``bench.analysis.cost_model``), where there is one."""
    if pair.recipe == registry.FLOOR:
        return Why(FLOOR)
    slower = verdicts.slower(pair.ratio)
    cause = causes.cause_of(runs, pair.recipe, pair.api, pair.ratio, encoder_layers)
    if cause is not None:
        return Why(CAUSE, cause, slower, cost=cost)
    mine = verdicts.step_counts(runs, pair.recipe, pair.api)
    floor = verdicts.step_counts(runs, registry.FLOOR, verdicts.floor_api_of(pair.api))
    encoder = verdicts.encoder_twice(mine, floor, encoder_layers)
    if encoder.twice is None:
        return Why(NO_COUNTS, slower=slower, cost=cost)
    return Why(OP_COUNTS, None, slower, encoder, ops_over_floor(pair, runs), cost)


def ops_over_floor(pair, runs: pd.DataFrame) -> dict | None:
    """Op type -> ``pair``'s count in its traced train step minus the floor's on the same API
    (medians over ok runs) of TensorFlow's counted op types; None where either lacks them."""
    floor = verdicts.floor_runs(runs, pair.api)
    ok = runs[(runs.recipe == pair.recipe) & (runs.api == pair.api) & (runs.status == OK)]
    mine, theirs = (
        {op: frame[column].median() for op, column in OP_COUNT_COLUMNS.items()}
        for frame in (ok, floor)
    )
    if not all(math.isfinite(value) for value in (*mine.values(), *theirs.values())):
        return None
    return {op: int(mine[op] - theirs[op]) for op in OP_COUNT_COLUMNS}
