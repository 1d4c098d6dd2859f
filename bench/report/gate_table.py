"""The CI gate's decisions as the table ``python -m bench check`` prints."""

from bench.analysis import gate
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
        why = decision_reason_text(d)
        verdict = d.verdict + (f": {why}" if why and not d.passed else "")
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


def decision_reason_text(decision: gate.Decision) -> str:
    """A decision's reason in words; "" where it has none."""
    reason = decision.reason
    if reason is None:
        return ""
    facts, kind = reason.facts, reason.kind
    if kind == gate.NO_ENTRY:
        return "no baseline entry: review, then python -m bench check --update-baseline"
    if kind == gate.RUN_ERROR:
        return facts["error"]
    if kind == gate.NOW_WORKS:
        return "failed in the baseline; update the baseline once reviewed"
    if kind == gate.FASTER_NOW:
        return "ratio and CI below the baseline's: consider updating the baseline"
    if kind == gate.NOT_IN_RUN:
        return "in the baseline but not in this run"
    if kind == gate.LOSS_OUTSIDE_BAND:
        low, high = facts["band"]
        return (
            f"final loss {facts['final_loss']:.4f} outside baseline band [{low:.4f}, {high:.4f}] "
            f"+-{facts['margin']:.0%}"
        )
    if kind == gate.LOSS_UNMATCHED:
        return (
            f"final loss {facts['final_loss']:.6f} equals no other recipe's in round "
            f"{facts['round']} (closest {facts['closest']:.6f})"
        )
    return _rose_text(decision, facts["tolerance"], kind)


def _rose_text(d: gate.Decision, tolerance: float, kind: str) -> str:
    """A check that rose past its baseline, with the numbers it rose by."""
    if kind == gate.FLOOR_ROSE:
        return f"CI lower bound {d.ci_low:.3f} x the baseline's ms/step > {1 + tolerance:.2f}"
    head = (
        f"ratio {d.ratio:.3f} > {d.baseline_ratio:.3f} x {1 + tolerance:.2f}, CI lower bound "
        f"{d.ci_low:.3f} above the baseline"
    )
    return head + (": every step slower than the machine" if kind == gate.YARDSTICK_ROSE else "")
