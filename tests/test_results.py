"""The results folder: a folder per benchmark, rows a kill cut short dropped on resume, and the
columns of where a worker's time went, which older folders lack."""

import csv
import io
from datetime import UTC, datetime

import pytest

from bench.analysis import selection, step_times
from bench.config import plan
from bench.errors import UsageError
from bench.results.folder import ResultsFolder
from bench.results.records import (
    PHASE_COLUMNS,
    Epoch,
    RunRecord,
    RunResult,
    epoch_rows,
    parse_row,
)


def test_two_benchmarks_started_together_get_their_own_folders(tmp_path):
    now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    first, second = (ResultsFolder.create(tmp_path, "tiny", now) for _ in range(2))
    assert first.name == "20300102T030405Z-tiny" and second.name == "20300102T030405Z-tiny-2"


def test_a_cut_off_last_row_and_an_unfinished_runs_epochs_are_dropped_on_resume(tmp_path):
    folder = ResultsFolder.create(tmp_path, "tiny")
    finished, unfinished = (
        plan.PlannedRun(f"{name}-keras3-r1", name, "keras3", 1, 1) for name in "ab"
    )
    result = RunResult("ok", "", (Epoch(1, 1.0, 2, 500.0, False, 1.0, 1.0, float("nan")),))
    folder.append(RunRecord.of(finished, result, "h", 3.0), epoch_rows(finished, result))
    folder.append(RunRecord.of(unfinished, result, "h", 3.0), epoch_rows(unfinished, result))
    text = (folder.path / "runs.csv").read_text()
    # a kill between b's epoch rows and its run row, then in the middle of writing that row
    (folder.path / "runs.csv").write_text(text[: text.rindex("b-keras3-r1") + 13])
    assert folder.drop_unfinished() == {"a-keras3-r1"}
    assert list(folder.read().epochs.run_id) == ["a-keras3-r1"]
    assert list(folder.read().runs.run_id) == ["a-keras3-r1"]


def test_where_the_time_went_round_trips_and_an_older_runs_csv_without_it_still_reads(tmp_path):
    folder = ResultsFolder.create(tmp_path, "tiny")
    run = plan.PlannedRun("a-keras3-r1", "a", "keras3", 1, 1)
    measured = dict(
        build_seconds=0.5,
        train_seconds=1.0,
        startup_seconds=4.0,
        blocks_seconds=9.0,
        teardown_seconds=0.0,
        stalled_seconds=2.5,
        stall="2.5 s idle from 3.0 s: bench/measure/worker.py:82 _time_paired, then more",
    )
    result = RunResult("ok", "", (Epoch(1, 1.0, 2, 500.0, False, 1.0, 1.0, 0.1),), **measured)
    assert RunResult.from_json(result.to_json()) == result
    folder.append(RunRecord.of(run, result, "h", 30.0), epoch_rows(run, result))
    (record,) = folder.run_records()
    assert {column: getattr(record, column) for column in PHASE_COLUMNS} == measured
    _drop_columns(folder.path / "runs.csv", PHASE_COLUMNS)  # as a folder written before them
    runs = folder.read().runs
    assert runs.startup_seconds.isna().all() and list(runs.stall) == [""]
    assert list(runs.ms_per_step) == [500.0]
    with pytest.raises(UsageError, match="build_seconds = '-1' is out of range"):
        parse_row(["build_seconds"], ["-1"], ["build_seconds"], "runs.csv:2")


def test_a_run_timed_only_reads_back_ok_without_ms_per_step_and_older_folders_read_as_trained(
    tmp_path,
):
    folder = ResultsFolder.create(tmp_path, "tiny")
    trained = plan.PlannedRun("a-keras3-r1", "a", "keras3", 1, 1)
    timed = plan.PlannedRun("a-keras3-r2", "a", "keras3", 2, 2, timed_only=True)
    epoch = Epoch(1, 1.0, 2, 500.0, False, 1.0, 1.0, 0.1)
    fitted = RunResult("ok", "", (epoch,), trace_count=3)  # it retraced in its second epoch
    folder.append(RunRecord.of(trained, fitted, "h", 30.0), [])
    folder.append(RunRecord.of(timed, RunResult("ok", trace_count=1), "h", 30.0), [])
    runs = folder.read().runs.set_index("repeat")
    assert runs.timed_only.to_dict() == {1: False, 2: True}
    assert runs.ms_per_step.isna().to_dict() == {1: False, 2: True}
    assert selection.ms_per_step(folder.read().runs, "a", "keras3").tolist() == [500.0]
    assert selection.timed_only_recipes(folder.read().runs) == {"a"}
    # The speed table counts its runs, and a fit's traces: a trace of two steps never retraces.
    (row,) = step_times.speed_table(folder.read().runs).itertuples()
    assert (row.n, row.trained, row.ms_per_step, row.trace_count) == (2, 1, 500.0, 3)
    # An ok run without ms/step that the plan trained is still refused.
    with pytest.raises(UsageError, match="an ok run without ms_per_step"):
        parse_row(["status", "ms_per_step"], ["ok", ""], ["status", "ms_per_step"], "runs.csv:2")
    _drop_columns(folder.path / "runs.csv", ["timed_only"])  # as a folder written before it
    with pytest.raises(UsageError, match="runs.csv:3: an ok run without ms_per_step"):
        folder.read()
    rows = folder.path.joinpath("runs.csv").read_text().splitlines()
    folder.path.joinpath("runs.csv").write_text("\n".join(rows[:2]) + "\n")
    assert folder.read().runs.timed_only.tolist() == [False]


def _drop_columns(path, columns) -> None:
    """Rewrite a CSV file without ``columns``."""
    rows = list(csv.reader(io.StringIO(path.read_text())))
    kept = [index for index, column in enumerate(rows[0]) if column not in columns]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([[row[i] for i in kept] for row in rows])
    path.write_text(buffer.getvalue())
