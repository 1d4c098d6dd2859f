"""A neighbour that came or went inside a block: the rule the worker and the analysis share.

The paired design compares models timed back to back in one block: other work that runs through
a whole block slows its models alike, and their ratios cancel it. Work that starts or stops
inside a block does not cancel: the models timed before it and those timed after ran on two
different machines. The kernel's CPU pressure (``/proc/pressure/cpu``, "some": the time in which
some task waited for a CPU) tells them apart. A worker's own threads wait for each other a little,
so each model's share of pressure (pressure seconds over step seconds, its steps in the block
pooled) is low and alike on a quiet machine, high and alike with a neighbour throughout, and
uneven when a neighbour came or went in the middle. Such a block's ratios are set aside by the
analysis and the worker times another block in its place (docs/method.md, "Other work on the
machine", with the measurements behind ``UNEVEN_SHARE``).
"""

import math
from collections import defaultdict

# The largest difference between two models' pressure shares in an even block: above what a
# quiet block's or a block busy throughout shows, below what a neighbour coming or going inside a
# block makes (docs/method.md, measured).
UNEVEN_SHARE = 0.15
# A process keeps its uneven blocks when setting them aside would leave fewer even ones than this.
FEWEST_EVEN_BLOCKS = 2


def uneven_blocks(steps) -> set:
    """The numbers of the uneven blocks among ``steps`` (of one process): anything with ``block``,
    ``model``, ``model_api``, ``seconds`` and ``pressure_seconds`` (``BlockStep``, a row of
    blocks.csv). Steps without a pressure reading make no block uneven."""
    seconds, pressure = defaultdict(float), defaultdict(float)
    for step in steps:
        waited = step.pressure_seconds
        if waited is None or not math.isfinite(waited):
            continue
        key = (step.block, step.model, step.model_api)
        seconds[key] += step.seconds
        pressure[key] += waited
    shares = defaultdict(list)
    for key, spent in seconds.items():
        if spent > 0:
            shares[key[0]].append(pressure[key] / spent)
    return {block for block, found in shares.items() if _uneven(found)}


def _uneven(shares: list) -> bool:
    return len(shares) >= 2 and max(shares) - min(shares) > UNEVEN_SHARE


def set_aside(steps) -> set:
    """The uneven blocks of one process's ``steps`` that its ratios leave out: all of them, unless
    that would leave fewer than ``FEWEST_EVEN_BLOCKS`` blocks."""
    uneven = uneven_blocks(steps)
    blocks = {step.block for step in steps}
    return uneven if len(blocks - uneven) >= FEWEST_EVEN_BLOCKS else set()
