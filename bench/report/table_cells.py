"""The table blocks and cells the detail sections share: rows to a table, ms/step, op counts."""

import pandas as pd

from bench.analysis import step_times
from bench.formatting import number, with_ci

NO_OK_RUNS = "No ok runs."
RECIPE_API = {"recipe": lambda row: row.recipe, "API": lambda row: row.api}
OPS_HEADER = "ops: total / Conv2D / Conv2DBackpropInput / Conv2DBackpropFilter / MatMul"


def table_block(frame: pd.DataFrame, columns: dict, empty: str) -> tuple:
    """A table block with ``columns`` (header -> function(row) -> cell text); ``empty`` if no
    rows."""
    if frame.empty:
        return ("p", empty)
    return (
        "table",
        pd.DataFrame(
            {header: [cell(row) for row in frame.itertuples()] for header, cell in columns.items()}
        ),
    )


def ok_runs_text(row) -> str:
    """A table's "ok runs": how many, and how many of them trained where a budget's round timed
    some only (their fit's numbers are those of the runs that trained)."""
    trained = getattr(row, "trained", row.n)
    return str(row.n) if trained == row.n else f"{row.n} ({trained} trained)"


def compared_text(row) -> str:
    return f"{row.compared_with} ({row.compared_api})"


def ms_text(row) -> str:
    return with_ci(row.ms_per_step, row.ms_low, row.ms_high, " ms/step")


def op_counts_of(row) -> str:
    """A speed_table row's op counts, as the column ``OPS_HEADER`` names them."""
    return " / ".join(number(getattr(row, column), 0) for column in step_times.OP_COLUMNS)
