"""The order in which a worker's blocks visit its models: the claims' recipes side by side.

A claim's ratio compares two recipes timed in the same blocks. Between two visits one right
after the other the machine has no time to drift; between two visits with others in between it
has, and that drift lands in the block's ratio (docs/method.md, "Claims side by side"). So the
models of a worker process are laid out in chains: each claim marked ``side_by_side`` (those
whose verdicts need both ends of the interval inside the claimed range) with its baseline, in
the claims' order, a pair joined while both its models still have a free side and it closes no
loop. The other claims' ratios lie far from their ranges and the readings are no verdicts;
joined too, their chains would grow longer than the floor's instances leave room for. A chain
takes the place of its first model in the round's shuffled order, the other models keep theirs,
and the worker spreads the floor's instances among the chains without cutting one where it can
(``bench.measure.timing.visiting_order``).
"""

from bench.analysis.claims import CLAIMS


def pairs_in_turn() -> list:
    """(recipe, other) of every pair to lay side by side, the first to be joined first."""
    return [(claim.recipe, claim.baseline) for claim in CLAIMS if claim.side_by_side]


def visit_order(models) -> tuple:
    """``models`` ((recipe, api) pairs, in the round's order) as chains (tuples of them) in the
    order a block visits them: each joined pair (``pairs_in_turn``, on one API) next to each
    other in one chain, each model no pair joins a chain of its own."""
    models = list(dict.fromkeys(tuple(model) for model in models))
    present = set(models)
    sides = {model: [] for model in models}
    chain_of = {model: model for model in models}  # a chain's name: one of its models

    def chain(model):
        while chain_of[model] != model:
            model = chain_of[model]
        return model

    for recipe, other in pairs_in_turn():
        for api in dict.fromkeys(api for _, api in models):
            one, two = (recipe, api), (other, api)
            if one not in present or two not in present or chain(one) == chain(two):
                continue
            if len(sides[one]) < 2 and len(sides[two]) < 2:
                sides[one].append(two)
                sides[two].append(one)
                chain_of[chain(one)] = chain(two)
    order, placed = [], set()
    for model in models:
        if model not in placed:
            walked = _walk(_end_of(model, sides), sides)
            order.append(tuple(walked))
            placed.update(walked)
    return tuple(order)


def _end_of(model, sides: dict):
    """An end of the chain that holds ``model``: itself, or the end its first side leads to."""
    previous, current = None, model
    while len(sides[current]) == 2:
        previous, current = current, next(side for side in sides[current] if side != previous)
    return current


def _walk(end, sides: dict) -> list:
    """The chain from its ``end`` to its other end."""
    walked, previous = [end], None
    while True:
        onward = [side for side in sides[walked[-1]] if side != previous]
        if not onward:
            return walked
        previous = walked[-1]
        walked.append(onward[0])
