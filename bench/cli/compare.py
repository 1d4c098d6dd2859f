"""Compare two results folders: which recipe x API got faster or slower from A to B.

First the versions, settings and host of both folders, differences marked "*". Then, per recipe
x API in both folders: its ms/step in A and B (median over ok runs), the change B/A with a 95%
bootstrap CI and a Mann-Whitney p-value, and a verdict: faster, slower (the CI excludes 1) or no
significant change. Folders from the same host are compared in ms/step; folders from different
hosts (or one that does not record its host) by each recipe's ratio to plain_ae within its own
folder, which cancels most of a machine's speed. With --fail-slower PCT the exit status is 1
when any recipe x API is significantly slower by more than PCT percent (they are named), else 0.
"""

import math
from pathlib import Path

from bench.analysis import comparison, machine_load
from bench.analysis.comparison import ABSOLUTE, FASTER, NO_CHANGE, SLOWER
from bench.cli.common import declare_recorded
from bench.errors import GATE_FAILED, UsageError, quoted
from bench.formatting import (
    MISSING,
    number,
    p_text,
    signed_percent,
    text_table,
    with_ci,
)
from bench.report.conditions import shared_against_quiet
from bench.report.provenance import backends_sentence, commit_text
from bench.results.env import env_value, host_id
from bench.results.folder import ResultsFolder

DIFFERS = "*"
VERSION_KEYS = ("tensorflow", "keras", "tf_keras", "numpy", "python")
HOST_FACTS = {
    "os": "OS",
    "kernel": "kernel",
    "physical_cpus": "physical CPUs",
    "ram_total_mb": "RAM (MB)",
    "cpu_mhz": "CPU MHz",
    "cpu_governor": "CPU governor",
    "load_average": "load average (1/5/15 min)",
}


def add_arguments(parser) -> None:
    parser.add_argument(
        "a", metavar="A", type=Path, help="the results folder compared with (before)"
    )
    parser.add_argument("b", metavar="B", type=Path, help="the results folder compared (after)")
    parser.add_argument(
        "--fail-slower",
        metavar="PCT",
        help="exit status 1 when a recipe x API is significantly slower by more than PCT percent",
    )


def run(args) -> int:
    limit = None if args.fail_slower is None else percent_limit(args.fail_slower)
    declare_recorded([args.a, args.b])  # their recipes: from their records, never imported
    a, b = (ResultsFolder.existing(path).read() for path in (args.a, args.b))
    result = comparison.compare(a, b)
    print(f"A: {a.folder}\nB: {b.folder}\n")
    facts = fact_rows(a, b)
    print(text_table(("", "A", "B", ""), facts))
    print(f"\n{basis_sentence(result.basis, a.env, b.env)}\n")
    if note := backends_sentence({*a.runs.api, *b.runs.api}):
        print(f"{note}\n")
    if note := shared_against_quiet(["A", "B"], [machine_load.of_results(r) for r in (a, b)]):
        print(f"{note}\n")
    if any(label == "settings hash" and differs for label, _, _, differs in facts):
        print("The settings differ (marked *): the change measures them as much as the code.\n")
    rows = [change_row(change, result.basis) for change in result.changes]
    print(text_table(change_header(result.basis), rows))
    for side, pairs in (("A", result.only_a), ("B", result.only_b)):
        if pairs:
            print(f"only in {side}: {', '.join(f'{recipe} {api}' for recipe, api in pairs)}")
    print(f"\n{summary(result.changes)}")
    return 0 if limit is None else judge(result.changes, limit)


def percent_limit(text: str) -> float:
    """--fail-slower's PCT: a non-negative number, "10" or "10%"."""
    try:
        value = float(text.removesuffix("%"))
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise UsageError(
            f"--fail-slower takes a percentage of 0 or more, e.g. 10, got {quoted(text)}"
        )
    return value


def _text(value) -> str:
    if value is None or value == "":
        return MISSING
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


def versions(results) -> list:
    env = results.env
    return [
        *((key, _text(env.get(key))) for key in VERSION_KEYS),
        ("git commit", commit_text(env.get("git"), length=12)),
    ]


def settings(results) -> list:
    return [
        ("config", _text(env_value(results.env, "config", "name"))),
        ("settings hash", _text(results.folder.settings_hash(results.env))),
    ]


def host(results) -> list:
    env = results.env
    recorded = env_value(env, "host") or {}
    return [
        ("host", host_id(env) or MISSING),
        *((label, _text(recorded.get(key))) for key, label in HOST_FACTS.items()),
        ("GPU", _text(env_value(env, "gpu", "names"))),
        ("GPU driver", _text(env_value(env, "gpu", "driver"))),
    ]


def fact_rows(a, b) -> list:
    """Both folders' facts side by side, differences marked; of the settings the hash covers, only
    those that differ."""

    def side_by_side(facts):
        return [(label, text_a, text_b) for (label, text_a), (_, text_b) in zip(facts(a), facts(b))]

    settings_a, settings_b = comparison.settings(a.env), comparison.settings(b.env)
    differing = [
        (f"  {key}", _text(settings_a.get(key)), _text(settings_b.get(key)))
        for key in {**settings_a, **settings_b}
        if settings_a.get(key) != settings_b.get(key)
    ]
    rows = [*side_by_side(versions), *side_by_side(settings), *differing, *side_by_side(host)]
    return [
        (label, text_a, text_b, DIFFERS if text_a != text_b else "")
        for label, text_a, text_b in rows
    ]


def basis_sentence(basis: str, env_a: dict, env_b: dict) -> str:
    if basis == ABSOLUTE:
        return f"Same host ({host_id(env_a)}): comparing ms/step."
    hosts = " vs ".join(host_id(env) or "not recorded" for env in (env_a, env_b))
    return (
        f"Different hosts ({hosts}): comparing each recipe's {basis} within its own folder, "
        "which cancels most of a machine's speed."
    )


def change_header(basis: str) -> tuple:
    measure = "ms/step" if basis == ABSOLUTE else "ratio"
    return (
        "recipe",
        "API",
        "runs A/B",
        f"{measure} A",
        f"{measure} B",
        "B/A [95% CI]",
        "p",
        "verdict",
    )


def change_row(change, basis: str) -> tuple:
    digits = 1 if basis == ABSOLUTE else 3  # ms/step, or a ratio near 1
    shown = change.verdict in (SLOWER, FASTER)
    verdict = change.verdict + (f" ({signed_percent(change.change - 1)})" if shown else "")
    return (
        change.recipe,
        change.api,
        f"{change.runs_a}/{change.runs_b}",
        number(change.a, digits),
        number(change.b, digits),
        with_ci(change.change, change.ci_low, change.ci_high, "x", 3),
        p_text(change.p_value),
        verdict,
    )


def summary(changes: list) -> str:
    counts = {
        verdict: sum(change.verdict == verdict for change in changes)
        for verdict in (SLOWER, FASTER, NO_CHANGE)
    }
    return (
        f"{len(changes)} recipe x API in both: {counts[SLOWER]} slower, {counts[FASTER]} faster, "
        f"{counts[NO_CHANGE]} without significant change"
    )


def judge(changes: list, limit: float) -> int:
    """--fail-slower: 1 (``GATE_FAILED``) naming every pair significantly slower by more than
    ``limit`` percent, else 0."""
    slower = [change for change in changes if change.slower_than(limit)]
    if not slower:
        print(f"none significantly slower by more than {limit:g}%")
        return 0
    names = ", ".join(
        f"{change.recipe} {change.api} ({signed_percent(change.change - 1)})" for change in slower
    )
    print(f"significantly slower by more than {limit:g}%: {names}")
    return GATE_FAILED
