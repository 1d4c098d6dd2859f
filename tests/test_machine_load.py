"""Other work on the machine over a whole run: measured from the CPU pressure of the timed steps,
recorded in env.json at a benchmark's end, said on the answer's first lines and in the claims'
verdicts, and by compare, history and check where a shared run meets a quiet one."""

import io
import json

import numpy as np
import pytest

from bench.__main__ import main
from bench.analysis import claims, machine_load
from bench.analysis.answer_data import answer_of, read_answer
from bench.analysis.tables import analyse
from bench.config import plan
from bench.config import settings as config_module
from bench.report.answer import SHARED_LABEL, answer_markdown, claims_table
from bench.results.folder import BLOCKS_CSV, ENV_JSON, ResultsFolder
from bench.results.records import OK, BlockStep, RunResult
from bench.run import runner
from bench.run.executors import Outcome
from tests.builders import FIXED_TIME, blocks_as_read, epochs_falling_to, tiny_config
from tests.test_claims import claim_ratios_frame

QUIET_PRESSURE = 0.02  # of a step's seconds: a worker's own threads waiting for each other
SHARED_PRESSURE = 0.95  # a neighbour on a core throughout
STEPS = {"plain_ae": 0.05, "kl_layer": 0.06}


def steps_frame(pressures: dict, seconds: float = 0.05):
    """blocks.csv rows of one process per key: {process: [pressure share of each step]}."""
    rows = [
        {
            "run_id": process,
            "process": process,
            "recipe": "plain_ae",
            "api": "keras2",
            "repeat": 1,
            "block": 1,
            "model": "plain_ae",
            "model_api": "keras2",
            "step": step,
            "seconds": seconds,
            "pressure_seconds": None if share is None else share * seconds,
        }
        for process, shares in pressures.items()
        for step, share in enumerate(shares, start=1)
    ]
    return blocks_as_read(rows)


def test_a_quiet_a_shared_and_an_unmeasured_run():
    quiet = machine_load.of_blocks(steps_frame({"p1": [QUIET_PRESSURE] * 10}))
    assert quiet.state == machine_load.QUIET and quiet.share == 0.0
    assert quiet.pressure == pytest.approx(QUIET_PRESSURE)
    shared = machine_load.of_blocks(steps_frame({"p1": [SHARED_PRESSURE] * 10}))
    assert shared.state == machine_load.SHARED and shared.share == 1.0
    unmeasured = machine_load.of_blocks(steps_frame({"p1": [None] * 10}))
    assert unmeasured.state == machine_load.UNKNOWN and not unmeasured.shared


def test_the_share_is_of_timed_seconds_over_the_run_and_each_process_is_judged():
    # One process of two under a neighbour for 3 of its 4 steps: 3 of 8 equal steps, shared.
    work = machine_load.of_blocks(
        steps_frame({"p1": [QUIET_PRESSURE] * 4, "p2": [SHARED_PRESSURE] * 3 + [QUIET_PRESSURE]})
    )
    assert work.share == pytest.approx(3 / 8)
    assert (work.processes, work.shared_processes) == (2, 1)
    assert work.shared
    # A burst in one step of twenty stays under the threshold: a quiet run.
    burst = machine_load.of_blocks(steps_frame({"p1": [SHARED_PRESSURE] + [QUIET_PRESSURE] * 19}))
    assert burst.share == pytest.approx(0.05) and burst.state == machine_load.QUIET


def test_the_env_json_entry_reads_back_and_anything_unreadable_is_unknown():
    work = machine_load.of_blocks(steps_frame({"p1": [SHARED_PRESSURE] * 3 + [QUIET_PRESSURE]}))
    entry = json.loads(json.dumps(work.record()))
    assert entry["state"] == machine_load.SHARED
    assert entry["shared_share"] == machine_load.SHARED_SHARE
    assert machine_load.OtherWork.from_record(entry).record() == work.record()
    for garbled in (None, "shared", {"share": "lots"}, {"share": 0.5, "processes": -1}):
        assert machine_load.OtherWork.from_record(garbled).state == machine_load.UNKNOWN


class PressedExecutor:
    """Workers that take no time, each step under ``pressure`` (a share of its seconds, or None:
    a kernel that does not say)."""

    parallel_runs = 1

    def __init__(self, pressure):
        self.pressure, self.rng = pressure, np.random.default_rng(0)

    def outcomes(self, specs, scratch):
        for spec in specs:
            models = [(run.run.recipe, run.run.api) for run in spec.runs] + list(spec.references)
            results = {run.run.run_id: self._result(models) for run in spec.runs}
            yield spec, Outcome(results, 30.0, FIXED_TIME.timestamp(), 0.5, {})

    def where(self, outcome):
        return ""

    def _result(self, models):
        blocks = []
        for block in range(1, 6):
            for model, api in models:
                seconds = STEPS[model] * self.rng.lognormal(0, 0.01)
                waited = None if self.pressure is None else self.pressure * seconds
                blocks.append(BlockStep(block, model, api, 1, seconds, waited))
        epochs = epochs_falling_to(100.0, 50.0, self.rng, epochs=2, steps=5)
        return RunResult(OK, "", epochs, tuple(blocks), trace_count=2, graph_ops=400)


def benchmark(tmp_path, monkeypatch, pressure, name="results") -> ResultsFolder:
    """A benchmark of plain_ae and kl_layer run by ``PressedExecutor``, analysed."""
    config = config_module.load(str(tiny_config(tmp_path, list(STEPS), repeats=3)))
    folder = ResultsFolder.create(tmp_path / name, config.name, FIXED_TIME)
    runs = plan.make_plan(config)
    folder.save_plan(config, runs)
    monkeypatch.setattr(runner, "_write_report", lambda folder, out: None)
    assert runner.execute(folder, config, runs, io.StringIO(), PressedExecutor(pressure)) == 0
    analyse(folder.path)
    return folder


def first_line(folder: ResultsFolder) -> str:
    """The answer's first paragraph: where its numbers come from."""
    return answer_markdown(read_answer(folder.path)).split("\n\n")[1]


def test_a_shared_benchmark_says_so_in_env_json_and_on_the_answers_first_lines(
    tmp_path, monkeypatch
):
    folder = benchmark(tmp_path, monkeypatch, SHARED_PRESSURE)
    entry = folder.read_env()[machine_load.ENV_KEY]
    assert entry["state"] == machine_load.SHARED and entry["share"] == 1.0
    assert "shared: 100% of its timed steps under other work" in first_line(folder)
    answer = answer_markdown(read_answer(folder.path))
    lead = f"Measured on a shared machine: each verdict below (its column marked {SHARED_LABEL})"
    assert lead in " ".join(answer.split())  # its paragraphs wrap for a terminal
    # The report opens with the same answer.
    analysis = analyse(folder.path)
    assert "shared: 100%" in answer_markdown(answer_of(analysis.results, analysis.all_ratios()))


def test_a_quiet_benchmark_says_quiet_and_a_folder_without_the_entry_reads_its_blocks(
    tmp_path, monkeypatch
):
    folder = benchmark(tmp_path, monkeypatch, QUIET_PRESSURE)
    assert folder.read_env()[machine_load.ENV_KEY]["state"] == machine_load.QUIET
    assert "quiet: 0% of its timed steps under other work" in first_line(folder)
    assert "Measured on a shared machine" not in answer_markdown(read_answer(folder.path))
    env = folder.read_env()
    del env[machine_load.ENV_KEY]
    folder.write_env(env)
    assert machine_load.ENV_KEY not in json.loads((folder.path / ENV_JSON).read_text())
    assert "quiet: 0% of its timed steps" in first_line(folder)


def test_a_benchmark_without_pressure_readings_claims_neither(tmp_path, monkeypatch):
    folder = benchmark(tmp_path, monkeypatch, None)
    assert folder.read_env()[machine_load.ENV_KEY]["state"] == machine_load.UNKNOWN
    line = first_line(folder)
    assert "other work on it unmeasured" in line
    assert "quiet" not in line and "shared" not in line


def test_a_shared_runs_claim_verdicts_are_labelled():
    ratios = claim_ratios_frame(
        [("notebook_globals", "model_add_loss", "keras2", 1.51, 1.505, 1.515)]
    )
    verdicts = claims.claim_verdicts(ratios)
    quiet = claims_table(verdicts, ["keras2"]).iloc[0].to_dict()
    shared = claims_table(verdicts, ["keras2"], shared=True).iloc[0].to_dict()
    assert shared["Keras 2 (shared)"] == quiet["Keras 2"] == "✓ 1.51x"
    assert not any(SHARED_LABEL in str(key) for key in quiet)


MIXED = "A shared run is compared with a quiet one: "


@pytest.fixture
def quiet_and_shared(tmp_path, monkeypatch) -> tuple:
    quiet = benchmark(tmp_path, monkeypatch, QUIET_PRESSURE, "quiet")
    shared = benchmark(tmp_path, monkeypatch, SHARED_PRESSURE, "shared")
    return quiet.path, shared.path


def mixed_lines(output: str) -> list:
    return [line for line in output.splitlines() if line.startswith(MIXED)]


def test_compare_and_history_say_when_a_shared_run_meets_a_quiet_one(
    quiet_and_shared, tmp_path, capsys
):
    quiet, shared = quiet_and_shared
    assert main(["compare", str(quiet), str(shared)]) == 0
    (line,) = mixed_lines(capsys.readouterr().out)
    assert line == (
        f"{MIXED}B (100% of its timed steps under other work) shared its machine; "
        "its ratios may differ for that alone."
    )
    plot = str(tmp_path / "history.png")
    assert main(["history", str(shared), str(quiet), "--plot", plot]) == 0
    (line,) = mixed_lines(capsys.readouterr().out)
    assert "100% of its timed steps under other work" in line
    assert main(["compare", str(quiet), str(quiet)]) == 0
    assert not mixed_lines(capsys.readouterr().out)


def test_check_says_when_a_shared_run_is_judged_against_a_quiet_baseline(
    quiet_and_shared, tmp_path, capsys
):
    quiet, shared = quiet_and_shared
    baseline = tmp_path / "baseline.json"
    arguments = ["check", "--baseline", str(baseline), "--results"]
    assert main([*arguments, str(quiet), "--update-baseline"]) == 0
    assert json.loads(baseline.read_text())[machine_load.ENV_KEY]["state"] == machine_load.QUIET
    capsys.readouterr()
    main([*arguments, str(shared)])
    (line,) = mixed_lines(capsys.readouterr().out)
    assert line.startswith(f"{MIXED}this run (100% of its timed steps under other work)")
    main([*arguments, str(quiet)])
    assert not mixed_lines(capsys.readouterr().out)


def test_an_unmeasured_run_is_not_called_quiet_or_shared_beside_a_shared_one(
    tmp_path, monkeypatch, capsys
):
    unmeasured = benchmark(tmp_path, monkeypatch, None, "unmeasured").path
    shared = benchmark(tmp_path, monkeypatch, SHARED_PRESSURE, "shared").path
    assert main(["compare", str(unmeasured), str(shared)]) == 0
    assert not mixed_lines(capsys.readouterr().out)


def test_an_unreadable_blocks_csv_leaves_the_answer_with_other_work_unknown(tmp_path, monkeypatch):
    folder = benchmark(tmp_path, monkeypatch, SHARED_PRESSURE)
    env = folder.read_env()
    del env[machine_load.ENV_KEY]
    folder.write_env(env)
    blocks = folder.path / BLOCKS_CSV
    blocks.write_text(blocks.read_text().splitlines()[0] + "\n1,2\n")
    assert "other work on it unmeasured" in first_line(folder)
