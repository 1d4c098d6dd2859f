"""The report's summary of its details: the fastest recipe per API, the precision reached, the
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


def _fastest_sentence(fastest: findings.Fastest) -> str:
    """One API's KL recipe(s) closest to the floor, every recipe whose CI overlaps the best one's
    named as tied, and the floor's own speed."""
    floor = f"the floor {registry.FLOOR} ({verdicts.floor_api_of(fastest.api)})"
    floor_text = (
        f"{floor} runs at {ms_text(fastest.floor_speed)} of fit"
        if fastest.floor_speed is not None
        else f"{floor} has no runs of its own"
    )
    tied = fastest.tied
    if tied.empty:
        return f"{fastest.api}: no KL recipe has a ratio to the floor; {floor_text}."
    named = ", ".join(f"{row.recipe} {ratio_text(row)}" for row in tied.itertuples())
    head = (
        f"the fastest KL recipe is {named} the floor"
        if len(tied) == 1
        else f"{len(tied)} KL recipes are tied for fastest (their CIs overlap), in multiples of "
        f"the floor: {named}"
    )
    return f"{fastest.api}: {head}; {floor_text}."


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
