"""The paired measurement every ratio comes from: train steps timed in alternating blocks.

Once a process's runs have trained, it times every trained model's train step, and its
references' (the floor, a claim's baseline), in one process: each model runs the train function
``fit`` runs, on an endless iterator of the batches its ``fit`` takes, one step per call, timed
per step. Block order alternates (ABC, CBA, ...) so that a drift of the machine falls on every
model alike; each step records the machine's CPU pressure beside its time, and a block in which a
neighbour came or went (``bench.results.contention``) is timed again. With ``[training]
yardstick``, a fixed computation of the backend's own (``bench.measure.yardstick``) is timed in
every block beside the models. The kernel path's notebook times its run the same way inside its
kernel.
"""

import collections
import itertools
import math
import time
from dataclasses import dataclass, replace

from bench.errors import summarize_exception
from bench.measure import phases, pressure
from bench.measure.training import build, slow_down_if_asked, trace
from bench.results import contention
from bench.results.records import YARDSTICK, BlockStep, ProcessSpec
from vae_impls import registry
from vae_impls.keras_api import floor_api

# Every stepper a paired timing made, kept until the process ends; a worker ends with os._exit,
# which destroys nothing. Destroying a tf.data iterator waits for its autotuning thread, and
# TensorFlow can lose the wake-up it sends that thread: the thread then sleeps out its period,
# which doubles as the iterator lives, up to a minute (docs/failures.md). Dropping the steppers
# left workers idle for up to a minute after their timing; their memory is the timing's own.
_KEPT_UNTIL_EXIT = []
# Each instance's untimed steps on its fresh iterator before the blocks. Every model has taken
# steps of ``fit`` already (a run's epochs, or the trace of a reference or of a run timed only):
# what a stepper adds is a fresh iterator, which slows its first step most, and a JAX step of
# most of a second on a CPU makes every further one cost (docs/budget.md, "Outside the blocks").
WARMING_STEPS = 1
MIN_BLOCKS = 2  # under [training] paired_seconds: one block in each visiting order


def time_paired(session, models: dict, references, chains=(), beside=None) -> tuple:
    """(every model's timed steps, why a reference could not be timed): the train steps of the
    trained ``models`` ((recipe, api) -> built) and of the ``references`` ((recipe, api) pairs,
    built here with the settings and seed of the session's first run), in alternating blocks;
    ``beside``: (recipe, api) -> [stepper] of models another process times in turns with this
    one (``bench.measure.beside``, for a kernel), visited right after ``models``.

    The floor runs as several instances (``floor_instances``), their steps pooled under its
    name. A reference that fails to build or train is left out and named; the runs' own results
    stay as they were. The steppers outlive the call, to the end of the process
    (``_KEPT_UNTIL_EXIT``). A block visits the models of ``chains`` first, in their order
    (``visiting_order``); how many blocks of how many steps a visit, ``block_plan`` says from
    the pace of the warm steps.
    """
    seed = session.first.run.seed
    steppers = {
        model: [session.backend.stepper(session, built, seed)] for model, built in models.items()
    }
    steppers.update(beside or {})
    errors = [_add_instance(session, steppers, model) for model in references]
    floor = next((model for model in steppers if model[0] == registry.FLOOR), None)
    if floor:  # one Keras, one floor
        for _ in range(floor_instances(len(steppers) - 1) - 1):
            errors.append(_add_instance(session, steppers, floor))
    if session.training.yardstick:
        errors.append(_add_yardstick(session, steppers))
    _KEPT_UNTIL_EXIT.append(steppers)
    why_not = "; ".join(filter(None, errors))
    if len(steppers) < 2:
        return (), why_not
    training = session.training
    blocks, steps = block_plan(
        training.paired_blocks,
        training.paired_block_steps,
        training.paired_seconds,
        _warm(steppers),
    )
    timed = time_blocks(
        steppers,
        blocks,
        steps,
        training.paired_seconds,
        more=MoreBlocks(training.paired_blocks_most, phases.process_age() or 0.0),
        chains=chains,
    )
    for instances in steppers.values():
        for step in instances:
            step.settle()
    return timed, why_not


def floor_instances(others: int) -> int:
    """Instances of the floor beside ``others`` models: round(sqrt(others)), at least one.

    Every ratio of a process to the floor shares the floor's estimate, so its error counts in
    each of them; giving the shared side sqrt(m) times the measurements of each of the m others
    minimizes their variance for a given number of steps (Dunnett's allocation for comparisons
    with a control). The floor's extra measurements come from extra instances, each visited once
    a block, not extra steps of one: a model's time drifts from one visit to the next, which only
    more visits average, and two instances of one model in one process differ too (docs/method.md:
    "Why several instances", "Why many short blocks", with the measurements).
    """
    return max(1, round(math.sqrt(others)))


def _add_instance(session, steppers: dict, model: tuple) -> str:
    """Build and add one more instance of ``model`` (recipe, api) to ``steppers``: "" or why it
    could not be built or trained."""
    recipe, api = model
    try:
        steppers.setdefault((recipe, api), []).append(reference_stepper(session, recipe, api))
        return ""
    except Exception as error:
        return f"{recipe} ({api}): {summarize_exception(error)}"


def _add_yardstick(session, steppers: dict) -> str:
    """Add the backend's yardstick to ``steppers``, under (``YARDSTICK``, the floor's API), to be
    visited once beside each visit of an instance of the floor (``visiting_order``): ""
    or why it could not be built."""
    api = floor_api(session.first.run.api)
    try:
        yardstick = session.backend.yardstick(session)
    except Exception as error:
        return f"{YARDSTICK}: {summarize_exception(error)}"
    steppers[YARDSTICK, api] = [yardstick] * max(1, len(steppers.get((registry.FLOOR, api), ())))
    return ""


def reference_stepper(session, recipe: str, api: str):
    """A stepper of a model no run of the process trained: built with the first run's seed and
    slowdown, then a few untimed steps of ``fit`` trace it and create its optimizer's state."""
    first = session.first
    reference = build(session, recipe, api, first.run.seed)
    slow_down_if_asked(session, reference, first.injected_ms(recipe, api))
    trace(session, reference, first.run.seed)
    return session.backend.stepper(session, reference, first.run.seed)


def _warm(steppers: dict) -> float:
    """Warm every instance alike before the blocks (a fresh iterator fills its buffers): the
    seconds a block of one step a visit will take, from each instance's last warm step."""
    block = 0.0
    for instances in steppers.values():
        for step in instances:
            last = 0.0
            for _ in range(WARMING_STEPS):
                began = time.perf_counter()
                step()
                last = time.perf_counter() - began
            block += last
    return block


def block_plan(blocks: int, steps: int, seconds: float, one_step_block: float) -> tuple:
    """(blocks, steps a visit): [training] paired_blocks of paired_block_steps, unless those would
    outlast ``seconds`` ([training] paired_seconds) at ``one_step_block`` seconds a block of one
    step a visit. Then a visit takes the most steps with which ``blocks`` blocks fit (at least
    one), and the plan is the configured steps of each model in visits of that size; ``seconds``
    stops the blocks as before (``time_blocks``), so the time spent is the same, in more visits.

    A model runs faster or slower from one visit to the next, which only more visits average
    (docs/method.md, "Why many short blocks"; docs/budget.md, "Blocks per process"). The plan
    rests on the clock of untimed steps, never on a ratio.
    """
    if not (seconds and one_step_block > 0) or blocks * steps * one_step_block <= seconds:
        return blocks, steps
    fitting = max(1, min(steps, int(seconds / (blocks * one_step_block))))
    return math.ceil(blocks * steps / fitting), fitting


@dataclass(frozen=True)
class MoreBlocks:
    """Blocks past the planned ones, up to ``most`` in all, while the blocks have taken less than
    the ``before`` seconds the process spent before them ([training] paired_blocks_most).

    A process's ratio has the variance of its blocks' median plus what the process adds; a
    process costs its start-up once and each block again. Where the blocks are a sliver of the
    process (a fast device: milliseconds a block, seconds to start), another block costs almost
    nothing beside another process, so a process times for as long as it took to get there: it
    then spends at most twice what a process costs anyway, and its blocks' share of the ratio's
    variance falls with every one (docs/budget.md, "Blocks per process"). The rule stops on the
    clock, never on what the blocks measured, so the ratios stay unbiased.
    """

    most: int = 0
    before: float = 0.0

    def wanted(self, number: int, started: float) -> bool:
        """Whether a block after the ``number`` timed since ``started`` is one more."""
        return number < self.most and time.perf_counter() - started < self.before


def time_blocks(
    steppers: dict,
    blocks: int,
    steps: int,
    seconds: float = 0,
    more: MoreBlocks = MoreBlocks(),
    chains=(),
) -> tuple:
    """Each block visits every instance of every model once, in ``visiting_order``, reversed
    every other block; a model's steps are numbered across its instances' visits. After the
    ``blocks``, ``more`` says whether one more is timed. With ``seconds``, no block starts once
    the blocks have taken that long and ``MIN_BLOCKS`` ran: the blocks stay whole, and paired.
    Then one more block is timed for each uneven one (a neighbour came or went in it:
    ``bench.results.contention``), so at most as many again as ran, and within ``seconds`` too:
    the time a process may spend on blocks is kept."""
    order = visiting_order({model: len(instances) for model, instances in steppers.items()}, chains)
    timed, started, number = [], time.perf_counter(), 0
    while (number < blocks or more.wanted(number, started)) and not _time_is_up(
        started, seconds, number
    ):
        number += 1
        timed += _time_block(steppers, order, number, steps)
    for _ in contention.uneven_blocks(timed):
        if _time_is_up(started, seconds, number):
            break
        number += 1
        timed += _time_block(steppers, order, number, steps)
    return tuple(timed)


def _time_is_up(started: float, seconds: float, done: int) -> bool:
    return bool(seconds) and done >= MIN_BLOCKS and time.perf_counter() - started >= seconds


def _time_block(steppers: dict, order: list, block: int, steps: int) -> list:
    """One block's timed steps, with the machine's CPU pressure during each (``pressure``)."""
    timed, visits = [], collections.Counter()
    for model in order if block % 2 else order[::-1]:
        visit, step = visits[model], steppers[model][visits[model]]
        visits[model] += 1
        for index in range(visit * steps + 1, (visit + 1) * steps + 1):
            waited = pressure.waited_seconds()
            seconds = _step_seconds(step)
            now_waited = pressure.waited_seconds()
            waited = None if waited is None or now_waited is None else now_waited - waited
            timed.append(BlockStep(block, *model, index, seconds, waited))
    return timed


def _step_seconds(step) -> float:
    """One step's seconds, by this process's clock unless the stepper times its step where it
    takes it (``bench.measure.beside``: another process's, the messages' time left out)."""
    own_clock = getattr(step, "timed", None)
    if own_clock is not None:
        return own_clock()
    began = time.perf_counter()
    step()
    return time.perf_counter() - began


def visiting_order(instances: dict, chains=()) -> list:
    """One block's visits, model -> its number of instances: one visit per instance, those of
    the floor spread evenly among the other models', each followed by one of the yardstick's
    (if timed): the two side by side, so that the machine's drift falls on both alike. The models
    of ``chains`` (tuples of models, each visited one right after the other: a claim's two
    recipes, bench/analysis/neighbours.py) go first, in their order, the others after in theirs,
    and no floor goes between two of one chain where it can go elsewhere between its neighbours
    (``_split_evenly``)."""
    floors, yardsticks = (
        [model for model, count in instances.items() if model[0] == name for _ in range(count)]
        for name in (registry.FLOOR, YARDSTICK)
    )
    rank = {
        model: place for place, model in enumerate(member for chain in chains for member in chain)
    }
    others = [
        model
        for model, count in sorted(instances.items(), key=lambda item: rank.get(item[0], len(rank)))
        if model[0] not in (registry.FLOOR, YARDSTICK)
        for _ in range(count)
    ]
    if not floors or not others:
        return others + [
            model for pair in itertools.zip_longest(floors, yardsticks) for model in pair if model
        ]
    pairs = {pair for chain in chains for pair in zip(chain, chain[1:])}
    joined = {
        index for index in range(1, len(others)) if (others[index - 1], others[index]) in pairs
    }
    order = []
    for index, segment in enumerate(_split_evenly(others, len(floors) + 1, joined)):
        order += segment + floors[index : index + 1] + yardsticks[index : index + 1]
    return order + yardsticks[len(floors) :]


def _split_evenly(items: list, parts: int, joined=frozenset()) -> list:
    """``items`` in ``parts`` consecutive pieces whose lengths differ by at most one, except
    that a cut before an index in ``joined`` moves to the nearest index that is not, between its
    neighbours, where there is one."""
    size, extra = divmod(len(items), parts)
    bounds = [index * size + min(index, extra) for index in range(parts + 1)]
    for index in range(1, parts):
        free = [
            bound
            for bound in range(bounds[index - 1] + 1, bounds[index + 1])
            if bound not in joined
        ]
        if bounds[index] in joined and free:
            bounds[index] = min(free, key=lambda bound: abs(bound - bounds[index]))
    return [items[start:end] for start, end in zip(bounds, bounds[1:])]


def with_blocks(results: dict, spec: ProcessSpec, timed: tuple) -> dict:
    """Each run keeps its own model's steps; the references' steps go with the process's first
    run. Every run records why a reference could not be timed."""
    steps, reference_error = timed
    owners = {(run.run.recipe, run.run.api): run.run.run_id for run in spec.runs}
    first_id = spec.first.run.run_id
    kept = {run_id: [] for run_id in results}
    for step in steps:
        kept[owners.get((step.model, step.model_api), first_id)].append(step)
    return {
        run_id: replace(result, blocks=tuple(kept[run_id]), reference_error=reference_error)
        for run_id, result in results.items()
    }
