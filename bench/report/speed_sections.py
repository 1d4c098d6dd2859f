"""The report's step-time sections: "Speed", "First epoch and tracing" and "Profiles"."""

import pandas as pd

from bench.analysis.tables import Tables
from bench.formatting import number, significant, with_ci
from bench.report.table_cells import (
    NO_OK_RUNS,
    OPS_HEADER,
    RECIPE_API,
    ms_text,
    ok_runs_text,
    op_counts_of,
    table_block,
)
from bench.results.folder import Results, read_top_ops

TOP_OPS_SHOWN = 8  # op types listed per profiled run


def speed_blocks(tables: Tables) -> list:
    return [
        ("h2", "Speed"),
        (
            "p",
            "ms/step of fit: an epoch's wall time over its steps (epoch overheads included, as the "
            "posts timed), median over the runs that trained. Train step: the median time of one "
            "call of the train function in the paired blocks (no epoch overhead), median over "
            "runs.",
        ),
        table_block(
            tables.speed,
            {
                **RECIPE_API,
                "ok runs": ok_runs_text,
                "ms/step of fit, median [95% CI]": ms_text,
                "train step, ms": lambda row: number(row.step_ms),
            },
            NO_OK_RUNS,
        ),
    ]


def tracing_blocks(tables: Tables) -> list:
    columns = {
        **RECIPE_API,
        "first epoch, median [95% CI]": lambda row: with_ci(
            row.first_epoch_s, row.first_epoch_low, row.first_epoch_high, " s"
        ),
        "traces (median)": lambda row: number(row.trace_count, 0),
        OPS_HEADER: op_counts_of,
    }
    return [("h2", "First epoch and tracing"), table_block(tables.speed, columns, NO_OK_RUNS)]


def profile_blocks(results: Results) -> list:
    """The top ops by self time of each profiled run: where its train step spends its time."""
    rows = []
    for run in results.runs.itertuples():
        top = read_top_ops(results.folder.profile_dir(run.run_id))
        if top:
            shown = list(top.items())[:TOP_OPS_SHOWN]
            ops = ", ".join(f"{op} {significant(ms)}" for op, ms in shown)
            rows.append(
                {
                    "run": run.run_id,
                    "top ops: self time, ms per step": ops,
                    "all ops, ms per step": significant(sum(top.values())),
                }
            )
    if not rows:
        return [
            ("h2", "Profiles"),
            ("p", "No profiles: set [training] profile_steps to take one per run."),
        ]
    traces = results.folder.profile_dir("RUN_ID").relative_to(results.folder.path).parent
    return [
        ("h2", "Profiles"),
        (
            "p",
            "Self time of the ops in each profiled run's train step, by op type (the profiler "
            "slows what it records: compare ops with each other, not with the timings above). "
            f"Raw traces: {traces}/, for TensorBoard's profile plugin.",
        ),
        ("table", pd.DataFrame(rows)),
    ]
