"""The report's summary of its details: the fastest and slowest recipe per API where the intervals
name them, the precision reached, the
quality guard, the recipes that failed as the registry expects and the runs that went wrong."""

import pandas as pd

from bench.analysis import findings, verdicts
from bench.analysis.tables import (
    Tables,
)
from bench.formatting import (
    ratio_text,
)
from bench.report import quality_sections
from bench.report.ratio_sections import precision_of
from bench.report.table_cells import ms_text
from bench.report.went_wrong import NOTHING_WENT_WRONG, WENT_WRONG_TITLE
from bench.results.folder import Results
from vae_impls import registry

SHOWN_UNRESOLVED = 3  # the recipes a summary names that it cannot tell from the leader


def _named(rows) -> str:
    return ", ".join(f"{row.recipe} {ratio_text(row)}" for row in rows.itertuples())


def _extreme_clause(extreme: findings.Extreme, word: str) -> str:
    """'the fastest KL recipe is X 1.01x [..]', '2 KL recipes are tied for fastest ...', or
    that the intervals name none: the leader's overlaps a wide one."""
    named, unresolved = extreme.named, extreme.unresolved
    if len(named) == 1:
        return f"the {word} KL recipe is {_named(named)} the floor"
    if len(named) > 1:
        return (
            f"{len(named)} KL recipes are tied for {word} (their CIs overlap, each within "
            f"±{findings.TIE_HALF_WIDTH:.0%}), in multiples of the floor: {_named(named)}"
        )
    leader, rest = unresolved.iloc[:1], unresolved.iloc[1:]
    if rest.empty:
        return f"no {word} KL recipe: {_named(leader)} has no CI to tell it from the others"
    more = f" and {len(rest) - SHOWN_UNRESOLVED} more" if len(rest) > SHOWN_UNRESOLVED else ""
    return (
        f"no {word} KL recipe: {_named(leader)} cannot be told from "
        f"{_named(rest.iloc[:SHOWN_UNRESOLVED])}{more} (an overlap with a wide CI, or with no CI, "
        "is not a tie)"
    )


def _fastest_sentence(fastest: findings.Fastest) -> str:
    """One API's fastest and slowest KL recipes, where their intervals name them, and the floor's
    own speed; a run of one process per recipe says that it decides nothing."""
    floor = f"the floor {registry.FLOOR} ({verdicts.floor_api_of(fastest.api)})"
    floor_text = (
        f"{floor} runs at {ms_text(fastest.floor_speed)} of fit"
        if fastest.floor_speed is not None
        else f"{floor} has no runs of its own"
    )
    if fastest.ranked.empty:
        return f"{fastest.api}: no KL recipe has a ratio to the floor; {floor_text}."
    if fastest.one_process:
        return (
            f"{fastest.api}: each KL recipe was measured in one process, so no ratio has an "
            "interval and this run decides nothing: it names no fastest or slowest recipe; "
            f"{floor_text}."
        )
    clauses = [_extreme_clause(fastest.fastest, "fastest")]
    slowest = fastest.slowest
    if len(slowest.named) and not set(slowest.named.recipe) & set(fastest.fastest.named.recipe):
        clauses.append(_extreme_clause(slowest, "slowest"))
    return f"{fastest.api}: {'; '.join(clauses)}; {floor_text}."


def _fastest_sentences(tables: Tables) -> list:
    sentences = [
        _fastest_sentence(fastest)
        for fastest in findings.fastest_per_api(tables.speed, tables.ratios)
    ]
    return sentences or ["No run finished ok: there are no timings."]


def _quality_sentence(tables: Tables) -> str:
    return quality_sections.band_sentence(tables.quality) + _same_loss_sentence(tables.round_checks)


def _same_loss_sentence(checks: pd.DataFrame) -> str:
    return quality_sections.same_loss_sentences(checks)


def _registered_sentences(tables: Tables) -> list:
    """The failures the registry expects, named as part of the answer, never as runs gone
    wrong."""
    registered = tables.failed_as_registered
    if registered.empty:
        return []
    pairs = ", ".join(dict.fromkeys(f"{row.recipe} ({row.api})" for row in registered.itertuples()))
    return [
        f"{len(registered)} run(s) failed as the registry expects, each recipe raising as "
        f"written on that Keras (see the answer): {pairs}."
    ]


def _went_wrong_sentence(tables: Tables) -> str:
    counts = tables.went_wrong.status.value_counts(sort=False)
    if not len(counts):
        return NOTHING_WENT_WRONG
    outcomes = ", ".join(f"{count} {status}" for status, count in counts.items())
    return f"{len(tables.went_wrong)} run(s) went wrong ({outcomes}): see '{WENT_WRONG_TITLE}'."


def summary_blocks(results: Results, tables: Tables) -> list:
    """The summary of the details: the fastest recipes, the precision, the quality guard, the
    failures the registry expects and the runs that went wrong."""
    return [
        ("h2", "Summary"),
        (
            "ul",
            [
                *_fastest_sentences(tables),
                precision_of(results, tables),
                _quality_sentence(tables),
                *_registered_sentences(tables),
                _went_wrong_sentence(tables),
            ],
        ),
    ]
