"""The answer first: the machine and run it comes from, the answer table with its errors below
it, and the posts' claims as one small table (claim x backend: verdict and ratio).

One list of blocks (``bench.report.render``) from one ``Answer``
(``bench.analysis.answer_data``): the report opens with it, ``python -m bench report --answer``
and the end of a benchmark print it as Markdown, so all three show the same table.
"""

import math

import pandas as pd

from bench.analysis import claims, estimators
from bench.analysis.answer_data import Answer, Source
from bench.config import injection
from bench.formatting import confidence_text, number, ratio_text
from bench.report import render
from bench.report.answer_table import PORT, answer_table, error_notes
from bench.report.conditions import other_work_text
from bench.report.provenance import commit_text
from vae_impls import registry
from vae_impls.keras_api import GROUP_LABELS, is_port, process_group

ANSWER_TITLE = "Answer"
NO_RECIPES = "No recipe ran or was planned in this folder."
NOTES_LEAD = "Where the code fails as written, or a run went wrong:"
# The answer as Markdown fits a terminal this wide: paragraphs wrap at WRAP_WIDTH, and each
# table row is built short enough (``formatting.ratio_spread_text``, the claims' verdict marks).
TERMINAL_WIDTH = 120
WRAP_WIDTH = 99
# A claim cell's verdict as one mark; the intro of the claims table says what each means.
VERDICT_MARKS = {claims.REPRODUCED: "✓", claims.NOT_REPRODUCED: "✗", claims.INCONCLUSIVE: "?"}


def answer_blocks(answer: Answer) -> list:
    """The answer's blocks: a deliberate slowdown first, where one was injected, then where the
    numbers come from, the table and the claims' verdicts."""
    if not answer.rows:
        table = [("p", NO_RECIPES)]
    else:
        notes = error_notes(answer)
        table = [
            ("table", answer_table(answer), render.ANSWER_CLASS),
            *([("p", NOTES_LEAD), ("ul", notes)] if notes else []),
        ]
    return [
        ("h2", ANSWER_TITLE),
        *_injection_blocks(answer.source),
        ("p", source_sentence(answer.source)),
        *table,
        ("p", _claims_intro(answer.verdicts, answer.source.other_work.shared)),
        ("table", claims_table(answer.verdicts, answer.groups, answer.source.other_work.shared)),
    ]


def answer_markdown(answer: Answer) -> str:
    """The answer as Markdown, as the report.md shows it, its paragraphs wrapped for a
    terminal."""
    return render.markdown(answer_blocks(answer), WRAP_WIDTH)


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
    commit = commit_text(source.git, unknown="unknown")
    return (
        f"On {machine_text(source)}, {other_work_text(source.other_work)} "
        f"({source.folder}: config {source.config}, commit {commit}, "
        f"{rounds}, started {source.started}{of_slice}). Each cell: the recipe's train step "
        f"time over the floor's ({registry.FLOOR}, no KL term) on the same backend, ± the wider "
        "side of the ratio's 95% CI (the report gives both ends); the code as written where it "
        f"works, else its Keras 3 {PORT}; a mark: the code as written fails, with its error "
        "below."
    )


def machine_text(source: Source) -> str:
    """The machine in words: 'Intel Xeon, 2 cores, no GPU', 'one NVIDIA H100 80GB HBM3 beside
    Intel Xeon, 16 cores'."""
    cpu = f"{source.cpu}, {source.cores} cores"
    names = list(dict.fromkeys(source.gpus))
    if not names:
        return f"{cpu}, no GPU"
    if len(source.gpus) == 1:
        gpus = f"one {names[0]}"
    elif len(names) == 1:
        gpus = f"{len(source.gpus)} x {names[0]}"
    else:
        gpus = f"{len(source.gpus)} GPUs ({', '.join(names)})"
    return f"{gpus} beside {cpu}"


SHARED_LABEL = "shared"  # a claims column's verdicts measured on a shared machine


def _claims_intro(verdicts: list, shared: bool = False) -> str:
    """What the claims table shows and what its verdicts hold to; how they are decided is the
    report's claims section (``claim_section.family_clause``) and docs/method.md."""
    evaluated = sum(verdict.judgement is not None for verdict in verdicts)
    marks = ", ".join(f"{mark} {verdict}" for verdict, mark in VERDICT_MARKS.items())
    caveat = (
        "Measured on a shared machine: each verdict below (its column marked "
        f"{SHARED_LABEL}) holds for it with its other work, not for the machine quiet. "
        if shared
        else ""
    )
    held = (
        f"all {evaluated} right together with at least {estimators.CONFIDENCE:.0%} (docs/method.md)"
        if evaluated
        else "no claim has a ratio to decide on"
    )
    return (
        f"{caveat}The posts' speed claims, each range ± the precision the post stated it with; "
        f"each cell: the verdict ({marks}) and our ratio, {held}; the intervals are the "
        "report's:"
    )


def claims_table(verdicts: list, groups: list, shared: bool = False) -> pd.DataFrame:
    """A row per claim (its recipes, post and claimed range), a column per backend of ``groups``
    (``Answer.groups``): the verdict's mark there and our ratio, of the code as written where the
    claim's recipes have a verdict as written, else of their ports. A column whose every ratio is
    a port's says so in its header, else each port's cell does; every column is labelled
    ``SHARED_LABEL`` where the run was ``shared``. Short enough for a terminal's row: the
    intervals are the report's claims section's."""
    by_claim = {}
    for verdict in verdicts:
        by_claim.setdefault(verdict.claim, []).append(verdict)
    chosen = {}  # (claim, group) -> verdict shown
    for claim, found in by_claim.items():
        for verdict in sorted(found, key=lambda verdict: is_port(verdict.api)):
            if verdict.ratio is not None and process_group(verdict.api) in groups:
                chosen.setdefault((claim, process_group(verdict.api)), verdict)
    headers = {}
    for group in groups:
        shown = [verdict for (_, of), verdict in chosen.items() if of == group]
        all_ports = bool(shown) and all(is_port(verdict.api) for verdict in shown)
        label = GROUP_LABELS[group] + (f" {PORT}" if all_ports else "")
        headers[group] = (label + (f" ({SHARED_LABEL})" if shared else ""), not all_ports)
    rows = [
        {
            "claim": f"{claim.recipe} / {claim.baseline} (post {claim.post})",
            "claimed": claim.claimed_range,
            **{
                header: _claim_cell(chosen.get((claim, group)), mark_port)
                for group, (header, mark_port) in headers.items()
            },
        }
        for claim in by_claim
    ]
    return pd.DataFrame(rows, columns=["claim", "claimed", *(h for h, _ in headers.values())])


def _claim_cell(verdict, mark_port: bool = True) -> str:
    """'✗ 1.01x' (the verdict's mark and our ratio), with 'port' where it is the ports' and
    ``mark_port``; '-' where the claim has no ratio on that backend."""
    if verdict is None:
        return "-"
    port = f" {PORT}" if mark_port and is_port(verdict.api) else ""
    mark = VERDICT_MARKS.get(verdict.verdict, verdict.verdict)
    return f"{mark} {number(verdict.ratio.ratio, 2)}x{port}"


def claim_ratio_text(ratio, judgement) -> str:
    """Our ratio with its plain CI and, where the verdict was (or would be) decided on another
    interval, that one too, named by its test: '1.51x [1.47, 1.55]; 99.8% simultaneous [1.45,
    1.57]', '...; 99.6% two one-sided [1.31, 1.50]'. ``ratio`` has
    ratio_between's fields, ``judgement`` a claims.Judgement's (a claim table's row has both)."""
    plain = ratio_text(ratio)
    confidence = judgement.verdict_confidence
    if math.isclose(confidence, estimators.CONFIDENCE) or not math.isfinite(judgement.verdict_low):
        return plain
    interval = f"[{number(judgement.verdict_low, 2)}, {number(judgement.verdict_high, 2)}]"
    return f"{plain}; {confidence_text(confidence)} {judgement.verdict_test} {interval}"
