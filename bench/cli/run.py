"""Run the benchmark: every recipe x API x repeat, into a results folder; the runs of a round that
share a Keras package share a worker process (a run in a Jupyter kernel has its own).

The config (--config: a TOML file, or the name of one in bench/config/configs) is checked before
anything runs. Each run prints one line as it ends; at the end come the results folder and the
answer table (each recipe's paired ratio to the floor with its CI, as the report opens with it).
--budget (or the config's [matrix] budget) gives the benchmark a duration: after a first round of
everything, it spends the time left on the ratios whose CI is still widest, a round at a time, and
ends in time for its report; --repeats N alone runs N full rounds instead.
Ctrl-C keeps every finished run; --resume FOLDER then runs only what is missing (with --budget, and
then more rounds, also in a finished folder). --executor ray
spreads the runs over the nodes of a Ray cluster, one at a time on each. Exit status 3 when no
run of the plan measured its recipe (every one timed out or was killed), 2 for input refused
before anything runs. --recipe PATH adds a recipe of your own (a .py file or a module outside
kl-bench, see README's "Benchmark your own recipe") to the config's recipes; the config's
[matrix] recipe_paths declares such recipes once for a project. --recipes may name them: then it
is the list that runs (`--recipe my_kl.py --recipes my_kl plain_ae`); a --recipes that names none
of them keeps them beside the recipes it names. --resume names each recipe file of the folder
it imports, and refuses one whose text changed since the run (--accept-changed-recipes runs it).
"""

import shlex
import sys
from pathlib import Path

from bench import recipes
from bench.cli.common import (
    add_executor_arguments,
    add_matrix_arguments,
    add_recipe_argument,
    add_results_dir_argument,
    checked_results_dir,
    executor_of,
    matrix_asked,
    with_user_recipes,
)
from bench.config import budget as budget_config
from bench.config import settings as config_module
from bench.errors import UsageError
from bench.run import runner

DEFAULT_CONFIG = "default"
QUICK_CONFIG = "quick"


def add_arguments(parser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"TOML config: a path, or one of {', '.join(config_module.available_names())} "
        f"(default: {DEFAULT_CONFIG})",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"use the {QUICK_CONFIG} config: a few minutes"
    )
    add_matrix_arguments(parser)
    add_recipe_argument(parser)
    parser.add_argument(
        "--budget",
        metavar="DURATION",
        help="time for the benchmark, install excluded, e.g. 15m or 1h: the rounds that fit run "
        "(default: the config's [matrix] budget; with --resume: rounds to add)",
    )
    parser.add_argument(
        "--resume",
        metavar="FOLDER",
        type=Path,
        help="run what is missing from an interrupted benchmark's results folder",
    )
    parser.add_argument(
        "--accept-changed-recipes",
        action="store_true",
        help="with --resume: run the folder's own recipe files even where their source changed "
        "since the run (by default such a resume is refused)",
    )
    add_results_dir_argument(parser)
    add_executor_arguments(parser)


def run(args) -> int:
    if args.quick and args.config:
        raise UsageError("--quick is the quick config: give either --quick or --config")
    name = QUICK_CONFIG if args.quick else args.config
    if args.resume:
        return _resume(args, name)
    if args.budget is not None:
        budget_config.parse_duration(args.budget)  # refused as --budget, not as a config key
    with recipes.loading_allowed():  # the config's recipe_paths and --recipe: to be run
        # The user's own recipes, of --recipe or the config's recipe_paths, are known first:
        # --recipes may name them (then it is the list that runs), or they join what it keeps.
        config = config_module.load(name or DEFAULT_CONFIG)
        config = with_user_recipes(config, args.recipe, asked=args.recipes)
        config = config_module.with_overrides(
            config, apis=args.apis, repeats=args.repeats, budget=args.budget
        )
        results_dir = checked_results_dir(args)
        return runner.start(config, results_dir, command_line(), executor=executor_of(args))


def _resume(args, name: str | None) -> int:
    """--resume: the folder is checked before a cluster is connected or anything written."""
    if matrix_asked(args) or args.recipe:
        raise UsageError(
            "--resume runs the folder's own plan: --recipes, --apis, --repeats and --recipe "
            "cannot change it"
        )
    with recipes.loading_allowed():
        given = config_module.load(name) if name else None
        checked = runner.resumable(
            args.resume, given, args.budget, accept_changed=args.accept_changed_recipes
        )
        return runner.resume(checked, command_line(), executor=executor_of(args))


def command_line() -> str:
    """The command as typed, for env.json and the report's "reproduce" section."""
    if Path(sys.argv[0]).name == "__main__.py":
        return shlex.join(["python", "-m", "bench", *sys.argv[1:]])
    return shlex.join(sys.argv)
