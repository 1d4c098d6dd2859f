"""The CI gate's decisions as the table ``python -m bench check`` prints."""

from bench.formatting import number, signed_percent, text_table, with_ci


def decision_table(decisions: list) -> str:
    header = (
        "recipe",
        "API",
        "check",
        "baseline",
        "current [95% CI]",
        "change",
        "ms/step (baseline)",
        "verdict",
    )
    rows = []
    for d in decisions:
        current = with_ci(d.ratio, d.ci_low, d.ci_high, digits=3)
        ms = f"{number(d.ms_per_step)} ({number(d.baseline_ms_per_step)})"
        verdict = d.verdict + (f": {d.why}" if d.why and not d.passed else "")
        rows.append(
            (
                d.recipe,
                d.api,
                d.check,
                number(d.baseline_ratio, 3),
                current,
                signed_percent(d.change),
                ms,
                verdict,
            )
        )
    return text_table(header, rows)
