"""CI regression gate: run the ci config and compare each recipe's ratio to plain_ae with a baseline.

Ratios to plain_ae measured in the same run cancel most of the machine's speed, so the committed
baseline (bench/baseline.json) works across machines. Exit status 1 on any regression, new
failure, moved final loss or missing baseline entry; 0 otherwise. --update-baseline rewrites
the baseline from this run, or from the runs of every folder given to --results (a deliberate
step, never taken by CI; a baseline pooled from several runs is steadier than one run's). Runs
from machines whose package versions differ (env.json's "nodes") are never pooled.
"""

import json
import sys
from pathlib import Path

from bench.analysis import gate
from bench.cli.common import add_executor_arguments, executor_requested
from bench.cli.run import command_line
from bench.config import injection
from bench.config import settings as config_module
from bench.errors import UsageError
from bench.results.folder import ResultsFolder, pooled, write_json
from bench.run import executors, runner
from vae_impls import registry

BASELINE = Path(__file__).resolve().parent.parent / "baseline.json"


def add_arguments(parser) -> None:
    parser.add_argument(
        "--config", default="ci", metavar="FILE", help="config to run (default: ci)"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=BASELINE,
        metavar="FILE",
        help="baseline JSON (default: bench/baseline.json)",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=gate.DEFAULT_TOLERANCE,
        help="allowed ratio increase before a regression (default: %(default)s)",
    )
    parser.add_argument(
        "--floor-tolerance",
        type=float,
        default=gate.DEFAULT_FLOOR_TOLERANCE,
        help="allowed increase of the floor's own ms/step, checked on the baseline's host "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--results",
        type=Path,
        nargs="+",
        metavar="FOLDER",
        help="judge existing results folders (their runs pooled) instead of running the config; "
        "with --update-baseline, a baseline from several runs of the ci config",
    )
    parser.add_argument("--results-dir", type=Path, default=Path("results"), metavar="DIR")
    parser.add_argument(
        "--update-baseline",
        action="store_true",
        help="write the baseline from this run (or the --results folders)",
    )
    add_executor_arguments(parser)


def _load_baseline(path: Path) -> dict:
    try:
        return gate.check_baseline(json.loads(path.read_text(encoding="utf-8")), str(path))
    except FileNotFoundError:
        raise UsageError(
            f"no baseline at {path}; write one with: python -m bench check --update-baseline"
        ) from None
    except (OSError, ValueError) as error:  # JSON and UTF-8 decoding errors are ValueErrors
        raise UsageError(f"cannot read the baseline {path}: {error}") from None


def _measure(args) -> list:
    """The results folders to judge: those given, or a new run of the config."""
    if args.results:
        if executor_requested(args):
            raise UsageError("--executor and --address run a new benchmark: not with --results")
        return args.results
    config = config_module.load(args.config)
    executor = executors.choose(args.executor, args.address)
    folder, runs = runner.create(config, args.results_dir, command_line())
    status = runner.execute(folder, config, runs, sys.stdout, executor)
    if status:
        raise SystemExit(status)
    return [folder.path]


def _settings_hash(reads: list) -> str:
    """The one settings hash of the folders pooled; a UsageError when they ran under different ones."""
    hashes = {results.folder.name: results.folder.settings_hash(results.env) for results in reads}
    if len(set(hashes.values())) > 1:
        listed = ", ".join(f"{name}: {value}" for name, value in hashes.items())
        raise UsageError(f"cannot pool results run under different settings ({listed})")
    return next(iter(hashes.values()))


def _check_node_versions(reads: list) -> None:
    """Runs from machines with other package versions timed different programs: a UsageError
    naming the first package whose version differs between the nodes of the folders pooled."""
    nodes = [
        (node["host"].get("hostname") or host, node.get("versions", {}))
        for results in reads
        for host, node in results.env.get("nodes", {}).items()
    ]
    for package in sorted({package for _, versions in nodes for package in versions}):
        hosts_by_version = {}
        for hostname, versions in nodes:
            hosts_by_version.setdefault(versions.get(package), []).append(hostname)
        if len(hosts_by_version) > 1:
            listed = "; ".join(
                f"{version} on {', '.join(hosts)}" for version, hosts in hosts_by_version.items()
            )
            raise UsageError(
                f"cannot pool runs from nodes with different {package} versions ({listed})"
            )


def run(args) -> int:
    baseline = None if args.update_baseline else _load_baseline(args.baseline)
    folders = _measure(args)
    reads = [ResultsFolder.existing(folder).read() for folder in folders]
    _check_node_versions(reads)
    settings_hash = _settings_hash(reads)
    runs, blocks = pooled(reads)
    if args.update_baseline:
        write_json(
            args.baseline,
            gate.make_baseline(
                runs, reads[0].env, [Path(folder).name for folder in folders], blocks, settings_hash
            ),
        )
        print(f"baseline written: {args.baseline} (from {len(folders)} results folder(s))")
        return 0
    decisions = gate.compare(runs, baseline, args.tolerance, blocks)
    print(
        f"\ngate: {', '.join(map(str, folders))} against {args.baseline} (tolerance {args.tolerance:.0%})"
    )
    for difference in gate.differences(baseline, reads[0].env, settings_hash):
        print(f"differs from the baseline: {difference}")
    if gate.on_baseline_host(baseline, reads[0].env):
        decisions += gate.floor_decisions(runs, baseline, args.floor_tolerance)
        print(
            f"checks: each recipe's ratio to {registry.FLOOR}, and {registry.FLOOR}'s own ms/step (the baseline "
            f"was recorded on this host; tolerance {args.floor_tolerance:.0%})"
        )
    else:
        print(
            f"checks: each recipe's ratio to {registry.FLOOR}; not {registry.FLOOR}'s own ms/step (the baseline "
            f"was recorded on {baseline.get('host') or 'an unrecorded host'})"
        )
    for results in reads:
        injected = results.env.get("injected_slowdown")
        if injected:
            print(
                f"deliberate slowdown injected ({injection.ENV_VAR}): {injection.describe(injected)}"
            )
    print()
    print(gate.format_table(decisions))
    failed = [d for d in decisions if not d.passed]
    print(
        f"\n{len(failed)} of {len(decisions)} recipe x API checks failed"
        if failed
        else "\ngate passed"
    )
    return 1 if failed else 0
