"""The report's "Ratios to the floor", with their precision, and "Disturbed runs"."""

from bench.analysis import allocation, estimators, findings, pairing, step_ratios
from bench.analysis.tables import Tables
from bench.formatting import number, percent, ratio_text
from bench.report.conditions import config_of
from bench.report.table_cells import NO_OK_RUNS, RECIPE_API, compared_text, table_block
from bench.results import contention
from bench.results.folder import OUTLIERS_CSV, Results

OUTLIERS_SHOWN = 5  # disturbed runs listed in the report, the furthest out first; all in the CSV


def ratio_blocks(results: Results, tables: Tables) -> list:
    columns = {
        **RECIPE_API,
        "compared with": compared_text,
        "ratio [95% CI]": ratio_text,
        "CI half-width": lambda row: percent(row.half_width),
        "runs": lambda row: number(row.n, 0),
        "method": lambda row: row.method,
    }
    methods = " ".join(f"{method}: {text}." for method, text in step_ratios.METHODS.items())
    return [
        ("h2", "Ratios to the floor"),
        (
            "p",
            "Each KL recipe's step time over the floor's (plain_ae of the same Keras; ports: "
            f"Keras 3's). {methods} The numbers are also in ratios.csv.",
        ),
        table_block(tables.ratios, columns, NO_OK_RUNS),
        ("p", precision_of(results, tables)),
    ]


def precision_sentence(precision) -> str:
    """How precise the ratios are against the target (a ``findings.Precision``, or None where no
    ratio has a CI), and what reaching it at the median would take."""
    if precision is None:
        return "No ratio has a CI (it takes 2 or more ok runs)."
    widest, median = precision.widest, precision.median
    head = (
        f"Ratio CIs are at most {percent(widest.half_width)} wide ({widest.recipe} vs "
        f"{widest.compared_with}, {widest.api}, {widest.method}), {percent(median.half_width)} at "
        f"the median, against the ±{100 * estimators.PRECISION_TARGET:g}% target"
    )
    if precision.within_target:
        return head + ": the median within target."
    hours = precision.hours_needed
    cost = f": {precision.more_rounds} more round(s) of this matrix, about {hours:.1f} h"
    cost = cost if hours > 0 else ""
    return (
        f"{head}: over. A half-width shrinks ~1/sqrt(runs) (faster while the t-quantile of few "
        f"runs falls), so the median pair's {int(median.n)} runs would have to become about "
        f"{precision.runs_needed}{cost}."
    )


def precision_of(results: Results, tables: Tables) -> str:
    runs, epochs, blocks = results.runs, results.epochs, results.blocks
    round_seconds = allocation.every_pair_round_seconds(runs, epochs, blocks)
    return precision_sentence(findings.precision(tables.ratios, round_seconds))


def outlier_blocks(results: Results, tables: Tables) -> list:
    columns = {
        "run": lambda row: row.run_id,
        "compared with": compared_text,
        "its ratio": lambda row: number(row.ratio, 3),
        "pair's median": lambda row: number(row.pair_median, 3),
        "MADs away": lambda row: number(row.mads, 1),
        "re-measure with": lambda row: (
            f"python -m bench run --config {config_of(results.env).get('name', '?')} "
            f"--recipes {row.recipe} --apis {row.api}"
        ),
    }
    worst = tables.outliers.sort_values("mads", ascending=False, kind="stable")
    return [
        ("h2", "Disturbed runs"),
        ("p", _set_aside_sentence(results.blocks)),
        (
            "p",
            f"Processes whose ratio lies over {pairing.OUTLIER_MADS:g} median absolute deviations "
            "from their pair's median. They stay in the statistics (the t-interval widens with "
            f"them).{_outliers_shown(len(worst))}",
        ),
        table_block(
            worst.head(OUTLIERS_SHOWN), columns, "No run's ratio lies far from its pair's."
        ),
    ]


def _set_aside_sentence(blocks) -> str:
    """How many blocks a neighbour came or went in, set aside from the ratios
    (``pairing.set_aside_blocks``), or why none could be checked."""
    if blocks is None or blocks.empty:
        return "No paired blocks: no block could be checked for other work on the machine."
    read = blocks[blocks.pressure_seconds.notna()]
    if read.empty:
        return (
            "The kernel gave no CPU pressure (/proc/pressure/cpu): no block could be checked for "
            "a neighbour that came or went."
        )
    counted = read[["process", "block"]].drop_duplicates()
    aside = len(pairing.set_aside_blocks(blocks))
    return (
        f"{aside} of {len(counted)} blocks set aside from every ratio: a neighbour came or went "
        f"in them (their models' shares of CPU pressure differed by more than "
        f"{contention.UNEVEN_SHARE:g} of their step time; each process timed one more block "
        f"for each, up to as many as it planned and within its time for blocks: docs/method.md "
        f'"Other work on the machine").'
    )


def _outliers_shown(count: int) -> str:
    """Where the disturbed runs the report leaves out are: a sentence, led by a space; "" for
    none."""
    if not count:
        return ""
    if count <= OUTLIERS_SHOWN:
        return f" Every one is also in {OUTLIERS_CSV}."
    return (
        f" The {OUTLIERS_SHOWN} furthest out of {count} are shown; all {count}, furthest first, "
        f"are in {OUTLIERS_CSV}."
    )
