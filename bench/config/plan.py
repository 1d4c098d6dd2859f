"""The run plan: which recipe x API x repeat runs, in what order, under which seed.

Rounds are interleaved (repeat 1 of every recipe x API, then repeat 2, ...) and each round's
order is shuffled by a seeded RNG, so slow drifts of the machine (thermal, other load) spread
over all recipes instead of piling onto whichever ran last. Pairs the registry marks "fails"
run in the first round only unless ``[matrix] repeat_expected_failures`` asks for every round.
Under ``[matrix] train_later_rounds = false`` the runs of a round a budget adds are timed only
(``PlannedRun.timed_only``): built and traced, then timed in their process's blocks beside the
floor, not trained, since what such a round is for is its ratios (round 1's ``fit`` gives each
pair's epochs, ms/step and losses, and a budget adds a run only of a pair with a ratio, so one that
trained); a run in a Jupyter kernel runs its notebook whole in every round. A plan of fixed
repeats trains every round: its later rounds are planned before round 1 says what works.
The plan is fixed before the first run and stored with the results, which is what makes a
benchmark resumable.

The runs of one round that import the same Keras package on the same backend share a worker
process (``process``): it trains each of them, then times all their train steps against each
other in alternating blocks, so that every ratio between two recipes of a round is measured
within one process.
A recipe the harness runs in a Jupyter kernel has a process of its own.

A plan holds at most ``MAX_PLANNED_RUNS`` runs, however it is built (a config's matrix, its
``--repeats``, a sweep's variants): each run trains a model, and a plan far beyond any benchmark
that can finish would only be checked, written and started.

Recipes come from ``bench.recipes``.
"""

import random
from dataclasses import dataclass

from bench import recipes
from bench.errors import UsageError
from vae_impls import keras_api, registry

MAX_PLANNED_RUNS = 10_000


@dataclass(frozen=True)
class PlannedRun:
    run_id: str
    recipe: str
    api: str
    repeat: int
    seed: int
    variant: str = (
        ""  # a sweep's settings for this run (bench.config.sweep); "" for the config as it is
    )
    process: str = (
        ""  # the worker process the run shares with others ("": its own, as plans before it)
    )
    # Built and traced, then timed in its process's blocks without training: no epochs, ms/step
    # or losses (a later round under ``[matrix] train_later_rounds = false``; plans before it
    # trained every run).
    timed_only: bool = False

    @property
    def process_id(self) -> str:
        return self.process or self.run_id


def combinations(recipe_names, apis) -> list:
    """(recipe, API) pairs to run: those with no variant for an API (n/a) are left out, while
    those that fail as written stay in, since their failure is a result."""
    return [
        (recipe, api)
        for recipe in recipe_names
        for api in apis
        if recipes.status(recipe, api) != registry.NOT_APPLICABLE
    ]


def repeat_seed(base_seed: int, repeat: int) -> int:
    """The seed every recipe of one round shares: same initial weights, data order and noise.

    Existing results folders depend on this derivation; ``bench.config.settings`` bounds the seed
    and the repeats so that every round's seed stays within numpy's 0..2**32-1."""
    return base_seed * 1000 + repeat


def round_order(pairs: list, base_seed: int, repeat: int) -> list:
    # A string seed makes random.Random reproducible across processes and Python versions.
    return random.Random(f"round-{base_seed}-{repeat}").sample(pairs, len(pairs))


def round_pairs(pairs: list, repeat: int, repeat_expected_failures: bool) -> list:
    """The pairs of one round: after the first, those that fail as written only if asked for."""
    if repeat == 1 or repeat_expected_failures:
        return pairs
    return [(recipe, api) for recipe, api in pairs if recipes.status(recipe, api) != registry.FAILS]


def planned_run_count(matrix, variants: int = 1) -> int:
    """The runs ``make_plan`` makes of a ``[matrix]`` and that many variants, without making them:
    round 1 holds every pair, each later round the same pairs as round 2; under a budget, round 1
    only."""
    pairs = combinations(matrix.recipes, matrix.apis)
    first, later = (
        len(round_pairs(pairs, repeat, matrix.repeat_expected_failures)) for repeat in (1, 2)
    )
    return variants * (first + (planned_rounds(matrix) - 1) * later)


def planned_rounds(matrix) -> int:
    """The rounds a plan holds from the start: its repeats; under a budget, the first only (the
    runner adds the others as it goes)."""
    return 1 if matrix.budget else matrix.repeats


def check_plan_size(matrix, variants: int = 1) -> None:
    """A UsageError when the plan of ``matrix`` and ``variants`` would pass ``MAX_PLANNED_RUNS``."""
    runs = planned_run_count(matrix, variants)
    if runs > MAX_PLANNED_RUNS:
        swept = f"{variants:,} variants x " if variants > 1 else ""
        rounds = f"{matrix.repeats} round{'s' if matrix.repeats > 1 else ''}"
        pairs = len(combinations(matrix.recipes, matrix.apis))
        raise UsageError(
            f"the plan has {runs:,} runs ({swept}{rounds} of up to {pairs} recipe x API): at "
            f"most {MAX_PLANNED_RUNS:,}, more than a benchmark can finish; vary fewer values, or "
            f"run fewer repeats, recipes or APIs"
        )


def make_plan(config, variants=("",)) -> list:
    """Every round holds every variant's pairs, shuffled together; a UsageError for a plan of
    more than ``MAX_PLANNED_RUNS`` runs. Under a budget the plan starts with the first round
    only: the runner adds each later round once it knows what fits (``bench.run.budget``)."""
    check_plan_size(config.matrix, len(variants))
    matrix = config.matrix
    rounds = planned_rounds(matrix)
    pairs = combinations(matrix.recipes, matrix.apis)
    return [
        run
        for repeat in range(1, rounds + 1)
        for run in round_runs(
            config,
            repeat,
            [
                (variant, pair)
                for variant in variants
                for pair in round_pairs(pairs, repeat, matrix.repeat_expected_failures)
            ],
        )
    ]


def round_runs(config, repeat: int, pairs: list, added: bool = False) -> list:
    """The runs of round ``repeat``: each (variant, (recipe, api)) of ``pairs`` once, in the
    round's seeded order, under the round's seed; ``added``: a round a budget adds, whose runs
    may be timed only (``timed_only``)."""
    seed = config.training.seed
    return [
        PlannedRun(
            run_id(recipe, api, repeat, variant),
            recipe,
            api,
            repeat,
            repeat_seed(seed, repeat),
            variant,
            process_id(recipe, api, repeat, variant),
            added and timed_only(config, recipe),
        )
        for variant, (recipe, api) in round_order(pairs, seed, repeat)
    ]


def timed_only(config, recipe: str) -> bool:
    """Whether a run of ``recipe`` in a round a budget adds is timed without training: unless
    ``[matrix] train_later_rounds`` asks for every round to train, the recipe runs in a Jupyter
    kernel (its notebook trains as the post's did) or no blocks would time it (``[training]
    paired_blocks = 0``)."""
    return (
        not config.matrix.train_later_rounds
        and bool(config.training.paired_blocks)
        and not recipes.kernel_of(recipe)
    )


def run_id(recipe: str, api: str, repeat: int, variant: str = "") -> str:
    return f"{recipe}-{api}{_variant_part(variant)}-r{repeat}"


def process_id(recipe: str, api: str, repeat: int, variant: str = "") -> str:
    """The worker process of a run: one per API group (Keras package and backend), variant and
    round; a recipe run in a Jupyter kernel gets its own."""
    if recipes.kernel_of(recipe):
        return run_id(recipe, api, repeat, variant)
    return f"{keras_api.process_group(api)}{_variant_part(variant)}-r{repeat}"


def _variant_part(variant: str) -> str:
    return f"-[{variant}]" if variant else ""


def processes(runs: list) -> list:
    """The runs grouped by worker process, each group in plan order, groups in order of their
    first run."""
    grouped = {}
    for run in runs:
        grouped.setdefault(run.process_id, []).append(run)
    return list(grouped.values())
