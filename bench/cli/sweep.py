"""Run one config's matrix under several values of one or more settings, in the same rounds.

``--vary training.batch_size=128,256 --vary device.xla=off,autojit`` runs every combination of
the values (a variant) for every recipe x API, all variants' runs interleaved and shuffled in the
same rounds, into one results folder. Each run records its variant; the report's "Sweep" section
shows each ratio to the floor and each claim per variant, and says which gaps survive which
setting. The plan's size is bounded (its runs, all variants' together, as a run's are), and
every variant's config is checked before anything runs. ``run --resume`` finishes a sweep.
"""

from pathlib import Path

from bench.cli.common import add_executor_arguments, executor_of
from bench.cli.run import DEFAULT_CONFIG, command_line
from bench.config import settings as config_module
from bench.config import sweep
from bench.results.folder import ResultsFolder
from bench.run import runner
from vae_impls.keras_api import APIS


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
    parser.add_argument("--recipes", nargs="+", metavar="RECIPE", help="run only these recipes")
    parser.add_argument(
        "--apis", nargs="+", metavar="API", help=f"run only these APIs ({', '.join(APIS)})"
    )
    parser.add_argument(
        "--repeats", type=int, metavar="N", help="rounds of every variant x recipe x API"
    )
    parser.add_argument(
        "--results-dir",
        metavar="DIR",
        type=Path,
        default=Path("results"),
        help="where the results folder is created (default: ./results)",
    )
    add_executor_arguments(parser)


def run(args) -> int:
    base = config_module.with_overrides(
        config_module.load(args.config), recipes=args.recipes, apis=args.apis, repeats=args.repeats
    )
    variants = sweep.checked_variants(base, args.vary)  # the plan's size first, then each variant
    ResultsFolder.check_results_dir(args.results_dir)  # before connecting to a cluster
    return runner.start(
        base,
        args.results_dir,
        command_line(),
        variants=variants,
        executor=executor_of(args),
    )
