"""The report's "Quality guard" and "Time to quality"."""

import math

from bench.analysis import findings, quality_guard
from bench.analysis.tables import Tables
from bench.formatting import MISSING, number, significant, significant_with_ci, with_ci
from bench.report.table_cells import NO_OK_RUNS, RECIPE_API, table_block
from bench.results.folder import Results
from vae_impls import registry


def _median_iqr_cell(column: str):
    return lambda row: significant_with_ci(
        *(getattr(row, f"{column}_{key}") for key in ("median", "q1", "q3"))
    )


def quality_blocks(tables: Tables) -> list:
    columns = {
        **RECIPE_API,
        "ok runs": lambda row: str(row.n),
        "final loss": _median_iqr_cell("final_loss"),
        "final BCE": _median_iqr_cell("final_bce"),
        "final KL": _median_iqr_cell("final_kl"),
        "others: median ± tolerance": lambda row: (
            f"{significant(row.reference)} ± {significant(row.tolerance)}"
            if math.isfinite(row.reference)
            else MISSING
        ),
        "flag": lambda row: "FLAGGED" if row.flagged else "",
    }
    return [
        ("h2", "Quality guard"),
        (
            "p",
            "Final losses over ok runs, median [IQR]. Flagged: a KL recipe whose median final loss "
            "differs from the median of the other KL recipes' runs of its API (for a port: and of "
            f"Keras 3) by more than max({quality_guard.QUALITY_IQR_FACTOR:g} x their IQR, "
            f"{100 * quality_guard.QUALITY_RELATIVE_TOLERANCE:g}% of that median). "
            f"{registry.FLOOR} is not flagged: it minimizes BCE alone.",
        ),
        table_block(tables.quality, columns, NO_OK_RUNS),
    ]


def time_to_quality_blocks(results: Results, tables: Tables) -> list:
    if not findings.trains_long_enough(results.env):
        return [
            ("h2", "Time to quality"),
            (
                "p",
                "Not reported: these runs train a few steps, not "
                f"{findings.MIN_PASSES_FOR_QUALITY} or more full passes over the data, so no loss "
                "level they reach says anything of convergence.",
            ),
        ]
    columns = {
        **RECIPE_API,
        "level": lambda row: significant(row.level),
        "epoch (median)": lambda row: number(row.epoch, 0),
        "seconds [95% CI]": lambda row: with_ci(
            row.seconds, row.seconds_low, row.seconds_high, " s"
        ),
        "runs reaching it": lambda row: f"{row.n_reached}/{row.n}",
    }
    return [
        ("h2", "Time to quality"),
        (
            "p",
            "Seconds of training, warm-up included, until the epoch-mean loss first reaches the "
            "API's common level: the highest last-epoch loss of any ok KL run of that API. Median "
            "over runs [95% CI].",
        ),
        table_block(tables.time_to_quality, columns, "No epoch curves of ok KL runs."),
    ]
