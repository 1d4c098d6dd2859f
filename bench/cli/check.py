"""CI regression gate: run the ci config and compare each recipe's ratio to plain_ae with a
baseline.

Ratios to plain_ae measured in the same run cancel most of the machine's speed, so the committed
baseline (bench/baseline.json) works across machines. Exit status 1 on any regression, new
failure, moved final loss or missing baseline entry; 0 otherwise. --update-baseline rewrites
the baseline from this run, or from the runs of every folder given to --results (a deliberate
step, never taken by CI; a baseline pooled from several runs is steadier than one run's). Runs
from machines whose package versions differ (env.json's "nodes") are never pooled.

What the gate cannot judge is refused with exit status 2, before any benchmark runs where it can
be known then: a tolerance that is negative or not finite, a baseline that cannot be read or
written, a folder that measured nothing (no run ended ok, failed or diverged), and folders run
under other settings than the baseline's (another config: not a regression, another question).
A new run of the config that measures nothing exits 3, as ``run`` does.
"""

import math
import sys
from dataclasses import dataclass
from pathlib import Path

from bench import recipes
from bench.analysis import baseline_file, gate, machine_load
from bench.cli.common import (
    add_executor_arguments,
    add_results_dir_argument,
    checked_results_dir,
    declare_recorded,
    executor_of,
    executor_requested,
)
from bench.cli.output import OutputFile, write_json_file
from bench.cli.run import command_line
from bench.config import injection
from bench.config import settings as config_module
from bench.errors import GATE_FAILED, UsageError
from bench.report.conditions import shared_against_quiet
from bench.report.gate_table import decision_table
from bench.report.provenance import backends_sentence
from bench.results.folder import ResultsFolder, pooled, read_json
from bench.run import runner
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
        "--yardstick-tolerance",
        type=float,
        default=gate.DEFAULT_YARDSTICK_TOLERANCE,
        help="allowed increase of the floor's ratio to the yardstick, checked where the run timed "
        "one, on any machine (default: %(default)s)",
    )
    parser.add_argument(
        "--results",
        type=Path,
        nargs="+",
        metavar="FOLDER",
        help="judge existing results folders (their runs pooled) instead of running the config; "
        "with --update-baseline, a baseline from several runs of the ci config",
    )
    add_results_dir_argument(parser)
    parser.add_argument(
        "--update-baseline",
        action="store_true",
        help="write the baseline from this run (or the --results folders)",
    )
    add_executor_arguments(parser)


def _check_tolerances(args) -> None:
    """--tolerance and --yardstick-tolerance: a finite fraction above 0; --floor-tolerance: a
    finite fraction of 0 or more. Checked first: a benchmark must not run for minutes to be
    refused for a typo."""
    for flag, value, least in (
        ("--tolerance", args.tolerance, "above 0"),
        ("--yardstick-tolerance", args.yardstick_tolerance, "above 0"),
        ("--floor-tolerance", args.floor_tolerance, "of 0 or more"),
    ):
        below = value < 0 if flag == "--floor-tolerance" else value <= 0
        if not math.isfinite(value) or below:
            raise UsageError(f"{flag} takes a fraction {least}, e.g. 0.06 for 6%, got {value}")


def _load_baseline(path: Path) -> dict:
    try:
        return baseline_file.check_baseline(read_json(path), str(path))
    except FileNotFoundError:
        raise UsageError(
            f"no baseline at {path}; write one with: python -m bench check --update-baseline"
        ) from None
    except (OSError, ValueError) as error:  # JSON and UTF-8 decoding errors are ValueErrors
        raise UsageError(f"cannot read the baseline {path}: {error}") from None


def _measure(args, baseline: dict | None = None) -> list:
    """The results folders to judge: those given, or a new run of the config, once it is known
    that the ``baseline`` (None: a baseline is to be written) can judge it."""
    if args.results:
        if executor_requested(args):
            raise UsageError("--executor and --address run a new benchmark: not with --results")
        declare_recorded(args.results)  # their recipes: from their records, never imported
        return args.results
    with recipes.loading_allowed():  # a config's recipe_paths: its recipes are to be run
        return _measured_anew(args, baseline)


def _measured_anew(args, baseline: dict | None) -> list:
    config = config_module.load(args.config)
    if baseline is not None:
        _check_same_settings(baseline, config.settings_hash, args)
    results_dir = checked_results_dir(args)  # before connecting to a cluster
    executor = executor_of(args)
    folder, runs = runner.create(config, results_dir, command_line())
    status = runner.execute(folder, config, runs, sys.stdout, executor)
    if status:
        raise SystemExit(status)
    return [folder.path]


@dataclass(frozen=True)
class Pool:
    """The folders judged, read, and their runs pooled: what the gate or a new baseline uses."""

    folders: list
    reads: list  # a ``Results`` per folder
    runs: object  # their runs.csv rows, pooled (``bench.results.folder.pooled``)
    blocks: object  # ... and their blocks.csv rows
    settings_hash: str | None

    @classmethod
    def of(cls, folders: list) -> "Pool":
        """The folders read and checked: each measured something, and all may be pooled."""
        reads = [ResultsFolder.existing(folder).read() for folder in folders]
        for results in reads:
            _check_measured(results)
        _check_node_versions(reads)
        settings_hash = _settings_hash(reads)
        return cls(folders, reads, *pooled(reads), settings_hash)


def _check_measured(results) -> None:
    """A UsageError when a folder measured nothing: the gate has nothing to judge there."""
    if len(results.measured):
        return
    raise UsageError(
        f"cannot judge {results.folder}: it measured nothing "
        f"({results.ends or 'no finished run'}); the gate needs runs that ended ok, failed or "
        f"diverged"
    )


def _check_same_settings(baseline: dict, settings_hash: str | None, args) -> None:
    """A UsageError when the runs to judge (the folders of --results, or the config about to run)
    have other settings than the baseline's runs, or settings that cannot be read: a ratio
    measured under other settings is neither a regression nor an improvement."""
    expected = baseline.get("settings_hash")
    if not expected or settings_hash == expected:
        return
    judged = ", ".join(map(str, args.results)) if args.results else f"config {args.config}"
    ran = f"settings {settings_hash}" if settings_hash else "settings that cannot be read"
    raise UsageError(
        f"cannot judge {judged} against {args.baseline}: {ran}, the baseline {expected} (config "
        f"{baseline.get('config') or 'unknown'}); judge runs of that config, or write a baseline "
        f"for this one with --update-baseline"
    )


def _settings_hash(reads: list) -> str:
    """The one settings hash of the folders pooled; a UsageError when they ran under different
    ones."""
    hashes = {results.folder.name: results.folder.settings_hash(results.env) for results in reads}
    if len(set(hashes.values())) > 1:
        listed = ", ".join(f"{name}: {value}" for name, value in hashes.items())
        raise UsageError(f"cannot pool results run under different settings ({listed})")
    return next(iter(hashes.values()))


def _check_node_versions(reads: list) -> None:
    """Runs from machines with other package versions timed different programs: a UsageError
    naming the first package whose version differs between the nodes of the folders pooled."""
    nodes = [node for results in reads for node in _nodes(results.env)]
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


def _nodes(env: dict) -> list:
    """(hostname, {package: version}) of each node env.json's "nodes" records; what is not
    recorded as a kl-bench runner writes it is left out, as unknown."""
    recorded = env.get("nodes")
    nodes = []
    for host, node in recorded.items() if isinstance(recorded, dict) else ():
        facts = node.get("host") if isinstance(node, dict) else None
        versions = node.get("versions") if isinstance(node, dict) else None
        if isinstance(versions, dict):
            name = facts.get("hostname") if isinstance(facts, dict) else None
            texts = {package: None if v is None else str(v) for package, v in versions.items()}
            nodes.append((str(name or host), texts))
    return nodes


def run(args) -> int:
    _check_tolerances(args)
    if args.update_baseline:
        return _update_baseline(args)
    baseline = _load_baseline(args.baseline)
    pool = Pool.of(_measure(args, baseline))
    _check_same_settings(baseline, pool.settings_hash, args)
    return _judge(args, baseline, pool)


def _update_baseline(args) -> int:
    output = OutputFile(args.baseline, "the baseline").checked()  # before a benchmark runs
    pool = Pool.of(_measure(args))
    names = [Path(folder).name for folder in pool.folders]
    content = baseline_file.make_baseline(
        pool.runs, pool.reads[0].env, names, pool.blocks, pool.settings_hash
    )
    written = write_json_file(output, content)
    print(f"baseline written: {written} (from {len(pool.folders)} results folder(s))")
    return 0


def _floor_checks(args, baseline: dict, pool: Pool) -> list:
    """The checks of a slowdown every ratio cancels, each said to have run or why not: the floor
    against the yardstick (where both were timed) and its own ms/step (on the baseline's host)."""
    floor, decisions = registry.FLOOR, []
    yardstick = gate.yardstick_decisions(pool.runs, pool.blocks, baseline, args.yardstick_tolerance)
    if yardstick:
        print(
            f"checks: {floor}'s ratio to the yardstick, on any machine (tolerance "
            f"{args.yardstick_tolerance:.0%})"
        )
    else:
        print(
            f"checks: not {floor}'s ratio to the yardstick (the run or the baseline timed none: "
            f"[training] yardstick)"
        )
    if baseline_file.on_baseline_host(baseline, pool.reads[0].env):
        decisions += gate.floor_decisions(pool.runs, baseline, args.floor_tolerance)
        print(
            f"checks: {floor}'s own ms/step (the baseline was recorded on this host; tolerance "
            f"{args.floor_tolerance:.0%})"
        )
    else:
        print(
            f"checks: not {floor}'s own ms/step (the baseline was recorded on "
            f"{baseline.get('host') or 'an unrecorded host'})"
        )
    return decisions + yardstick


def _judge(args, baseline: dict, pool: Pool) -> int:
    """The gate's decisions printed; ``GATE_FAILED`` when any failed."""
    env = pool.reads[0].env
    decisions = gate.decide(pool.runs, baseline, args.tolerance, pool.blocks)
    print(
        f"\ngate: {', '.join(map(str, pool.folders))} against {args.baseline} "
        f"(tolerance {args.tolerance:.0%})"
    )
    for difference in baseline_file.differences(baseline, env, pool.settings_hash):
        print(f"differs from the baseline: {difference}")
    measured = machine_load.of_blocks_or_env(pool.blocks, env)
    if note := shared_against_quiet(
        ["this run", "the baseline"], [measured, machine_load.of_blocks_or_env(None, baseline)]
    ):
        print(note)
    print(f"checks: each recipe's ratio to {registry.FLOOR}")
    decisions += _floor_checks(args, baseline, pool)
    if note := backends_sentence(set(pool.runs.api)):
        print(note)
    for results in pool.reads:
        injected = results.env.get("injected_slowdown")
        if injected:
            described = injection.describe(injected)
            print(f"deliberate slowdown injected ({injection.ENV_VAR}): {described}")
    print()
    print(decision_table(decisions))
    failed = [d for d in decisions if not d.passed]
    print(
        f"\n{len(failed)} of {len(decisions)} recipe x API checks failed"
        if failed
        else "\ngate passed"
    )
    return GATE_FAILED if failed else 0
