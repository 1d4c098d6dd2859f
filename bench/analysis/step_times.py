"""Each recipe x API's step times with CIs, its train step in the blocks, traces and op counts."""

import pandas as pd

from bench.analysis.estimators import median_ci
from bench.analysis.pairing import own_step_ms
from bench.analysis.selection import by_recipe_and_api, ok_runs, trained
from bench.results.records import OP_COUNT_COLUMNS

OP_COLUMNS = ["graph_ops", *OP_COUNT_COLUMNS.values(), "ops_convolutions"]


def speed_table(runs: pd.DataFrame, blocks: pd.DataFrame = None) -> pd.DataFrame:
    """Per recipe x API (ok runs; ``trained``: those that trained): ms/step of fit and
    first-epoch seconds with CIs and the traces (of the runs that trained), the train step's time
    in the paired blocks, op counts."""
    step_ms = own_step_ms(blocks)
    rows = []
    for recipe, api, group in by_recipe_and_api(ok_runs(runs)):
        ms, first = median_ci(group.ms_per_step), median_ci(group.first_epoch_seconds)
        rows.append(
            {
                "recipe": recipe,
                "api": api,
                "n": len(group),
                "trained": int(trained(group).sum()),
                "ms_per_step": ms[0],
                "ms_low": ms[1],
                "ms_high": ms[2],
                "step_ms": step_ms.reindex(group.run_id).median(),
                "first_epoch_s": first[0],
                "first_epoch_low": first[1],
                "first_epoch_high": first[2],
                # A fit's traces: a run timed only traces two steps, which never retrace.
                "trace_count": group.trace_count[trained(group)].median(),
                **{column: group[column].median() for column in OP_COLUMNS},
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "recipe",
            "api",
            "n",
            "trained",
            "ms_per_step",
            "ms_low",
            "ms_high",
            "step_ms",
            "first_epoch_s",
            "first_epoch_low",
            "first_epoch_high",
            "trace_count",
            *OP_COLUMNS,
        ],
    )
