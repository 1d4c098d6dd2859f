"""The report's "What the budget bought": each time budget the folder was given and how it
ended, the precision its ratios reached, and each claim decided or not; for one undecided, the
minutes that would decide it at the spread measured and the command that buys them."""

import math

from bench.analysis import allocation, estimators, findings, selection
from bench.analysis.claims import INCONCLUSIVE
from bench.analysis.tables import Tables
from bench.formatting import duration, percent, ratio_text
from bench.report.answer import claim_ratio_text
from bench.results.folder import Results

BUDGET_TITLE = "What the budget bought"


def budget_blocks(results: Results, tables: Tables) -> list:
    """The section's blocks: the budgets, the precision, the claims."""
    return [
        ("h2", BUDGET_TITLE),
        ("ul", [*_budget_lines(results), _precision_line(results, tables)]),
        *_claim_blocks(results, tables),
    ]


def _budget_lines(results: Results) -> list:
    budgets = results.env.get("budgets", [])
    if not budgets:
        rounds = int(results.runs.repeat.max()) if len(results.runs) else 0
        return [f"No time budget: {rounds} round(s) of the plan, as many as it fixed."]
    return [_budget_line(entry) for entry in budgets]


def _budget_line(entry: dict) -> str:
    rounds = entry.get("rounds_added") or []
    added = (
        f"{len(rounds)} round(s) after the first ({', '.join(map(str, rounds))})"
        if rounds
        else "no round after the first"
    )
    took = entry.get("wall_seconds")
    took_text = f", took {duration(took)}" if isinstance(took, int | float) else ""
    ended = entry.get("ended") or "interrupted"
    return (
        f"A budget of {duration(entry['seconds'])} ({entry.get('command', 'unknown command')})"
        f"{took_text}: {added}; it ended because {ended}."
    )


def _precision_line(results: Results, tables: Tables) -> str:
    precision = findings.precision(tables.ratios)
    if precision is None:
        return "No ratio to the floor has a CI yet: it takes 2 or more processes."
    within = (tables.ratios.half_width <= estimators.PRECISION_TARGET).sum()
    widest = precision.widest
    return (
        f"Ratios to the floor: {percent(precision.median.half_width)} at the median, "
        f"{percent(widest.half_width)} at worst ({widest.recipe}, {widest.api}); {within} of "
        f"{len(tables.ratios)} within the ±{100 * estimators.PRECISION_TARGET:g}% target."
    )


def _claim_blocks(results: Results, tables: Tables) -> list:
    claims = tables.claims
    if claims.empty:
        return []
    decided = (claims.verdict != INCONCLUSIVE).sum()
    head = f"Claims: {decided} of {len(claims)} claim x API verdicts decided."
    shown = allocation.Shown(tables.ratios, claims, tables.readings)
    candidates = allocation.wanted(shown, results.blocks)
    costs = allocation.Costs.of(results.runs, results.epochs, results.blocks)
    found = allocation.undecided(
        claims, candidates, costs, selection.timed_only_recipes(results.runs)
    )
    if not found:
        return [("p", head)]
    folder = results.folder.path
    return [
        ("p", head + " Undecided, each with the interval that would decide it:"),
        ("ul", [_undecided_line(one, folder) for one in found]),
    ]


def _undecided_line(one: allocation.Undecided, folder) -> str:
    row, claim = one.row, one.row.claim
    low, high = claim.equivalence_range
    measured = (
        claim_ratio_text(row, row)
        if math.isfinite(row.verdict_high)
        else f"{ratio_text(row)}, no interval yet"
    )
    head = f"{claim.recipe} / {claim.baseline} ({row.api}): {measured}, against {low:g}-{high:g}x"
    if one.processes == 0:
        return f"{head}: the ratio lies on a bound of the claim; no precision decides it."
    if one.processes + int(row.n) >= allocation.MOST_PROCESSES:
        return (
            f"{head}: its interval would need over {allocation.MOST_PROCESSES} processes to clear "
            f"the nearer bound, beyond any budget: the ratio lies too close to it."
        )
    if math.isnan(one.seconds):
        return (
            f"{head}: about {one.processes} more process(es) would decide it, but its ratio is at "
            f"its precision target, where a budget's rounds no longer go."
        )
    minutes = math.ceil(one.seconds / 60)
    return (
        f"{head}: about {one.processes} more process(es), ~{minutes} min: "
        f"`python -m bench run --resume {folder} --budget {minutes + 1}m`"
    )
