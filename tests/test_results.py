"""The results folder: a folder per benchmark, and rows a kill cut short dropped on resume."""

from datetime import UTC, datetime

from bench.config import plan
from bench.results.folder import ResultsFolder
from bench.results.records import Epoch, RunRecord, RunResult, epoch_rows


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
