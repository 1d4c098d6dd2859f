"""The answer first: the answer table, the machine and run it comes from, and the claims' verdicts.

One list of blocks (``bench.report.render``) from one ``Answer``
(``bench.analysis.answer_data``): the report opens with it, ``python -m bench report --answer``
and the end of a benchmark print it as Markdown, so all three show the same table.
"""

import math

from bench.analysis import claims, estimators
from bench.analysis.answer_data import Answer, Source
from bench.config import injection
from bench.formatting import number, ratio_text
from bench.report import render
from bench.report.answer_table import answer_table
from bench.report.provenance import commit_text
from vae_impls import registry

ANSWER_TITLE = "Answer"
NO_RECIPES = "No recipe ran or was planned in this folder."


def answer_blocks(answer: Answer) -> list:
    """The answer's blocks: a deliberate slowdown first, where one was injected, then where the
    numbers come from, the table and the claims' verdicts."""
    return [
        ("h2", ANSWER_TITLE),
        *_injection_blocks(answer.source),
        ("p", source_sentence(answer.source)),
        ("table", answer_table(answer)) if answer.rows else ("p", NO_RECIPES),
        ("p", _claims_intro(answer.verdicts)),
        ("ul", verdict_lines(answer.verdicts)),
    ]


def answer_markdown(answer: Answer) -> str:
    """The answer as Markdown, as the report.md shows it."""
    return render.markdown(answer_blocks(answer))


def _injection_blocks(source: Source) -> list:
    if not source.injected:
        return []
    return [
        (
            "p",
            f"DELIBERATE SLOWDOWN INJECTED ({injection.ENV_VAR}): "
            f"{_injected_text(source.injected)}. These timings test the regression gate; "
            "they are not the recipes' own.",
        )
    ]


def _injected_text(injected) -> str:
    """The injected slowdown as the gate's tests write it; anything else in env.json shown as
    found, since a slowdown must be named however it was recorded."""
    numbers = isinstance(injected, dict) and all(
        isinstance(ms, int | float) and not isinstance(ms, bool) for ms in injected.values()
    )
    return injection.describe(injected) if numbers else repr(injected)


def source_sentence(source: Source) -> str:
    """The run and the machine an answer comes from, the floor's own speed there, and how to read
    a cell."""
    rounds = f"{source.rounds} round{'' if source.rounds == 1 else 's'}"
    of_slice = f", {source.sliced}" if source.sliced else ""
    gpu = f"GPU {source.gpu}" if source.gpu else "no GPU"
    floor = "; ".join(
        f"{number(ms)} ms/step of fit on {api}" for api, ms in source.floor_ms.items()
    )
    floor_text = (
        f"the floor {registry.FLOOR} runs at {floor}"
        if floor
        else f"the floor {registry.FLOOR} has no ok runs"
    )
    commit = commit_text(source.git, unknown="unknown")
    return (
        f"From {source.folder} (config {source.config}, commit {commit}, {rounds}, "
        f"started {source.started}"
        f"{of_slice}) on {source.cpu}, {source.cores} cores, {gpu}: {floor_text}. A working "
        "recipe's cell is its train step's time over the floor's of its own Keras (a port's: "
        "Keras 3's) with the ratio's 95% CI, timed in one worker process with the floor wherever "
        "both ran there (ratios.csv's method)."
    )


def _claims_intro(verdicts: list) -> str:
    evaluated = sum(verdict.judgement is not None for verdict in verdicts)
    return (
        "The posts' speed claims, each range ± the precision the post stated it with; "
        f"{family_clause(evaluated)}:"
    )


def family_clause(family_size: int) -> str:
    """Which family of intervals the claims' verdicts control, and how: 'the 14 claim x API
    verdicts are decided on 99.6% simultaneous intervals (Bonferroni, ...)'."""
    if family_size == 0:
        return "no claim has a ratio to decide on"
    if family_size == 1:
        return (
            f"the one claim x API verdict is decided on its ratio's {estimators.CONFIDENCE:.0%} CI"
        )
    confidence = claims.simultaneous_confidence(family_size)
    return (
        f"the {family_size} claim x API verdicts are decided on {confidence_text(confidence)} "
        "simultaneous intervals (Bonferroni: "
        f"1 - {1 - estimators.CONFIDENCE:g}/{family_size} each), "
        f"which all hold together at {estimators.CONFIDENCE:.0%}, shown after each ratio's own "
        f"{estimators.CONFIDENCE:.0%} CI"
    )


def confidence_text(confidence: float) -> str:
    """'99.6%': a confidence with enough decimals to tell it from 100%."""
    shortfall = 100 * (1 - confidence)
    return f"{100 * confidence:.{max(1, math.ceil(-math.log10(shortfall)))}f}%"


def claim_ratio_text(ratio, judgement) -> str:
    """Our ratio with its plain CI and, where the verdict was decided on a wider simultaneous
    interval, that one too: '1.51x [1.47, 1.55]; 99.6% simultaneous [1.45, 1.57]'. ``ratio`` has
    ratio_between's fields, ``judgement`` a claims.Judgement's (a claim table's row has both)."""
    plain = ratio_text(ratio)
    confidence = judgement.verdict_confidence
    if confidence <= estimators.CONFIDENCE or not math.isfinite(judgement.verdict_low):
        return plain
    simultaneous = f"[{number(judgement.verdict_low, 2)}, {number(judgement.verdict_high, 2)}]"
    return f"{plain}; {confidence_text(confidence)} simultaneous {simultaneous}"


def verdict_lines(verdicts: list) -> list:
    """A line per claim: 'Post IV: vae_loss_layer / kl_layer, claimed 1.36-1.5x ±0.05: keras2
    reproduced (1.41x [1.38, 1.44]; 99.6% simultaneous [1.36, 1.46])', each API's verdict after
    the other."""
    by_claim = {}
    for verdict in verdicts:
        by_claim.setdefault(verdict.claim, []).append(verdict)
    return [_verdict_line(claim, found) for claim, found in by_claim.items()]


def _verdict_line(claim: claims.Claim, verdicts: list) -> str:
    head = f"Post {claim.post}: {claim.recipe} / {claim.baseline}, claimed {claim.claimed_range}"
    if all(verdict.ratio is None for verdict in verdicts):
        return f"{head}: not evaluated, the two recipes have no ratio on a common API"
    found = "; ".join(
        f"{verdict.api} {verdict.verdict} ({claim_ratio_text(verdict.ratio, verdict.judgement)})"
        for verdict in verdicts
    )
    return f"{head}: {found}"
