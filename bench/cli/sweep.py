"""Run one config's matrix under several values of one or more settings, in the same rounds.

``--vary training.batch_size=128,256 --vary device.xla=off,autojit`` runs every combination of
the values (a variant) for every recipe x API, all variants' runs interleaved and shuffled in the
same rounds, into one results folder. Each run records its variant; the report's "Sweep" section
shows each ratio to the floor and each claim per variant, and says which gaps survive which
setting. The plan's size is bounded (its runs, all variants' together, as a run's are), and
every variant's config is checked before anything runs. ``run --resume`` finishes a sweep.
"""

import argparse

from bench import recipes
from bench.cli.common import (
    add_executor_arguments,
    add_matrix_arguments,
    add_results_dir_argument,
    checked_results_dir,
    executor_of,
    with_matrix,
)
from bench.cli.run import DEFAULT_CONFIG, command_line
from bench.config import settings as config_module
from bench.config import sweep
from bench.errors import UsageError
from bench.run import runner


def add_arguments(parser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=DEFAULT_CONFIG,
        help=f"the base config: a path, or one of {', '.join(config_module.available_names())} "
        f"(default: {DEFAULT_CONFIG})",
    )
    parser.add_argument(
        "--vary",
        action="append",
        required=True,
        metavar="SETTING=V1,V2",
        help="a [device], [training] or [network] setting and its values, e.g. "
        "training.batch_size=128,256 (repeat --vary for more settings)",
    )
    add_matrix_arguments(parser, rounds_of="variant x recipe x API")
    # Not a sweep's flag: taken only to refuse it with the reason (a sweep's rounds are fixed).
    parser.add_argument("--budget", metavar="DURATION", help=argparse.SUPPRESS)
    add_results_dir_argument(parser)
    add_executor_arguments(parser)


def run(args) -> int:
    if args.budget is not None:
        raise UsageError(
            f"sweep takes no --budget (got {args.budget!r}): a sweep runs its config's fixed "
            "rounds for every variant; give the number of rounds instead, e.g. --repeats 3"
        )
    with recipes.loading_allowed():  # the config's recipe_paths: their recipes are to be run
        # A sweep runs its config's fixed rounds for every variant: a budget would spend them
        # unevenly.
        base = config_module.with_overrides(
            with_matrix(config_module.load(args.config), args), budget=""
        )
        variants = sweep.checked_variants(base, args.vary)  # the plan's size, then each variant
        results_dir = checked_results_dir(args)
        return runner.start(
            base,
            results_dir,
            command_line(),
            variants=variants,
            executor=executor_of(args),
        )
