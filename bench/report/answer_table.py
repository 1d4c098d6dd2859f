"""The answer table's words: each API cell, the short form of an error, and the why column.

Each API column says ``works`` with the recipe's paired ratio to the floor of its own Keras and
the ratio's 95% CI, or the failure the registry expects (``fails: ...``, from the run's own error,
or the registry's where the pair was not run), or what went wrong instead, or ``not run`` /
``n/a``. The ``why`` column words ``bench.analysis.why``: the layers the traced train step runs
more often than the floor's, or, without layer scopes, its convolutions against the floor's.
"""

import math
import re

import pandas as pd

from bench import recipes
from bench.analysis import cost_model, coverage, why
from bench.analysis.answer_data import Answer, Pair
from bench.formatting import ratio_text
from bench.report.cause_words import cause_text
from bench.report.costs import why_phrase
from vae_impls import registry
from vae_impls.keras_api import API_LABELS

API_HEADERS = API_LABELS
ERROR_WIDTH = 80  # characters of an error kept in a cell
FAILS_AS_WRITTEN = "fails as written"
FLOOR_WHY = "the floor: no KL term"


def answer_table(answer: Answer) -> pd.DataFrame:
    """recipe, post, technique, one column per API of the answer, why."""
    return pd.DataFrame(
        [
            {
                "recipe": row.recipe,
                "post": row.post,
                "technique": row.technique,
                **{API_HEADERS[pair.api]: cell_text(pair) for pair in row.pairs},
                "why": why_text(row),
            }
            for row in answer.rows
        ],
        columns=["recipe", "post", "technique", *(API_HEADERS[api] for api in answer.apis), "why"],
    )


# --- the API cells ----------------------------------------------------------------------------


def cell_text(pair: Pair) -> str:
    """What ``pair`` shows on its API: works (with its ratio to the floor), fails as registered,
    went wrong, not run or n/a."""
    if len(pair.ok):
        return _works_text(pair)
    if pair.runs.empty:
        return _not_run_text(pair.recipe, pair.api)
    registered = pair.registered_failures
    if len(registered):
        return f"fails: {short_error(registered.iloc[0].error)}"
    first = pair.runs.iloc[0]
    error = short_error(first.error)
    return f"went wrong: {first.status}" + (f": {error}" if error else "")


def _works_text(pair: Pair) -> str:
    if pair.recipe == registry.FLOOR:
        return "works: the floor"
    if pair.ratio is None or not math.isfinite(pair.ratio.ratio):
        return "works: no floor to compare with"
    return f"works: {ratio_text(pair.ratio)}"


def _not_run_text(recipe: str, api: str) -> str:
    status = recipes.status(recipe, api)
    if status == registry.NOT_APPLICABLE:
        return registry.NOT_APPLICABLE
    if status == registry.FAILS:
        expected = coverage.expected_error(recipe, api)
        return f"fails: {expected} (registry; not run)" if expected else "fails (registry; not run)"
    return coverage.NOT_RUN


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


# --- why ----------------------------------------------------------------------------------------


def why_text(row) -> str:
    """One recipe's reason for its cost on each API it works on, each reason naming its APIs
    where they differ; ``FAILS_AS_WRITTEN`` where it works on none and fails as the registry
    expects; "" where it did neither."""
    reasons = {}
    for api, found in row.whys.items():
        reasons.setdefault(reason_text(found), []).append(API_HEADERS[api])
    if not reasons:
        return FAILS_AS_WRITTEN if any(pair.fails_as_registered for pair in row.pairs) else ""
    if len(reasons) == 1:
        return next(iter(reasons))
    return "; ".join(f"{reason} ({', '.join(apis)})" for reason, apis in reasons.items())


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
