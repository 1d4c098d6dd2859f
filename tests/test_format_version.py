"""The results format's version: a new folder records the current one, a resumed folder keeps its
own, a newer one is refused, and a folder of each earlier format reads as the current one."""

import csv
import io
import json
import math

import pandas as pd
import pytest

from bench.analysis import step_ratios
from bench.config import plan
from bench.errors import UsageError
from bench.results import format_version
from bench.results.folder import (
    BLOCKS_CSV,
    ENV_JSON,
    EPOCHS_CSV,
    PLAN_JSON,
    RUNS_CSV,
    ResultsFolder,
)
from bench.results.records import (
    OK,
    OP_COUNT_COLUMNS,
    PHASE_COLUMNS,
    BlockStep,
    Epoch,
    RunRecord,
    RunResult,
    block_rows,
    epoch_rows,
)
from tests.builders import matrix_config, new_folder

ENV = {"config": {"name": "tiny", "matrix": {"apis": ["keras2"]}}, "tensorflow": "2.21.0"}
# What each runs.csv column joined after: the columns a folder of an earlier format lacks.
LATER_RUN_COLUMNS = (
    *OP_COUNT_COLUMNS.values(),
    "op_scopes",
    *PHASE_COLUMNS,
    "ops_convolutions",
    "noise_draws",
    "compiled_ops",
)
# The layouts written before the format had a version (all format 1), oldest first: which files
# and columns each lacks.
EARLIER_LAYOUTS = {
    "runs and epochs, no paired blocks": {
        RUNS_CSV: ("process", "host", "variant", "reference_error", *LATER_RUN_COLUMNS),
        BLOCKS_CSV: None,  # no such file
    },
    "paired blocks, each run a process of its own": {
        RUNS_CSV: ("process", *LATER_RUN_COLUMNS),
        BLOCKS_CSV: ("process", "pressure_seconds"),
    },
    "runs of a round sharing a process, before the phases and the CPU pressure": {
        RUNS_CSV: LATER_RUN_COLUMNS,
        BLOCKS_CSV: ("pressure_seconds",),
    },
    "every column of today, no version": {},
}


def _result(ms: float) -> RunResult:
    """A run timed against plain_ae in its own process's blocks."""
    epochs = (
        Epoch(1, 1.0, 10, 3 * ms, True, 2.0, 1.8, 0.2),
        Epoch(2, 0.5, 10, ms, False, 1.0, 0.9, 0.1),
    )
    blocks = tuple(
        BlockStep(block, model, "keras2", step, seconds, 0.0)
        for block in (1, 2, 3)
        for model, seconds in (("kl_layer", ms / 1000), ("plain_ae", 0.05))
        for step in (1, 2)
    )
    return RunResult(
        OK,
        "",
        epochs,
        blocks,
        graph_ops=400,
        op_counts={"Conv2D": 6},
        build_seconds=1.0,
        noise_draws=1.0,
    )


def _current_folder(tmp_path) -> ResultsFolder:
    """A folder of today's format: three kl_layer runs, each its own worker process."""
    folder, _ = new_folder(tmp_path, "current", ENV)
    for repeat, ms in enumerate((60.0, 61.0, 62.0), start=1):
        run = plan.PlannedRun(f"kl_layer-keras2-r{repeat}", "kl_layer", "keras2", repeat, repeat)
        result = _result(ms)
        record = RunRecord.of(run, result, "abc123", 30.0, host="box")
        folder.append(record, epoch_rows(run, result), block_rows(run, result))
    return folder


def _as_written_before(folder: ResultsFolder, layout: dict, path) -> ResultsFolder:
    """A copy of ``folder`` as a harness of an earlier format wrote it: no version in env.json,
    without the files and columns ``layout`` names."""
    path.mkdir()
    env = json.loads((folder.path / ENV_JSON).read_text())
    del env[format_version.FORMAT_KEY]
    (path / ENV_JSON).write_text(json.dumps(env))
    for name in (RUNS_CSV, EPOCHS_CSV, BLOCKS_CSV):
        if name in layout and layout[name] is None:
            continue
        rows = list(csv.reader(io.StringIO((folder.path / name).read_text())))
        kept = [index for index, column in enumerate(rows[0]) if column not in layout.get(name, ())]
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([[row[i] for i in kept] for row in rows])
        (path / name).write_text(buffer.getvalue())
    return ResultsFolder.existing(path)


def _without(frame: pd.DataFrame, columns) -> pd.DataFrame:
    return frame.drop(columns=[column for column in columns or () if column != "process"])


@pytest.mark.parametrize("layout", EARLIER_LAYOUTS, ids=list(EARLIER_LAYOUTS))
def test_a_folder_of_each_earlier_format_reads_as_the_current_one(tmp_path, layout):
    current = _current_folder(tmp_path)
    older = _as_written_before(current, EARLIER_LAYOUTS[layout], tmp_path / "older")
    assert (current.results_format(), older.results_format()) == (format_version.CURRENT, 1)
    now, then = current.read(), older.read()
    lacking = EARLIER_LAYOUTS[layout]
    # What the earlier format recorded reads as today's; each run was its own process.
    pd.testing.assert_frame_equal(
        _without(then.runs, lacking.get(RUNS_CSV)), _without(now.runs, lacking.get(RUNS_CSV))
    )
    assert list(then.runs.process) == list(then.runs.run_id)
    pd.testing.assert_frame_equal(then.epochs, now.epochs)
    assert then.env == now.env
    if lacking.get(BLOCKS_CSV, ()) is None:
        assert then.blocks.empty
        return
    pd.testing.assert_frame_equal(
        _without(then.blocks, lacking.get(BLOCKS_CSV)),
        _without(now.blocks, lacking.get(BLOCKS_CSV)),
    )
    pd.testing.assert_frame_equal(
        step_ratios.ratio_table(then.runs, then.blocks),
        step_ratios.ratio_table(now.runs, now.blocks),
    )


def test_a_folder_written_before_the_noise_draws_reads_them_as_unknown(tmp_path):
    current = _current_folder(tmp_path)
    assert set(current.read().runs.noise_draws) == {1.0}
    older = _as_written_before(current, {RUNS_CSV: ("noise_draws",)}, tmp_path / "older")
    assert older.read().runs.noise_draws.isna().all()


def test_a_new_folder_records_the_current_format_and_keeps_it_when_env_json_is_rewritten(tmp_path):
    folder, _ = new_folder(tmp_path, "new", {"command": "run"})
    written = json.loads((folder.path / ENV_JSON).read_text())
    assert written == {"command": "run", format_version.FORMAT_KEY: format_version.CURRENT}
    folder.write_env({"command": "again", format_version.FORMAT_KEY: 1})
    assert folder.results_format() == format_version.CURRENT


def test_a_resumed_folder_of_an_earlier_format_keeps_it(tmp_path):
    older = _as_written_before(_current_folder(tmp_path), {}, tmp_path / "older")
    older.update_env(resumed_by=["python -m bench run --resume older"])
    assert older.results_format() == 1
    assert json.loads((older.path / ENV_JSON).read_text())[format_version.FORMAT_KEY] == 1
    assert older.read_env()["resumed_by"] == ["python -m bench run --resume older"]


def test_a_folder_of_a_newer_format_is_refused_in_one_line(tmp_path):
    folder = _current_folder(tmp_path)
    newer = format_version.CURRENT + 1
    env = {**json.loads((folder.path / ENV_JSON).read_text()), format_version.FORMAT_KEY: newer}
    (folder.path / ENV_JSON).write_text(json.dumps(env))
    with pytest.raises(UsageError, match=f"results format {newer} is newer") as refused:
        folder.read()
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("damaged", ["2", True, 0, None, [2]])
def test_a_version_that_is_not_one_reads_as_the_earliest_format(damaged):
    assert format_version.version_of({format_version.FORMAT_KEY: damaged}) == 1


def test_the_plan_of_an_earlier_format_has_each_run_in_a_process_of_its_own(tmp_path):
    config = matrix_config([("kl_layer", "keras2"), ("plain_ae", "keras2")], repeats=2)
    folder, planned = new_folder(tmp_path, "planned", ENV, config)
    older = _as_written_before(folder, {}, tmp_path / "older")
    stored = json.loads((folder.path / PLAN_JSON).read_text())
    for run in stored["runs"]:
        del run["process"]  # as plans before shared processes were written
    (older.path / PLAN_JSON).write_text(json.dumps(stored))
    assert [run.process for run in folder.planned_runs()] == [run.process for run in planned]
    assert [run.process for run in older.planned_runs()] == [run.run_id for run in planned]


def test_a_ratios_csv_of_format_2_reads_with_the_freedom_of_a_t_interval_on_its_processes(tmp_path):
    folder = _current_folder(tmp_path)
    env = {**json.loads((folder.path / ENV_JSON).read_text()), format_version.FORMAT_KEY: 2}
    (folder.path / ENV_JSON).write_text(json.dumps(env))
    older = pd.DataFrame(
        [
            ("kl_layer", "keras2", "plain_ae", "keras2", 1.02, 1.0, 1.04, 0.02, "paired", 4, ""),
            (
                "notebook_kernel",
                "keras2",
                "plain_ae",
                "keras2",
                1.1,
                1.0,
                1.2,
                0.1,
                "bootstrap",
                3,
                0.1,
            ),
            (
                "vae_loss_layer",
                "keras2",
                "plain_ae",
                "keras2",
                1.4,
                None,
                None,
                None,
                "paired",
                1,
                "",
            ),
        ],
        columns=[column for column in step_ratios.RATIO_COLUMNS if column != "df"],
    )
    older.assign(variant="", host="").to_csv(folder.path / "ratios.csv", index=False)
    read = folder.read_ratios().set_index("recipe").df
    assert (read["kl_layer"], read["notebook_kernel"]) == (3, math.inf)
    assert math.isnan(read["vae_loss_layer"])
    current = older.assign(df=[4.5, None, None], variant="", host="")
    current.to_csv(folder.path / "ratios.csv", index=False)  # a format-2 folder's new analysis
    assert folder.read_ratios().df.iloc[0] == 4.5
