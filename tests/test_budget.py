"""A benchmark under a time budget: the duration it is given, the budget refused before anything
runs, and the runner's rounds after the first (with a simulated worker: no TensorFlow)."""

import io
import math
from types import SimpleNamespace

import numpy as np
import pytest

from bench.__main__ import main
from bench.analysis import allocation, claims, estimators, step_ratios
from bench.analysis.tables import analysis_of
from bench.config import budget, plan
from bench.config import settings as config_module
from bench.errors import UsageError
from bench.report.budget import budget_blocks
from bench.results.folder import ResultsFolder
from bench.results.records import OK, BlockStep, RunResult
from bench.run import budget as budget_clock
from bench.run import runner
from bench.run.executors import Outcome
from tests.builders import FIXED_TIME, epochs_falling_to, tiny_config


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15m", 900), ("90s", 90), ("1h", 3600), ("1h30m", 5400), ("2.5m", 150), (" 10M ", 600)],
)
def test_a_budget_is_a_duration(text, seconds):
    assert budget.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["15", "15 minutes", "m", "", "0m", "-5m", "1m1h"])
def test_anything_else_is_refused_naming_the_flag(text):
    with pytest.raises(UsageError, match="--budget") as refused:
        budget.parse_duration(text)
    assert "\n" not in str(refused.value)


def test_a_budget_too_small_for_one_round_is_refused_with_the_smallest_that_fits(tmp_path, capsys):
    status = main(["run", "--budget", "30s", "--results-dir", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1
    assert "cannot hold one round" in err and "give at least" in err
    assert not (tmp_path / "results").exists()


def test_a_budget_plans_the_first_round_only_and_repeats_alone_turn_it_off():
    default = config_module.load("default")
    assert default.matrix.budget  # the default config runs under a budget
    first = plan.make_plan(default)
    assert {run.repeat for run in first} == {1}
    fixed = config_module.with_overrides(default, repeats=2)
    assert not fixed.matrix.budget and {run.repeat for run in plan.make_plan(fixed)} == {1, 2}
    both = config_module.with_overrides(default, repeats=2, budget="5m")
    assert both.matrix.budget == "5m"


class SimulatedExecutor:
    """Workers that take no time: each model's step lasts its recipe's ``step_seconds``, with
    lognormal ``noise`` from ``rng``; every run trains 2 epochs, but one the plan times only."""

    parallel_runs = 1

    def __init__(self, step_seconds: dict, rng, noise=0.05):
        self.step_seconds, self.rng, self.noise, self.processes = step_seconds, rng, noise, []

    def outcomes(self, specs, scratch):
        for spec in specs:
            self.processes.append([run.run.recipe for run in spec.runs])
            models = [(run.run.recipe, run.run.api) for run in spec.runs] + list(spec.references)
            results = {run.run.run_id: self._result(run.run, models) for run in spec.runs}
            yield spec, Outcome(results, 30.0, FIXED_TIME.timestamp(), 0.5, {})

    def where(self, outcome):
        return ""

    def _result(self, run, models):
        blocks = tuple(
            BlockStep(
                block, model, api, 1, self.step_seconds[model] * self.rng.lognormal(0, self.noise)
            )
            for block in range(1, 6)
            for model, api in models
        )
        epochs = (
            () if run.timed_only else epochs_falling_to(100.0, 50.0, self.rng, epochs=2, steps=5)
        )
        return RunResult(OK, "", epochs, blocks, trace_count=2, graph_ops=400)


@pytest.mark.parametrize("train_later_rounds", [True, False])
def test_rounds_follow_while_the_budget_lasts_and_it_is_recorded(
    tmp_path, monkeypatch, train_later_rounds
):
    path = tiny_config(tmp_path, ["plain_ae", "kl_layer"])
    path.write_text(path.read_text() + f"train_later_rounds = {str(train_later_rounds).lower()}\n")
    config = config_module.with_overrides(config_module.load(str(path)), budget="10m")
    folder = ResultsFolder.create(tmp_path / "results", config.name, FIXED_TIME)
    runs = plan.make_plan(config)
    folder.save_plan(config, runs)
    clock = budget_clock.Budget(600.0, "python -m bench run --budget 10m")
    seconds_left = iter([500.0, 200.0, 60.0])  # before each round after the first
    monkeypatch.setattr(budget_clock.Budget, "left", lambda self: next(seconds_left, 0.0))
    monkeypatch.setattr(runner, "_write_report", lambda folder, out: None)
    executor = SimulatedExecutor({"plain_ae": 0.05, "kl_layer": 0.06}, np.random.default_rng(0))
    job = runner.Job(folder, config, runs, clock)
    out = io.StringIO()
    assert runner._execute(job, out, executor) == 0
    repeats = sorted({run.repeat for run in folder.planned_runs()})
    assert repeats[0] == 1 and len(repeats) > 1
    # A round after the first trains the recipes whose ratio is still wide; their process
    # times the floor beside them without training it.
    assert all(recipes == ["kl_layer"] for recipes in executor.processes[1:])
    # Trained again, or timed only (docs/budget.md, "A later round times, it does not train").
    later = folder.read().runs.query("repeat > 1")
    assert later.timed_only.tolist() == [not train_later_rounds] * len(later)
    assert later.ms_per_step.isna().all() != train_later_rounds
    entry = folder.read_env()["budgets"][-1]
    assert entry["seconds"] == 600.0 and entry["rounds_added"] == repeats[1:]
    assert entry["ended"] in (budget_clock.OUT_OF_TIME, budget_clock.TARGET_REACHED)
    assert "the budget ends here" in out.getvalue()
    # One process answers for both runs of the first round: its lines still count 1, 2.
    assert "[1/2] " in out.getvalue() and "[2/2] " in out.getvalue()
    assert math.isfinite(folder.read().runs.ms_per_step.iloc[0])
    analysis = analysis_of(folder.read())
    section = str(budget_blocks(analysis.main, analysis.tables))
    assert "A budget of 10m00s (python -m bench run --budget 10m)" in section
    assert f"it ended because {entry['ended']}" in section and "Ratios to the floor" in section


def claim_row(ratio, half_width, n, confidence=0.95, df=None):
    """A claim table's row for post VII's first claim: ``half_width`` in log units of its 95% CI
    about ``ratio`` on ``df`` degrees of freedom (n - 1 unless told), decided at
    ``confidence``."""
    return SimpleNamespace(
        claim=claims.CLAIMS[0],  # 1.3-1.5x with its margin
        api="keras2",
        ratio=ratio,
        ci_high=ratio * math.exp(half_width),
        n=n,
        method=step_ratios.PAIRED,
        verdict="inconclusive",
        verdict_confidence=confidence,
        df=(n - 1 if n >= 2 else math.nan) if df is None else df,
    )


def test_an_undecided_claim_needs_processes_that_shrink_its_interval_inside_a_bound():
    _, high = claims.CLAIMS[0].equivalence_range
    beyond = high * math.exp(0.02)  # 2% past the upper bound, a 95% CI of ±4% on 4 processes:
    # not reproduced needs the 95% interval clear of the bound (a family of one): 9 processes
    # bring t(8) * 0.04 * 2 / t(3) / 3 = 0.0193 under 0.02; 8 leave 0.0210.
    assert allocation._processes_to_decide(claim_row(beyond, 0.04, n=4)) == 5
    assert allocation._processes_to_decide(claim_row(beyond, 0.04, n=4, confidence=0.996)) > 5
    # 2% inside it, reproduced needs the 90% interval inside (two one-sided tests at 5%): 7
    # processes bring t(6, 0.95) * 0.04 * 2 / t(3) / sqrt(7) = 0.0185 under 0.02; 6 leave 0.0207.
    # (the confidence a claim table's row carries there, claims.judge_family's).
    near = high / math.exp(0.02)
    reproducing = claims.reproducing_confidence(1)
    assert allocation._processes_to_decide(claim_row(near, 0.04, n=4, confidence=reproducing)) == 3
    assert allocation._processes_to_decide(claim_row(near, 0.04, n=4, confidence=0.992)) > 3
    assert allocation._processes_to_decide(claim_row(high, 0.04, n=4)) == 0  # on the bound
    # The same spread with the API's prior behind it (2 more degrees of freedom: a narrower 95%
    # CI), decided in a family: its t quantiles are smaller, so fewer processes decide it.
    spread = 0.04 / estimators.t_quantile(2)
    alone = claim_row(near, 0.04, n=3, confidence=0.996)
    moderated = claim_row(near, spread * estimators.t_quantile(4), n=3, confidence=0.996, df=4)
    assert 0 < allocation._processes_to_decide(moderated) < allocation._processes_to_decide(alone)
    without_interval = claim_row(1.4, math.nan, n=1)
    assert allocation._processes_to_decide(without_interval) == allocation.MIN_PROCESSES - 1


def test_a_finished_folder_resumed_with_a_budget_gains_rounds(tmp_path, monkeypatch):
    config = config_module.load(str(tiny_config(tmp_path, ["plain_ae", "kl_layer"], repeats=3)))
    folder = ResultsFolder.create(tmp_path / "results", config.name, FIXED_TIME)
    folder.save_plan(config, plan.make_plan(config))
    monkeypatch.setattr(runner, "_write_report", lambda folder, out: None)
    steps = {"plain_ae": 0.05, "kl_layer": 0.06}
    executor = SimulatedExecutor(steps, np.random.default_rng(1), noise=0.015)
    assert runner.execute(folder, config, plan.make_plan(config), io.StringIO(), executor) == 0
    checked = runner.resumable(folder.path, None, "5m")
    assert runner.resume(checked, "python -m bench run --resume F --budget 5m", None, executor) == 0
    repeats = {run.repeat for run in folder.planned_runs()}
    assert repeats > {1, 2, 3}
    assert folder.read_env()["budgets"][-1]["ended"] == budget_clock.TARGET_REACHED
