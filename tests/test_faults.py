"""What happens when things go wrong: bad folders and files, signals, pipes, locks, resume.

Every refused input gets one line on stderr and exit status 2, writes nothing and changes
nothing already written; every finished run survives, exactly once. The benchmarks here run the
fake recipes of ``tests/fake_recipes.py`` on synthetic data; no timing is asserted.
"""

import json
import math
import os
import shutil
import signal
import string
import subprocess
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bench.__main__ import main
from bench.analysis.tables import compute_tables
from bench.config import settings as config
from bench.errors import NOTHING_MEASURED, UsageError
from bench.report import sections as report
from bench.results import folder as folder_module
from bench.results.folder import ResultsFolder
from bench.results.records import RUN_COLUMNS, RunResult
from bench.run import environment, executors, runner
from tests.builders import (
    HANG_GUARD_SECONDS,
    ROOT,
    append_result,
    bench_command,
    bench_environment,
    new_folder,
    ok_result,
    only_folder,
    run_bench,
    tiny_config,
)


def refused(capsys, *args, fragment=""):
    """Run the command line; it must refuse with one line on stderr (containing ``fragment``)."""
    status = main([*map(str, args)])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert fragment in err, err
    return err


def folder_with_runs(tmp_path, repeats=2) -> ResultsFolder:
    tiny = config.load(str(tiny_config(tmp_path, ["plain_ae"], repeats=repeats)))
    folder, planned = new_folder(tmp_path / "results", tiny.name, {"config": tiny.to_dict()}, tiny)
    rng = np.random.default_rng(0)
    for run in planned:
        append_result(folder, run, ok_result(run.recipe, 0.6, 50.0, rng))
    return folder


def file_bytes(folder: ResultsFolder) -> dict:
    """The folder's data files, byte for byte (plots may be written beside them)."""
    return {
        name: (folder.path / name).read_bytes()
        for name in ("runs.csv", "epochs.csv", "plan.json", "env.json")
        if (folder.path / name).is_file()
    }


# --- bad paths and unreadable files: one line, nothing written ---------------------------------


def test_a_file_as_results_dir_is_refused_before_the_preflight(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(environment, "preflight", lambda config: pytest.fail("the preflight ran"))
    tiny = tiny_config(tmp_path, ["plain_ae"])
    refused(
        capsys,
        "run",
        "--config",
        tiny,
        "--results-dir",
        ROOT / "README.md",
        fragment="is not a folder",
    )
    refused(
        capsys,
        "run",
        "--config",
        tiny,
        "--results-dir",
        ROOT / "README.md" / "sub",
        fragment="is not a folder",
    )


def disk_with_free_mb(monkeypatch, free_mb: float) -> None:
    """Every disk reports ``free_mb`` free to the results folder's check."""
    usage = shutil.disk_usage(ROOT)
    free = int(free_mb * 2**20)
    monkeypatch.setattr(folder_module.shutil, "disk_usage", lambda path: usage._replace(free=free))


def test_a_nearly_full_disk_is_refused_naming_it_before_the_preflight(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(environment, "preflight", lambda config: pytest.fail("the preflight ran"))
    disk_with_free_mb(monkeypatch, folder_module.MIN_FREE_MB - 1)
    tiny = tiny_config(tmp_path, ["plain_ae"])
    err = refused(
        capsys, "run", "--config", tiny, "--results-dir", tmp_path / "results", fragment="MB free"
    )
    assert f"{folder_module.MIN_FREE_MB - 1} MB free" in err and "free some space" in err
    assert not (tmp_path / "results").exists()


def test_resume_on_a_nearly_full_disk_is_refused_and_changes_nothing(tmp_path, capsys, monkeypatch):
    folder = folder_with_runs(tmp_path, repeats=3)
    before = file_bytes(folder)
    disk_with_free_mb(monkeypatch, 10)
    refused(capsys, "run", "--resume", folder.path, fragment="cannot resume")
    assert file_bytes(folder) == before
    disk_with_free_mb(monkeypatch, folder_module.MIN_FREE_MB)  # enough: the check lets it pass
    ResultsFolder.check_free_space(folder.path, "cannot resume")


def test_a_report_that_cannot_be_written_is_one_line_and_keeps_the_data(tmp_path, capsys):
    folder = folder_with_runs(tmp_path)
    (folder.path / report.REPORT_MD).mkdir()  # the report's file name is taken by a folder
    before = file_bytes(folder)
    refused(capsys, "report", folder.path, fragment="cannot write the report")
    assert file_bytes(folder) == before


@pytest.mark.parametrize(
    "row, fragment",
    [
        ("{run_id},plain_ae,keras3,1,banana,,50.0", "status 'banana'"),
        ("{run_id},plain_ae,keras3,1,ok,,-50.0", "ms_per_step = '-50.0' is out of range"),
        ("{run_id},plain_ae,keras3,one,ok,,50.0", "repeat = 'one' is not an integer"),
        ("{run_id},plain_ae,keras3,1,ok,,nan", "ms_per_step = 'nan' is out of range"),
        ("{run_id},plain_ae,keras3,1,ok,,", "an ok run without ms_per_step"),
        ("{run_id},plain_ae", "values under"),
    ],
)
def test_garbage_rows_under_a_valid_header_are_refused_naming_the_line(
    tmp_path, capsys, row, fragment
):
    folder = folder_with_runs(tmp_path)
    padding = "," * (len(RUN_COLUMNS) - row.count(",") - 1) if row.count(",") > 2 else ""
    with open(folder.path / "runs.csv", "a") as runs:
        runs.write(row.format(run_id="x") + padding + "\n")
    err = refused(capsys, "report", folder.path, fragment=fragment)
    assert "runs.csv:4" in err


def test_a_torn_last_row_is_an_unfinished_run_not_a_result(tmp_path):
    folder = folder_with_runs(tmp_path)
    with open(folder.path / "runs.csv", "a") as runs:
        runs.write("plain_ae-keras3-r3,plain_ae,keras3,3,ok,,4")  # cut off by a kill: no newline
    results = folder.read()
    assert len(results.runs) == 2 and list(results.runs.ms_per_step) == pytest.approx(
        [50.0, 50.0], rel=0.05
    )
    assert report.write_report(folder.path)[0].is_file()


def test_resume_of_a_binary_runs_csv_is_refused_and_changes_nothing(tmp_path, capsys):
    folder = folder_with_runs(tmp_path)
    (folder.path / "runs.csv").write_bytes(bytes(range(256)))
    before = file_bytes(folder)
    refused(capsys, "run", "--resume", folder.path, fragment="runs.csv")
    assert file_bytes(folder) == before


def test_resume_of_a_folder_without_a_plan_is_refused(tmp_path, capsys):
    folder = folder_with_runs(tmp_path)
    (folder.path / "plan.json").unlink()
    refused(capsys, "run", "--resume", folder.path, fragment="no readable plan.json")


def test_a_non_utf8_baseline_is_one_line(tmp_path, capsys):
    folder = folder_with_runs(tmp_path)
    baseline = tmp_path / "baseline.json"
    baseline.write_bytes(b"\xff\xfe{}")
    refused(
        capsys,
        "check",
        "--results",
        folder.path,
        "--baseline",
        baseline,
        fragment="cannot read the baseline",
    )


def test_a_second_writer_is_refused_naming_the_holder(tmp_path, capsys):
    folder = folder_with_runs(tmp_path, repeats=3)
    with folder.lock():
        refused(capsys, "run", "--resume", folder.path, fragment=f"PID {os.getpid()}")


# --- property: every generated input is accepted or refused in one line ------------------------

KEYS = {
    "device": [
        "device",
        "xla",
        "precision",
        "gpu_memory_limit_mb",
        "intra_op_threads",
        "memory_growth",
    ],
    "training": [
        "dataset",
        "batch_size",
        "epochs",
        "warmup_epochs",
        "steps_per_epoch",
        "seed",
        "timeout_seconds",
        "mnist_path",
    ],
    "network": [
        "z_dim",
        "fact",
        "learning_rate",
        "encoder_filters",
        "encoder_strides",
        "activation",
        "optimizer",
        "batch_norm",
    ],
    "matrix": ["recipes", "apis", "repeats", "budget", "save_artifacts"],
}
WORDS = [
    "cpu",
    "gpu",
    "auto",
    "off",
    "autojit",
    "synthetic",
    "mnist5k",
    "plain_ae",
    "kl_layer",
    "keras3",
    "keras2",
    "adam",
    "relu",
    "float32",
    "15m",
    "1h30m",
    "",
]
SCALARS = (
    st.integers(-2, 3)
    | st.integers(-(2**40), 2**40)
    | st.booleans()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(WORDS)
    | st.text(string.printable, max_size=8)
)
VALUES = (
    SCALARS
    | st.lists(SCALARS, max_size=4)
    | st.lists(st.sampled_from(WORDS), min_size=1, max_size=3)
)
EDITS = st.fixed_dictionaries(
    {},
    optional={
        table: st.dictionaries(st.sampled_from(keys + ["bogus"]), VALUES, max_size=3)
        for table, keys in KEYS.items()
    },
)
# Edits land on a valid config, so that a fair share of the generated ones is accepted.
BASE = {
    "device": {"device": "cpu"},
    "training": {"dataset": "synthetic", "batch_size": 16, "epochs": 2},
    "network": {"encoder_filters": [4, 8, 8]},
    "matrix": {"recipes": ["plain_ae"], "apis": ["keras3"]},
}
TABLES = EDITS.map(
    lambda edits: {
        table: {**BASE.get(table, {}), **edits.get(table, {})} for table in {*BASE, *edits}
    }
)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    return json.dumps(value)  # a TOML basic string is a JSON string


def toml_text(tables: dict) -> str:
    return "\n".join(
        f"[{table}]\n" + "".join(f"{key} = {toml_value(value)}\n" for key, value in entries.items())
        for table, entries in tables.items()
    )


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tables=TABLES, repeats=st.none() | st.integers(1, 4) | st.integers(-3, 2**40))
def test_any_config_is_accepted_or_refused_in_one_line(
    tmp_path_factory, monkeypatch, tables, repeats
):
    monkeypatch.setattr(
        environment, "preflight", lambda config: {}
    )  # accepted inputs go no further
    monkeypatch.setattr(runner, "execute", lambda *args: 0)
    base = tmp_path_factory.mktemp("property")
    path = base / "config.toml"
    path.write_text(toml_text(tables))
    tomllib.loads(path.read_text())  # the generator writes valid TOML: only the values are bad
    results = base / "results"
    args = [
        "run",
        "--config",
        str(path),
        "--results-dir",
        str(results),
        *(["--repeats", str(repeats)] if repeats is not None else []),
    ]
    status, err = _run_quietly(args)
    event("refused" if status == 2 else "accepted")
    if status == 2:
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert not results.exists(), "a refused config made a results folder"
    else:
        assert status == 0 and len(list(results.iterdir())) == 1


def _run_quietly(args) -> tuple:
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main(args)
    return status, err.getvalue()


CELLS = st.sampled_from(
    [
        "",
        "ok",
        "failed",
        "timeout",
        "banana",
        "plain_ae",
        "kl_layer",
        "keras3",
        "keras2",
        "1",
        "-1",
        "0",
        "2.5",
        "1e308",
        "nan",
        "inf",
        "True",
        "x,y",
        '"',
        "é",
    ]
)


VALID_ROW = {
    "run_id": "plain_ae-keras3-r1",
    "recipe": "plain_ae",
    "api": "keras3",
    "repeat": "1",
    "status": "ok",
    "ms_per_step": "50.0",
    "final_loss": "0.6",
}
# A valid row with some cells replaced, cells dropped or added: most rows are near misses.
ROWS = st.tuples(
    st.dictionaries(st.sampled_from(RUN_COLUMNS), CELLS, max_size=3), st.integers(-2, 1)
).map(
    lambda edit: (
        [{**VALID_ROW, **edit[0]}.get(column, "") for column in RUN_COLUMNS][
            : len(RUN_COLUMNS) + edit[1]
        ]
        + ["extra"] * (edit[1] > 0)
    )
)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(ROWS | st.lists(CELLS, max_size=len(RUN_COLUMNS) + 1), max_size=6),
    torn=st.booleans(),
)
def test_any_runs_csv_is_read_or_refused_in_one_line(tmp_path_factory, rows, torn):
    folder = ResultsFolder.create(tmp_path_factory.mktemp("folders"), "prop")
    lines = [
        ",".join(json.dumps(cell) if "," in cell or '"' in cell else cell for cell in row)
        for row in rows
    ]
    text = "".join(f"{line}\n" for line in lines)
    (folder.path / "runs.csv").write_text(
        (folder.path / "runs.csv").read_text() + (text[:-1] if torn else text)
    )
    try:
        results = folder.read()
    except UsageError as error:
        assert "\n" not in str(error)
        event("refused")
        return
    event(f"read {len(results.runs)} runs")
    compute_tables(results)  # whatever is read can be summarized


# --- signals, pipes and resume (real benchmarks in subprocesses) -------------------------------


def worker_of(pid: int, run_id: str):
    """The PID of the benchmark's worker for ``run_id``, once it runs."""
    try:
        children = [
            int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        ]
        return next(
            (
                child
                for child in children
                if run_id in Path(f"/proc/{child}/cmdline").read_bytes().decode(errors="replace")
            ),
            None,
        )
    except OSError:
        return None


def wait_for(condition, timeout=HANG_GUARD_SECONDS, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {timeout} s")


def start_bench(tmp_path, recipe_names, repeats=1, timeout=120):
    results = tmp_path / "results"
    command = bench_command(
        "--config",
        tiny_config(tmp_path, recipe_names, repeats=repeats, timeout=timeout),
        "--results-dir",
        results,
    )
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=bench_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return process, results


@pytest.mark.slow
def test_a_worker_killed_by_a_signal_is_recorded_as_such_and_rerun_on_resume(tmp_path):
    benchmark, results = start_bench(tmp_path, ["fake_hang", "fake_ok"], timeout=600)
    wait_for(
        lambda: any(
            "fake_hang: building" in log.read_text() for log in results.glob("*/.scratch/*.log")
        ),
        what="fake_hang building",
    )
    os.kill(
        wait_for(lambda: worker_of(benchmark.pid, "keras3-r1.spec"), what="worker"), signal.SIGKILL
    )
    benchmark.communicate(timeout=400)
    folder = ResultsFolder(only_folder(results))
    (killed,) = [record for record in folder.run_records() if record.recipe == "fake_hang"]
    assert (killed.status, killed.error) == ("killed", "killed by signal 9")
    done = run_bench(
        "--resume", folder.path, timeout=HANG_GUARD_SECONDS, env={"KLBENCH_FAKE_HANG_SECONDS": "0"}
    )
    assert done.returncode == 0, done.stderr
    records = folder.run_records()
    assert sorted(record.run_id for record in records) == [
        "fake_hang-keras3-r1",
        "fake_ok-keras3-r1",
    ]
    assert {record.status for record in records} == {"ok"}
    assert not (folder.path / ".scratch").exists()


@pytest.mark.slow
def test_sigterm_stops_with_the_resume_hint_and_resume_completes_each_run_once(tmp_path):
    benchmark, results = start_bench(tmp_path, ["fake_ok"], repeats=3)
    folder = wait_for(
        lambda: next(
            (
                path.parent
                for path in results.glob("*/runs.csv")
                if path.read_text().count("\n") >= 2
            ),
            None,
        ),
        what="first run",
    )
    benchmark.send_signal(signal.SIGTERM)
    out, err = benchmark.communicate(timeout=HANG_GUARD_SECONDS)
    assert benchmark.returncode == runner.TERMINATED, err
    assert f"resume with: python -m bench run --resume {folder}" in out
    done = run_bench("--resume", folder, timeout=300)
    assert done.returncode == 0, done.stderr
    run_ids = [record.run_id for record in ResultsFolder(folder).run_records()]
    assert sorted(run_ids) == [f"fake_ok-keras3-r{repeat}" for repeat in (1, 2, 3)]


@pytest.mark.slow
def test_a_closed_output_pipe_does_not_stop_the_benchmark(tmp_path):
    command = " ".join(
        map(
            str,
            bench_command(
                "--config",
                tiny_config(tmp_path, ["fake_ok"], repeats=2),
                "--results-dir",
                tmp_path / "results",
            ),
        )
    )
    done = subprocess.run(
        f"{command} | head -n 1",
        shell=True,
        cwd=ROOT,
        env=bench_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in done.stderr, done.stderr
    folder = ResultsFolder(only_folder(tmp_path / "results"))
    wait_for(lambda: len(folder.run_records()) == 2, what="both runs")
    listing = subprocess.run(
        f"{' '.join(map(str, bench_command(verb='list')))} | head -n 2",
        shell=True,
        cwd=ROOT,
        env=bench_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listing.stdout.count("\n") == 2 and listing.stderr == ""


@pytest.mark.slow
def test_a_step_that_hangs_is_recorded_as_a_timeout_and_a_stall_where_it_waited(tmp_path):
    config = tiny_config(tmp_path, ["fake_hang"], timeout=45)
    done = run_bench("--config", config, "--results-dir", tmp_path / "r", timeout=300)
    assert done.returncode == NOTHING_MEASURED, done.stderr[-2000:]
    (hung,) = ResultsFolder(only_folder(tmp_path / "r")).run_records()
    assert hung.status == "timeout", hung
    assert hung.stalled_seconds >= 2.0, hung  # the watch's shortest stall
    assert "fake_recipes.py" in hung.stall and "build" in hung.stall, hung.stall


class Measuring:
    """An executor without workers: every run ends ok; those ``lost`` names lose their process's
    paired timing as a SIGTERM in the middle of it would (``executors.blame_unanswered``)."""

    parallel_runs = 1

    def __init__(self, lost=()):
        self.lost, self.given = set(lost), []

    def outcomes(self, specs, scratch):
        rng = np.random.default_rng(0)
        for spec in specs:
            self.given += [run.run.run_id for run in spec.runs]
            answered = {
                run.run.run_id: ok_result(run.run.recipe, 0.7, 50.0, rng) for run in spec.runs
            }
            if answered.keys() & self.lost:
                killed = RunResult("killed", "killed by signal 15")
                answered = executors.blame_unanswered(spec, answered, killed)
            yield spec, executors.Outcome(answered, 1.0, time.time(), None, {})

    def where(self, outcome):
        return ""


def test_resume_measures_again_a_process_whose_paired_sample_was_lost(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(environment, "preflight", lambda config: {})
    monkeypatch.setattr(runner, "_write_report", lambda folder, out: None)
    tiny = config.load(tiny_config(tmp_path, ["plain_ae", "kl_layer"], repeats=2))
    folder, planned = runner.create(tiny, tmp_path / "r", "test")
    first = Measuring(lost={"plain_ae-keras3-r2"})
    assert runner.execute(folder, tiny, planned, None, first) == 0
    lost = [r.run_id for r in folder.run_records() if executors.paired_sample_lost(r)]
    assert lost and all(run_id.endswith("-r2") for run_id in lost)  # its process's runs

    again = Measuring()
    checked = runner.resumable(folder.path, None)
    assert runner.resume(checked, "test", executor=again) == 0
    assert sorted(again.given) == sorted(lost)  # those, and only those, measured again
    records = folder.run_records()
    assert sorted(r.run_id for r in records) == sorted(run.run_id for run in planned)
    assert not any(executors.paired_sample_lost(record) for record in records)
    assert (
        f"measured again: {len(lost)} run(s) whose paired timing was lost"
        in capsys.readouterr().out
    )
