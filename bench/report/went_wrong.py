"""The report's "Runs that went wrong": one row per recipe x API x outcome."""

from bench.analysis.tables import Tables
from bench.formatting import number
from bench.report.table_cells import RECIPE_API, table_block

WENT_WRONG_TITLE = "Runs that went wrong"
NOTHING_WENT_WRONG = (
    "No run went wrong: none failed unexpectedly, timed out, diverged, was killed or is missing."
)


def _repeats_text(repeats) -> str:
    return ", ".join(number(repeat, 0) for repeat in sorted(repeats))


def went_wrong_blocks(tables: Tables) -> list:
    """Runs that failed unexpectedly, timed out, diverged, were killed or are missing: not the
    failures the registry expects, which the answer shows."""
    # one row per recipe x API x outcome: a pair that never ran would otherwise fill a row per
    # repeat
    grouped = (
        tables.went_wrong.groupby(["recipe", "api", "status", "error"], sort=False)
        .repeat.agg(_repeats_text)
        .reset_index()
    )
    columns = {
        **RECIPE_API,
        "repeats": lambda row: row.repeat,
        "status": lambda row: row.status,
        "error": lambda row: row.error,
    }
    return [("h2", WENT_WRONG_TITLE), table_block(grouped, columns, NOTHING_WENT_WRONG)]
