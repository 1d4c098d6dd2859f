"""The report's sections for a folder of several slices: a sweep's variants side by side, with
whether each gap survives every setting, and the hosts of a cluster's runs."""

import pandas as pd

from bench.analysis import findings
from bench.analysis.tables import (
    side_by_side,
    stacked,
)
from bench.formatting import (
    ratio_text,
)
from bench.report import plots
from bench.report.answer import claim_ratio_text
from bench.results.folder import Results


def sweep_notice(variants: list) -> list:
    if len(variants) == 1:
        return []
    return [
        (
            "p",
            f"A sweep over {len(variants)} variants ({'; '.join(variants)}). The sections after "
            f"'Sweep' show the first variant, {variants[0]}.",
        )
    ]


def hosts_notice(hosts: list) -> list:
    if len(hosts) == 1:
        return []
    return [
        (
            "p",
            f"Runs on {len(hosts)} hosts ({'; '.join(hosts)}): hardware is never pooled into one "
            f"CI. The sections after 'Hosts' show the first host, {hosts[0]}.",
        )
    ]


def _side_by_side_table(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Each recipe x API's ratio to the floor, a column per value of ``column`` (variant, host)."""
    return pd.DataFrame(
        [
            {
                "recipe": recipe,
                "API": api,
                **{key: ratio_text(row) for key, row in rows.items()},
            }
            for recipe, api, rows in side_by_side(frame, column)
        ]
    )


def host_blocks(per_host: dict) -> list:
    """Each host's ratios to the floor, side by side: a cluster's machines measured apart."""
    if not per_host:
        return []
    table = _side_by_side_table(stacked(per_host, "ratios", "host"), "host")
    return [
        ("h2", "Hosts"),
        ("p", "Step time ratio to the floor on each host [95% CI]."),
        ("table", table) if len(table) else ("p", "No ratio to the floor on any host."),
    ]


def _gap_sentence(gap: findings.Gap) -> str:
    """Whether a recipe's gap to the floor holds at every variant of a sweep."""
    at = "; ".join(f"{ratio_text(row)} at {variant}" for variant, row in gap.rows.items())
    if gap.everywhere:
        verdict = "the gap survives every setting"
    elif gap.nowhere:
        verdict = f"no gap over {findings.GAP:g}x at any setting"
    else:
        verdict = "the gap does not survive " + ", ".join(gap.lost_at)
    return f"{gap.recipe} ({gap.api}): {at}: {verdict}."


def _sweep_claims_table(per_variant: dict) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "claim": f"{row.claim.recipe} / {row.claim.baseline}",
                "API": row.api,
                "variant": row.variant,
                "claimed ± margin": row.claim.claimed_range,
                "ratio [95% CI]; the verdict's interval": claim_ratio_text(row, row),
                "verdict": row.verdict,
            }
            for row in stacked(per_variant, "claims", "variant").itertuples()
        ]
    )


def sweep_blocks(results: Results, per_variant: dict) -> list:
    """Each ratio to the floor and each claim per variant, and which gaps survive which setting."""
    if len(per_variant) == 1:
        return []
    ratios = stacked(per_variant, "ratios", "variant")
    table = _side_by_side_table(ratios, "variant")
    claims_table = _sweep_claims_table(per_variant)
    sentences = [_gap_sentence(gap) for gap in findings.gaps(ratios)]
    return [
        ("h2", "Sweep"),
        (
            "p",
            "Step time ratio to the floor per variant [95% CI]; a gap survives a setting when its "
            f"CI lies above {findings.GAP:g}.",
        ),
        (
            "img",
            "Ratio to the floor per variant",
            plots.plot_sweep(ratios, list(per_variant), results.folder.path),
        ),
        ("table", table) if len(table) else ("p", "No ratio to the floor in any variant."),
        ("ul", sentences or ["No recipe ran in every variant."]),
        *_sweep_claims_blocks(claims_table),
    ]


def _sweep_claims_blocks(claims_table: pd.DataFrame) -> list:
    if claims_table.empty:
        return [("p", "No claim could be evaluated in any variant.")]
    return [
        (
            "p",
            "Each variant's claim x API verdicts are a family of their own, each verdict decided "
            "as in 'The posts' claims' (Bonferroni over the variant's verdicts).",
        ),
        ("table", claims_table),
    ]
