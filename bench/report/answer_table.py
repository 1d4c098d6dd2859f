"""The answer table's words: a column per backend, the errors below it, and a short why.

A row per recipe: its post, then one column per Keras package and backend the run ran
(``Answer.groups``). A cell shows the recipe's paired ratio to the floor of its own backend with
the ratio's 95% CI as the wider of its sides (``formatting.ratio_spread_text``: four backends'
cells and a why fit a 120-column terminal; the report's ratio table gives both ends), for the
code as written where it works there, else for its port, marked ``port``; a footnote mark
follows where the code as written fails (or a run went wrong), and each distinct error is written
once, below the table (``error_notes``). The floor's row gives its own ms/step. The ``why``
column is one short clause per row (``why_clause``): what the step runs more than the floor's,
and where it costs; the full reasons, per API, are ``why_table``'s, in the report's details.
"""

import math
import re

import pandas as pd

from bench import recipes
from bench.analysis import cost_model, coverage, why
from bench.analysis.answer_data import Answer, Cell, Pair
from bench.formatting import number, ratio_spread_text
from bench.report.cause_words import OUTSIDE_LAYERS_TEXT, cause_text
from bench.report.costs import TITLE as COST_TITLE
from bench.report.costs import short_unit_name, unit_name, why_phrase
from bench.results.records import OUTSIDE_LAYERS
from vae_impls import registry
from vae_impls.keras_api import API_LABELS, GROUP_LABELS

API_HEADERS = API_LABELS
ERROR_WIDTH = 80  # characters of an error kept in a note
FAILS_AS_WRITTEN = "fails as written"
FLOOR_WHY = "the floor: no KL term"
PORT = "port"  # what a cell showing the port's ratio says after it
NO_COST = "within noise"  # no cost the measurements tell from their noise
ENCODER_TWICE = "encoder twice"
# a gap that no count explains, in words short enough for a 120-column row
UNEXPLAINED = "unexplained gap"
SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def mark(index: int) -> str:
    """A footnote mark: '¹', '¹²'."""
    return str(index).translate(SUPERSCRIPTS)


class Notes:
    """The footnotes of one table: each distinct text gets one mark, in order of first use."""

    def __init__(self):
        self.texts = {}

    def mark(self, text: str) -> str:
        return mark(self.texts.setdefault(text, len(self.texts) + 1))

    def lines(self) -> list:
        return [f"{mark(index)} {text}" for text, index in self.texts.items()]


def answer_table(answer: Answer) -> pd.DataFrame:
    """recipe, post, one column per backend the run ran, why."""
    return _table_and_notes(answer)[0]


def error_notes(answer: Answer) -> list:
    """Each distinct error of the answer table once, after its mark: '¹ TypeError: ...'."""
    return _table_and_notes(answer)[1].lines()


def _table_and_notes(answer: Answer) -> tuple:
    notes = Notes()
    headers = [GROUP_LABELS[group] for group in answer.groups]
    rows = [
        {
            "recipe": row.recipe,
            "post": row.post,
            **{
                GROUP_LABELS[cell.group]: cell_text(cell, notes, answer.source.floor_ms)
                for cell in row.cells
            },
            "why": why_clause(row),
        }
        for row in answer.rows
    ]
    return pd.DataFrame(rows, columns=["recipe", "post", *headers, "why"]), notes


# --- the backend cells ------------------------------------------------------------------------


def cell_text(cell: Cell, notes: Notes, floor_ms: dict) -> str:
    """One backend's cell: the ratio of the code that runs there (the port's marked so), with a
    mark where the code as written fails; else what became of each."""
    shown = cell.shown
    if shown is None:
        return _nothing_works(cell, notes)
    if shown.recipe == registry.FLOOR:
        ms = floor_ms.get(shown.api, math.nan)
        # the row's why says it is the floor; its cells give its own speed
        return f"{number(ms)} ms/step" if math.isfinite(ms) else "the floor"
    ratio = shown.ratio
    text = (
        ratio_spread_text(ratio)
        if ratio is not None and math.isfinite(ratio.ratio)
        else "no floor to compare with"
    )
    if shown is cell.port:
        text += f" {PORT}"
        if cell.written is not None and not len(cell.written.ok):
            text += _mark_of(cell.written, notes)
    return text


def _nothing_works(cell: Cell, notes: Notes) -> str:
    written = _status_text(cell.written, notes) if cell.written else ""
    port = _status_text(cell.port, notes) if cell.port else ""
    if port in ("", registry.NOT_APPLICABLE):
        return written or registry.NOT_APPLICABLE
    if written in ("", registry.NOT_APPLICABLE):
        return f"{PORT} {port}"
    return f"{written}; {PORT} {port}"


def _status_text(pair: Pair, notes: Notes) -> str:
    """What a pair without ok runs shows: fails or went wrong with its note's mark, not run or
    n/a."""
    if pair.runs.empty:
        status = recipes.status(pair.recipe, pair.api)
        if status == registry.NOT_APPLICABLE:
            return registry.NOT_APPLICABLE
        if status != registry.FAILS:
            return coverage.NOT_RUN
        return "fails" + _mark_of(pair, notes)
    registered = pair.registered_failures
    return ("fails" if len(registered) else "went wrong") + _mark_of(pair, notes)


def _mark_of(pair: Pair, notes: Notes) -> str:
    """The mark of the note that says why ``pair`` (without ok runs) did not work; "" where it
    was only not run."""
    text = note_text(pair)
    return notes.mark(text) if text else ""


def note_text(pair: Pair) -> str:
    """The error of a pair without ok runs as its note says it: the run's own error where it
    failed as the registry expects, the registry's where it was not run, or what went wrong."""
    if pair.runs.empty:
        if recipes.status(pair.recipe, pair.api) != registry.FAILS:
            return ""
        expected = coverage.expected_error(pair.recipe, pair.api)
        return f"{expected or 'fails'} (as the registry expects; not run here)"
    registered = pair.registered_failures
    if len(registered):
        error = short_error(registered.iloc[0].error).rstrip()
        return f"{error.rstrip(':')} (no message)" if error.endswith(":") else error or "fails"
    first = pair.runs.iloc[0]
    error = short_error(first.error)
    return f"went wrong: {first.status}" + (f": {error}" if error else "")


def short_error(error: str) -> str:
    """An error's type and first sentence, without the reprs in parentheses, cut at a word
    boundary to ``ERROR_WIDTH``: what tells one failure from another."""
    text = _without_parenthesized(str(error).strip().splitlines()[0] if str(error).strip() else "")
    text = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0].rstrip(".")
    text = re.sub(r"\s+", " ", text).replace(" ,", ",")
    if len(text) <= ERROR_WIDTH:
        return text
    return text[: ERROR_WIDTH - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def _without_parenthesized(text: str) -> str:
    """``text`` with every non-empty parenthesized group dropped, nested ones too; an empty pair,
    a call's ``()``, stays."""
    empty = "\0"
    text = text.replace("()", empty)
    while True:
        shorter = re.sub(r"\([^()]*\)", "", text)
        if shorter == text:
            return text.replace(empty, "()")
        text = shorter


# --- why, in one clause -----------------------------------------------------------------------


def short_group(group: str) -> str:
    """A backend column's name in a why clause: 'Keras 2', 'TF', 'JAX', 'PyTorch'."""
    label = GROUP_LABELS[group].removeprefix("Keras 3 ")
    return label


def short_reason(found: why.Why) -> str:
    """A few words on what one ``why.Why`` puts a cost down to: the encoder twice, the extra
    operators of a launch-bound step, the extra convolutions of an arithmetic-bound one, a gap
    nothing counted explains; or that no cost was measured."""
    if found.kind == why.FLOOR:
        return FLOOR_WHY
    parts = [ENCODER_TWICE] if found.encoder_twice else []
    cost = found.cost
    units = cost.units if cost is not None else math.nan
    if cost is not None and math.isfinite(units) and units > 0:
        if cost.regime == cost_model.LAUNCH_BOUND:
            # what one unit costs is the report's: the clause fits a terminal's row
            parts.append(f"+{units:.0f} {short_unit_name(cost.count, units)}, launch-bound")
        elif cost.regime == cost_model.ARITHMETIC_BOUND and not found.encoder_twice:
            parts.append(f"+{units:.0f} {unit_name(cost.count, units)}")
    if parts:
        return ", ".join(parts)
    explained = (cost_model.LAUNCH_BOUND, cost_model.ARITHMETIC_BOUND, cost_model.NO_GAP)
    if not found.slower or (cost is not None and cost.regime in explained):
        return NO_COST  # no gap, or one the cost model finds within its noise
    repeated = found.cause.repeated_layers if found.cause is not None else {}
    if repeated:
        outside = set(repeated) == {OUTSIDE_LAYERS}
        return f"more {OUTSIDE_LAYERS_TEXT.removeprefix('the ')}" if outside else "layers rerun"
    return UNEXPLAINED


def why_clause(row) -> str:
    """One short clause on why the recipe costs what it does where it works, naming the backends
    where they differ, the backends without a cost beyond noise unnamed: 'encoder twice',
    '+70 ops, launch-bound (PyTorch)', 'encoder twice (Keras 2, TF, PyTorch)';
    ``FAILS_AS_WRITTEN`` where it works nowhere and fails as the registry expects."""
    reasons = {}
    for cell in row.cells:
        shown = cell.shown
        if shown is not None and shown.api in row.whys:
            reasons.setdefault(short_reason(row.whys[shown.api]), []).append(
                short_group(cell.group)
            )
    if not reasons:
        failing = any(pair.fails_as_registered for pair in row.pairs)
        return FAILS_AS_WRITTEN if failing else ""
    if len(reasons) == 1:
        return next(iter(reasons))
    # the backends that pay nothing go unnamed: their cells show it, and the clause stays short
    costs = {reason: groups for reason, groups in reasons.items() if reason != NO_COST}
    shared = _shared_lead(costs)
    if shared and len(costs) == len(reasons):
        rest = [
            (reason.removeprefix(shared).lstrip(", "), groups) for reason, groups in costs.items()
        ]
        return "; ".join(
            [shared, *(f"{reason} ({', '.join(groups)})" for reason, groups in rest if reason)]
        )
    return "; ".join(f"{reason} ({', '.join(groups)})" for reason, groups in costs.items())


def _shared_lead(reasons: dict) -> str:
    """The encoder twice, where every backend's reason starts with it."""
    return ENCODER_TWICE if all(reason.startswith(ENCODER_TWICE) for reason in reasons) else ""


# --- why, in full -----------------------------------------------------------------------------


WHY_TITLE = "Why each recipe costs what it does"


def why_blocks(answer: Answer) -> list:
    """The report's section of the full reasons the answer's why column sums up."""
    table = why_table(answer)
    if table.empty:
        return [("h2", WHY_TITLE), ("p", "No KL recipe ran ok: there is no cost to explain.")]
    return [
        ("h2", WHY_TITLE),
        (
            "p",
            "The answer's why column in full, per API: what the traced train step runs more "
            f"than the floor's and what the cost model makes of the gap ('{COST_TITLE}').",
        ),
        ("table", table),
    ]


def why_table(answer: Answer) -> pd.DataFrame:
    """recipe, API, why: each working KL recipe's full reason on each API."""
    return pd.DataFrame(
        [
            (row.recipe, API_HEADERS[api], reason_text(found))
            for row in answer.rows
            for api, found in row.whys.items()
            if found.kind != why.FLOOR
        ],
        columns=["recipe", "API", "why"],
    )


def reason_text(found: why.Why) -> str:
    """One ``why.Why`` in words: the cost model's reason where it modelled the pair, after what
    the counts show the step runs more than the floor (the encoder's layers twice, other
    convolutions), else the layers' or the convolutions' reason alone."""
    if found.kind == why.FLOOR:
        return FLOOR_WHY
    counted = _counted_reason(found)
    if found.cost is None or found.cost.regime == cost_model.NOT_COUNTED:
        return counted
    modelled = why_phrase(found.cost)
    return f"{counted}; {modelled}" if _counts_differ(found) else modelled


def _counted_reason(found: why.Why) -> str:
    if found.kind == why.CAUSE:
        return cause_text(found.cause, slower=found.slower)
    if found.kind == why.NO_COUNTS:
        return "no op counts"
    return _op_reason(found)


def _counts_differ(found: why.Why) -> bool:
    """Whether the counts name something the step runs that the floor's does not: the encoder
    twice, or other convolutions than the floor's."""
    if found.encoder_twice:
        return True
    return found.kind == why.OP_COUNTS and not _convolutions_against_floor(found)[1]


def _convolutions_against_floor(found: why.Why) -> tuple:
    """(the changed counts in words, whether the convolutions are the floor's, whether there are
    only more of them): by TensorFlow's op types where counted, else in all."""
    by_type = found.op_difference
    extra = found.encoder.extra_convolutions
    if by_type is None:
        return f"{extra:+g} convolutions", extra == 0, extra > 0
    changed = ", ".join(f"{count:+d} {op}" for op, count in by_type.items() if count)
    same = not any(by_type[op] for op in by_type if op != "MatMul")
    more = all(by_type[op] >= 0 for op in by_type if op != "MatMul")
    return changed, same, more


def _op_reason(found: why.Why) -> str:
    """The convolutions against the floor's."""
    changed, same, more = _convolutions_against_floor(found)
    if same:
        return "same convolutions as the floor"
    if found.encoder:
        return f"encoder in the graph twice: {changed}"
    if more:
        return f"more convolutions than the floor: {changed}"
    return f"other convolutions than the floor: {changed}"
