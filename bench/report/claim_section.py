"""The report's "The posts' claims": each claim's ratio here against the post's, and its verdict."""

from bench.analysis import claims, estimators
from bench.analysis.tables import Tables
from bench.formatting import confidence_text
from bench.report.answer import VERDICT_MARKS, claim_ratio_text
from bench.report.conditions import conditions_text
from bench.report.table_cells import table_block
from bench.results.folder import Results


def _posts_numbers(row) -> str:
    claim = row.claim
    return (
        f"{claim.recipe}: {claim.posts_recipe_figure}; "
        f"{claim.baseline}: {claim.posts_baseline_figure}"
    )


def claim_blocks(results: Results, tables: Tables) -> list:
    columns = {
        "claim": lambda row: f"{row.claim.recipe} / {row.claim.baseline} (post {row.claim.post})",
        "reading": lambda row: row.claim.reading or "-",
        "API": lambda row: row.api,
        "claimed ± margin": lambda row: row.claim.claimed_range,
        "ours: ratio [95% CI]; the verdict's interval": lambda row: claim_ratio_text(row, row),
        "verdict": lambda row: row.verdict,
        "method": lambda row: row.method,
        "ours: ms/step of fit": lambda row: f"{row.recipe_ms:.1f} vs {row.baseline_ms:.1f}",
        "posts' numbers (GTX 960)": _posts_numbers,
    }
    return [
        ("h2", "The posts' claims"),
        (
            "p",
            "Verdict: reproduced when the verdict's interval lies inside the claimed range widened "
            "by its margin (the precision the post stated it with), not reproduced when it lies "
            "entirely outside, else inconclusive. The posts timed full MNIST epochs on a GTX 960 "
            "with XLA auto-jit (post VII: batch 256 in the class, 128 in the notebook); ours: "
            f"{conditions_text(results.env)}.",
        ),
        *_family_blocks(tables),
        table_block(
            tables.claims,
            columns,
            "No claim could be evaluated: no API has ok runs of both its recipes.",
        ),
    ]


def _family_blocks(tables: Tables) -> list:
    """How many intervals the report shows and which family of them the verdicts control."""
    if tables.claims.empty:
        return []
    return [
        (
            "p",
            f"The report shows {len(tables.all_ratios())} ratios' intervals (all in ratios.csv) "
            f"and the medians', each {estimators.CONFIDENCE:.0%} on its own; the family "
            f"controlled is this table's: {family_clause(len(tables.claims))}.",
        )
    ]


def family_clause(family_size: int) -> str:
    """How the claims' verdicts are decided and what error the family keeps: 'the 14 claim x API
    verdicts each err with at most 0.05/14 (Bonferroni), ...: ✓ where ..., ✗ where ...'."""
    if family_size == 0:
        return "no claim has a ratio to decide on"
    reproducing = confidence_text(claims.reproducing_confidence(family_size))
    refuting = confidence_text(claims.simultaneous_confidence(family_size))
    error = 1 - estimators.CONFIDENCE
    rule = (
        f"{VERDICT_MARKS[claims.REPRODUCED]} where the ratio's {reproducing} interval "
        f"({claims.TWO_ONE_SIDED} tests) lies inside the range, "
        f"{VERDICT_MARKS[claims.NOT_REPRODUCED]} where "
        f"its {refuting} one lies wholly outside it"
    )
    shown = f"shown after each ratio's own {estimators.CONFIDENCE:.0%} CI"
    if family_size == 1:
        return f"the one claim x API verdict errs with at most {error:g}: {rule}; {shown}"
    return (
        f"the {family_size} claim x API verdicts each err with at most {error:g}/{family_size} "
        f"(Bonferroni), so all are right together with at least {estimators.CONFIDENCE:.0%}: "
        f"{rule}; {shown}"
    )
