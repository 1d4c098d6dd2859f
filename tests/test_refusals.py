"""Never a traceback, never a hang, never "done" with nothing measured: one test (or a few) per
class of the ways a command went wrong, each with inputs of its own.

1. tracebacks: an output in a folder that does not exist, a plot format matplotlib does not
   know, TOML and JSON nested too deeply to parse;
2. a wrong report of what was written: a plot path without an extension, or a folder;
3. validation after the work: a bad tolerance refused only after a benchmark;
4. no bound on a plan: a sweep (or a run) of tens of thousands of runs;
5. a hang on a cluster address where something that is not Ray listens;
6. success with nothing measured: every run timed out;
7. judging what the gate cannot judge: other settings, or no finished run;
8. small leaks: a lock file left by a refused resume, a megabyte-long error line, a folder
   called "missing".

Refusals never start TensorFlow: the benchmark's work is replaced by a stand-in that fails the
test if it is reached, or by a fake executor that ends every run as a test asks.
"""

import contextlib
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bench.__main__ import main
from bench.cli import common
from bench.config import plan, sweep
from bench.config import settings as config
from bench.errors import NOTHING_MEASURED, QUOTED_LENGTH, UsageError, quoted
from bench.results.folder import LOCK_FILE
from bench.results.records import FAILED, TIMEOUT, RunResult
from bench.run import environment, executors, runner
from bench.run.executors import Outcome
from tests.builders import (
    ROOT,
    append_result,
    bench_environment,
    new_folder,
    ok_result,
    tiny_config,
)


def refused(capsys, *argv, fragment="") -> str:
    """Run the command line: it must be refused with exit status 2 and one line on stderr."""
    status = main([*map(str, argv)])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert fragment in err, err
    return err.strip()


def files_in(path: Path) -> dict:
    """Every file under ``path`` and its bytes: what a refused command must leave as it was."""
    return {
        str(item.relative_to(path)): item.read_bytes()
        for item in sorted(path.rglob("*"))
        if item.is_file()
    }


@pytest.fixture
def no_benchmark(monkeypatch):
    """A benchmark that starts fails the test: refusals come before any work."""

    def started(*args, **kwargs):
        pytest.fail("a benchmark started before its input was refused")

    monkeypatch.setattr(environment, "preflight", started)
    monkeypatch.setattr(runner, "execute", started)
    monkeypatch.setattr(runner, "_execute", started)


def results_folder(results_dir: Path, recipe_names=("plain_ae", "kl_layer"), **tiny) -> Path:
    """A results folder of a tiny config's plan, every run ended ok."""
    loaded = config.load(str(tiny_config(results_dir.parent, list(recipe_names), **tiny)))
    folder, planned = new_folder(results_dir, loaded.name, {"config": loaded.to_dict()}, loaded)
    rng = np.random.default_rng(0)
    for run in planned:
        append_result(folder, run, ok_result(run.recipe, 0.6, 50.0 + len(run.recipe), rng))
    return folder.path


def folder_of_ends(results_dir: Path, *results: RunResult) -> Path:
    """A results folder of a tiny config's plan whose runs ended as ``results`` say (none:
    a folder whose plan has one run, and no run finished)."""
    repeats = max(len(results), 1)
    loaded = config.load(str(tiny_config(results_dir.parent, ["plain_ae"], repeats=repeats)))
    folder, planned = new_folder(results_dir, loaded.name, {"config": loaded.to_dict()}, loaded)
    for run, result in zip(planned, results):
        append_result(folder, run, result)
    return folder.path


# --- 1. tracebacks ------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["no/such/folder/b.json", "a-file/b.json"])
def test_a_baseline_into_a_folder_that_is_not_there_is_refused_before_the_work(
    tmp_path, capsys, where
):
    folder = results_folder(tmp_path / "results")
    (tmp_path / "a-file").write_text("not a folder")
    before = files_in(tmp_path)
    err = refused(
        capsys,
        "check",
        "--update-baseline",
        "--baseline",
        tmp_path / where,
        "--results",
        folder,
        fragment="cannot write the baseline",
    )
    assert str(Path(where).parent) in err and files_in(tmp_path) == before


@pytest.mark.parametrize("name", ["h.banana", "h.p n g", "trend.pngx"])
def test_a_plot_format_matplotlib_does_not_know_is_refused_before_the_table(tmp_path, capsys, name):
    folders = [results_folder(tmp_path / side) for side in ("a", "b")]
    assert main(["history", *map(str, folders), "--plot", str(tmp_path / name)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and ".png" in err and ".svg" in err, err
    assert not list(tmp_path.glob("h*")) and not list(tmp_path.glob("trend*"))


def deeply(depth: int, kind: str) -> str:
    return {
        "arrays": "x = " + "[" * depth + "]" * depth,
        "inline tables": "x = " + "{a = " * depth + "1" + "}" * depth,
    }[kind]


@pytest.mark.parametrize("kind", ["arrays", "inline tables"])
def test_toml_nested_too_deeply_is_one_line(tmp_path, capsys, no_benchmark, kind):
    path = tmp_path / "deep.toml"
    path.write_text(f"[device]\n{deeply(5000, kind)}\n")
    refused(capsys, "run", "--config", path, fragment="nested too deeply")
    tiny = tiny_config(tmp_path, ["plain_ae"])
    value = "[" * 5000 + "]" * 5000
    err = refused(capsys, "sweep", "--config", tiny, "--vary", f"training.seed={value}")
    assert "[training] seed must be an integer" in err


def test_json_nested_too_deeply_is_one_line(tmp_path, capsys, no_benchmark):
    baseline = tmp_path / "baseline.json"
    baseline.write_text("[" * 100_000 + "]" * 100_000)
    folder = results_folder(tmp_path / "results")
    refused(capsys, "check", "--results", folder, "--baseline", baseline, fragment="too deeply")
    (folder / "plan.json").write_text('{"runs": ' + "[" * 100_000 + "]" * 100_000 + "}")
    refused(capsys, "run", "--resume", folder, fragment="plan.json")


# --- 2. what was written ------------------------------------------------------------------------


def test_a_plot_path_without_an_extension_or_that_is_a_folder_is_refused(tmp_path, capsys):
    folders = [results_folder(tmp_path / side) for side in ("a", "b")]
    (tmp_path / "plots.png").mkdir()
    for plot, why in (("trend", "no extension"), ("plots.png", "is a folder")):
        err = refused(capsys, "history", *folders, "--plot", tmp_path / plot)
        assert why in err
    assert not (tmp_path / "trend.png").exists() and not list((tmp_path / "plots.png").iterdir())


def test_a_plot_is_written_where_it_is_named_and_that_path_is_reported(tmp_path, capsys):
    folders = [results_folder(tmp_path / side) for side in ("a", "b")]
    plot = tmp_path / "plots" / "trend.SVG"
    plot.parent.mkdir()
    assert main(["history", *map(str, folders), "--plot", str(plot)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"wrote {plot}"
    assert plot.read_text().lstrip().startswith("<?xml")
    assert [path.name for path in plot.parent.iterdir()] == ["trend.SVG"]


# --- 3. validation before the work --------------------------------------------------------------


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--tolerance", "-1"], "--tolerance"),
        (["--tolerance", "0"], "--tolerance"),
        (["--tolerance", "nan"], "--tolerance"),
        (["--floor-tolerance", "-0.5"], "--floor-tolerance"),
        (["--floor-tolerance", "nan"], "--floor-tolerance"),
        (["--floor-tolerance", "inf"], "--floor-tolerance"),
        (["--yardstick-tolerance", "0"], "--yardstick-tolerance"),
        (["--yardstick-tolerance", "nan"], "--yardstick-tolerance"),
    ],
)
def test_a_bad_tolerance_is_refused_before_any_benchmark(
    tmp_path, capsys, no_benchmark, flags, named
):
    refused(capsys, "check", *flags, "--results-dir", tmp_path / "results", fragment=named)
    folder = results_folder(tmp_path / "results")
    refused(capsys, "check", "--results", folder, *flags, fragment=named)
    assert [path.name for path in (tmp_path / "results").iterdir()] == [folder.name]


def test_a_baseline_of_another_config_is_refused_before_its_benchmark(
    tmp_path, capsys, no_benchmark
):
    folder = results_folder(tmp_path / "results")
    baseline = tmp_path / "baseline.json"
    assert (
        main(["check", "--results", str(folder), "--update-baseline", "--baseline", str(baseline)])
        == 0
    )
    capsys.readouterr()
    refused(capsys, "check", "--baseline", baseline, fragment="cannot judge config ci")


# --- 4. a bound on the plan ---------------------------------------------------------------------


def test_a_sweep_too_large_is_refused_before_any_variant_is_checked(
    tmp_path, capsys, monkeypatch, no_benchmark
):
    monkeypatch.setattr(sweep, "config_of", lambda *args: pytest.fail("a variant was checked"))
    seeds = ",".join(map(str, range(200)))
    batches = ",".join(map(str, range(1, 201)))
    err = refused(
        capsys,
        "sweep",
        "--config",
        tiny_config(tmp_path, ["plain_ae", "kl_layer"]),
        "--vary",
        f"training.seed={seeds}",
        "--vary",
        f"training.batch_size={batches}",
        "--results-dir",
        tmp_path / "results",
    )
    assert "80,000 runs" in err and f"at most {plan.MAX_PLANNED_RUNS:,}" in err
    assert not (tmp_path / "results").exists()


def test_a_run_too_large_is_refused_by_the_same_bound(tmp_path, capsys, no_benchmark):
    err = refused(capsys, "run", "--repeats", 1000, "--results-dir", tmp_path / "r")
    assert f"at most {plan.MAX_PLANNED_RUNS:,}" in err and not (tmp_path / "r").exists()


def test_the_bound_counts_the_runs_the_plan_makes():
    checked = []
    for name in config.available_names():
        try:
            loaded = config.load(name)
        except UsageError as error:  # a config of an optional backend this venv lacks
            assert "is not installed" in str(error), error
            continue
        checked.append(name)
        for variants in (1, 3):
            made = plan.make_plan(loaded, [f"v{index}" for index in range(variants)])
            assert plan.planned_run_count(loaded.matrix, variants) == len(made)
    assert {"default", "ci", "quick"} <= set(checked)


# --- 5. a cluster address where something else listens ------------------------------------------

CONNECT = """
import sys
from bench.run import cluster
cluster.INIT_SECONDS = cluster.ANSWER_SECONDS = {seconds}
from bench.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


class NotRay:
    """Something that is not Ray, on the loopback address: accepts connections, says nothing."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.accepted = []

    def wait_for_connections(self, count: int, process: subprocess.Popen) -> None:
        """Until ``count`` connections came: the state of a command that is connecting, however
        long its start took."""
        self.listener.settimeout(1.0)
        while len(self.accepted) < count:
            assert process.poll() is None, process.communicate()
            with contextlib.suppress(TimeoutError):
                self.accepted.append(self.listener.accept()[0])

    def close(self) -> None:
        for connection in self.accepted:
            connection.close()
        self.listener.close()


@pytest.fixture
def not_ray():
    listening = NotRay()
    try:
        yield listening
    finally:
        listening.close()


def start_connecting(tmp_path, address: str, seconds: int) -> subprocess.Popen:
    pytest.importorskip("ray")
    argv = ["run", "--config", tiny_config(tmp_path, ["plain_ae"]), "--results-dir"]
    argv += [tmp_path / "results", "--executor", "ray", "--address", address]
    return subprocess.Popen(
        [sys.executable, "-c", CONNECT.format(seconds=seconds), *map(str, argv)],
        cwd=ROOT,
        env=bench_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def ended(process: subprocess.Popen, timeout: float) -> tuple:
    """(stdout, stderr) of ``process`` once it ends; killed, and the test failed, if it hangs."""
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"still connecting after {timeout} s")


def test_an_address_where_ray_does_not_answer_is_refused_at_a_deadline(tmp_path, not_ray):
    connecting = start_connecting(tmp_path, not_ray.address, seconds=3)
    out, err = ended(connecting, timeout=60)
    assert connecting.returncode == 2, err
    (line,) = err.splitlines()  # no line of Ray's own
    assert line.startswith(f"error: cannot connect to the Ray cluster at {not_ray.address}")
    assert "does not answer as a Ray head (no gRPC reply within 3 s)" in line
    assert not (tmp_path / "results").exists()
    assert not_ray.address.split(":")[0] == "127.0.0.1"


@pytest.mark.parametrize("stop, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_connecting_stops_on_sigterm_and_ctrl_c(tmp_path, not_ray, stop, status):
    connecting = start_connecting(tmp_path, not_ray.address, seconds=300)
    not_ray.wait_for_connections(1, connecting)  # it waits for the head's answer
    connecting.send_signal(stop)
    out, err = ended(connecting, timeout=60)
    assert connecting.returncode == status, err
    (line,) = err.splitlines()
    assert line.endswith(
        f"while connecting to the Ray cluster at '{not_ray.address}': nothing was written"
    )
    assert not (tmp_path / "results").exists()


# --- 6. nothing measured ------------------------------------------------------------------------


class EndsAs:
    """An executor whose every run ends as ``ends(recipe)`` says, without a worker."""

    parallel_runs = 1

    def __init__(self, ends):
        self.ends = ends

    def outcomes(self, specs: list, scratch: Path):
        for spec in specs:
            results = {run.run.run_id: self.ends(run.run.recipe) for run in spec.runs}
            yield spec, Outcome(results, 1.0, time.time(), None, {})

    def where(self, outcome) -> str:
        return ""


@pytest.fixture
def ending(monkeypatch):
    """Set how every run of a benchmark ends: ``ending(lambda recipe: RunResult(...))``."""
    monkeypatch.setattr(environment, "preflight", lambda config: {})
    monkeypatch.setattr(runner, "_write_report", lambda folder, out: None)

    def ends_as(ends):
        monkeypatch.setattr(executors, "LocalExecutor", lambda: EndsAs(ends))
        monkeypatch.setattr(common, "LocalExecutor", lambda: EndsAs(ends))

    return ends_as


def timed_out(recipe: str) -> RunResult:
    return RunResult(TIMEOUT, "killed at the 120 s time limit")


def test_a_benchmark_whose_every_run_timed_out_exits_3_and_so_does_its_resume(
    tmp_path, capsys, ending
):
    ending(timed_out)
    tiny = tiny_config(tmp_path, ["plain_ae", "kl_layer"], repeats=2)
    results = tmp_path / "results"
    assert main(["run", "--config", str(tiny), "--results-dir", str(results)]) == NOTHING_MEASURED
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("nothing measured: no planned run ended ok, failed or diverged")
    assert "3 timeout" in last and "timeout_seconds (now 120 s per run)" in last
    (folder,) = results.iterdir()
    assert main(["run", "--resume", str(folder)]) == NOTHING_MEASURED
    assert capsys.readouterr().out.splitlines()[-1].startswith("nothing measured:")


def test_a_run_that_failed_as_a_recipe_is_a_measurement(tmp_path, capsys, ending):
    ending(
        lambda recipe: (
            RunResult(FAILED, "ValueError: as written")
            if recipe == "kl_layer"
            else timed_out(recipe)
        )
    )
    tiny = tiny_config(tmp_path, ["plain_ae", "kl_layer"])
    assert main(["run", "--config", str(tiny), "--results-dir", str(tmp_path / "r")]) == 0
    assert "nothing measured" not in capsys.readouterr().out


def test_check_of_a_new_run_that_measured_nothing_exits_3(tmp_path, capsys, ending):
    ending(timed_out)
    tiny = tiny_config(tmp_path, ["plain_ae"])
    argv = ["check", "--config", str(tiny), "--update-baseline", "--baseline"]
    argv += [str(tmp_path / "b.json"), "--results-dir", str(tmp_path / "r")]
    with pytest.raises(SystemExit) as exit_status:
        main(argv)
    assert exit_status.value.code == NOTHING_MEASURED and not (tmp_path / "b.json").exists()


# --- 7. what the gate cannot judge --------------------------------------------------------------


def test_folders_of_another_config_are_refused_not_failed(tmp_path, capsys):
    baseline = tmp_path / "baseline.json"
    judged = results_folder(tmp_path / "a")
    argv = ["check", "--results", judged, "--update-baseline", "--baseline", baseline]
    assert main([*map(str, argv)]) == 0
    capsys.readouterr()
    other = results_folder(tmp_path / "b", epochs=3)
    err = refused(capsys, "check", "--results", other, "--baseline", baseline)
    assert err.startswith(f"error: cannot judge {other} against {baseline}: settings ")
    assert main(["check", "--results", str(judged), "--baseline", str(baseline)]) == 0


@pytest.mark.parametrize(
    "ends, how",
    [
        ((), "no finished run"),
        (
            (RunResult(TIMEOUT, "time limit"), RunResult("killed", "signal 9")),
            "1 killed, 1 timeout",
        ),
    ],
)
def test_a_folder_that_measured_nothing_cannot_be_judged(tmp_path, capsys, ends, how):
    folder = folder_of_ends(tmp_path / "results", *ends)
    new = tmp_path / "new.json"
    err = refused(capsys, "check", "--results", folder, "--baseline", new, "--update-baseline")
    assert f"cannot judge {folder}: it measured nothing ({how})" in err and not new.exists()
    baseline = tmp_path / "baseline.json"
    same_config = results_folder(tmp_path / "ok", ["plain_ae"], repeats=max(len(ends), 1))
    argv = ["check", "--results", same_config, "--update-baseline", "--baseline", baseline]
    assert main([*map(str, argv)]) == 0
    capsys.readouterr()
    err = refused(capsys, "check", "--results", folder, "--baseline", baseline)
    assert f"cannot judge {folder}: it measured nothing ({how})" in err


# --- 8. small leaks -----------------------------------------------------------------------------


def test_a_refused_resume_leaves_no_lock_file(tmp_path, capsys):
    folder = results_folder(tmp_path / "results")
    (folder / "runs.csv").write_bytes(b"run_id,recipe\n\xff\xfe,\x00\n")
    before = files_in(folder)
    refused(capsys, "run", "--resume", folder, fragment="runs.csv")
    assert files_in(folder) == before and not (folder / LOCK_FILE).exists()


@pytest.mark.parametrize(
    "table, line",
    [
        ("device", 'device = "{huge}"'),
        ("training", "{huge} = 1"),
        ("network", 'activation = ["{huge}"]'),
        ("matrix", 'recipes = ["{huge}"]'),
    ],
)
def test_an_error_quoting_a_huge_value_stays_a_short_line(
    tmp_path, capsys, no_benchmark, table, line
):
    huge = "x" * 1_000_000
    path = tmp_path / "huge.toml"
    path.write_text(f"[{table}]\n{line.format(huge=huge)}\n")
    err = refused(capsys, "run", "--config", path)
    assert len(err) < 300 + len(str(path)) and "characters)" in err, err[:400]


def test_a_huge_command_line_value_stays_a_short_line(tmp_path, capsys, no_benchmark):
    huge = "9" * 100_000
    tiny = tiny_config(tmp_path, ["plain_ae"])
    for argv in (
        ["sweep", "--config", tiny, "--vary", f"training.seed={huge}"],
        ["sweep", "--config", tiny, "--vary", f"training.{huge}=1"],
        ["sweep", "--config", tiny, "--vary", huge],
        ["compare", tmp_path, tmp_path, "--fail-slower", huge],
        ["run", "--config", tiny, "--executor", "ray", "--address", huge],
    ):
        assert len(refused(capsys, *argv)) < 6 * QUOTED_LENGTH


def test_the_quoting_of_a_value_keeps_short_ones_whole():
    assert quoted("plain_ae") == "'plain_ae'"
    assert quoted("x" * 1000) == "'" + "x" * (QUOTED_LENGTH - 4) + "... (1,002 characters)"
    assert quoted(10**5000) == "(a int too long to show)"


def test_an_mnist_path_that_is_a_folder_is_called_a_folder(tmp_path, capsys, no_benchmark):
    for dataset in ("mnist", "auto"):
        path = tmp_path / f"{dataset}.toml"
        text = tiny_config(tmp_path, ["plain_ae"]).read_text()
        path.write_text(
            text.replace(
                'dataset = "synthetic"', f'dataset = "{dataset}"\nmnist_path = "{tmp_path}"'
            )
        )
        err = refused(capsys, "run", "--config", path, "--results-dir", tmp_path / "r")
        assert f"MNIST file {tmp_path} is a folder, not a file" in err
    with pytest.raises(UsageError, match="is a folder"):
        config.load(str(tmp_path))
