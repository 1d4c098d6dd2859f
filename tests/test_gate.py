"""The gate's decisions on synthetic records with known answers."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from bench.__main__ import main
from bench.analysis import baseline_file, gate, pairing
from bench.errors import UsageError
from bench.report.gate_table import decision_reason_text, decision_table
from bench.results import folder as results
from bench.results.records import YARDSTICK
from tests.builders import folder_of_records, paired_blocks_frame, record

REPEATS = 8


def gate_records(ms_by_pair, failures=(), loss_by_pair=None, seed=0) -> list:
    """Runs with per-run ms/step = value x (1 +- 1% noise); failures are failed pairs."""
    rng = np.random.default_rng(seed)
    # Every recipe of a round trains identically: one final loss per round, as in real runs.
    round_loss = 1 + rng.normal(0, 0.002, REPEATS + 1)
    records = [
        record(
            recipe,
            api,
            repeat,
            ms_per_step=ms * (1 + rng.normal(0, 0.01)),
            final_loss=(loss_by_pair or {}).get((recipe, api), 0.2) * round_loss[repeat],
        )
        for (recipe, api), ms in ms_by_pair.items()
        for repeat in range(1, REPEATS + 1)
    ]
    return records + [
        record(recipe, api, status="failed", error="TypeError: boom") for recipe, api in failures
    ]


def runs_frame(ms_by_pair, failures=(), loss_by_pair=None, seed=0):
    return results.runs_frame(gate_records(ms_by_pair, failures, loss_by_pair, seed))


BASE = {
    ("plain_ae", "keras2"): 70.0,
    ("kl_layer", "keras2"): 77.0,
    ("gradient_tape", "keras2"): 74.0,
}


@pytest.fixture
def baseline():
    return baseline_file.make_baseline(
        runs_frame(BASE, failures=[("closure_loss", "keras2")]), {"config": {"name": "ci"}}
    )


def verdicts(decisions):
    return {(d.recipe, d.api): d.verdict for d in decisions}


def test_baseline_records_ratios_and_failures(baseline):
    entry = baseline["entries"]["kl_layer/keras2"]
    assert entry["ratio"] == pytest.approx(1.1, rel=0.02)
    assert entry["ci"][0] < entry["ratio"] < entry["ci"][1]
    assert baseline["entries"]["closure_loss/keras2"]["status"] == "fails"


def test_unchanged_run_passes(baseline):
    decisions = gate.decide(
        runs_frame(BASE, failures=[("closure_loss", "keras2")], seed=1), baseline
    )
    assert all(d.passed for d in decisions), decision_table(decisions)
    assert verdicts(decisions)["closure_loss", "keras2"] == "fails as before"


def test_machine_speed_cancels_out(baseline):
    slower_machine = {pair: ms * 1.6 for pair, ms in BASE.items()}
    decisions = gate.decide(
        runs_frame(slower_machine, failures=[("closure_loss", "keras2")], seed=2), baseline
    )
    assert all(d.passed for d in decisions), decision_table(decisions)


def test_regression_beyond_tolerance_fails_and_names_the_recipe(baseline):
    slowed = {**BASE, ("kl_layer", "keras2"): 77.0 * 1.25}
    decisions = gate.decide(runs_frame(slowed, seed=3), baseline)
    assert verdicts(decisions) == {
        ("plain_ae", "keras2"): "ok",
        ("kl_layer", "keras2"): "regression",
        ("gradient_tape", "keras2"): "ok",
        ("closure_loss", "keras2"): "not run",
    }
    assert "kl_layer" in decision_table(decisions)


def test_regression_within_tolerance_passes(baseline):
    slowed = {**BASE, ("kl_layer", "keras2"): 77.0 * 1.02}
    assert verdicts(gate.decide(runs_frame(slowed, seed=4), baseline))["kl_layer", "keras2"] == "ok"


@pytest.mark.parametrize(
    "ratio, ci_low, ci_high, verdict",
    [
        (1.12, 1.08, 1.16, "regression"),  # past the tolerance, the CI wholly above the baseline
        (1.12, 0.98, 1.28, "ok"),  # past the tolerance, but the CI holds the baseline: noise
        (1.04, 1.03, 1.05, "ok"),  # a significant rise within the tolerance
        (0.90, 0.88, 0.92, "faster"),
        (0.90, 0.80, 1.02, "ok"),
    ],
)
def test_a_ratio_must_pass_the_tolerance_and_be_significant(ratio, ci_low, ci_high, verdict):
    entry = {"status": "works", "ratio": 1.0, "final_loss": None}
    measured = SimpleNamespace(ratio=ratio, ci_low=ci_low, ci_high=ci_high)
    assert (
        gate._decide(entry, {"status": "works"}, measured, math.nan, tolerance=0.05)[0] == verdict
    )


def test_improvement_passes(baseline):
    faster = {**BASE, ("kl_layer", "keras2"): 77.0 * 0.7}
    decision = {d.recipe: d for d in gate.decide(runs_frame(faster, seed=5), baseline)}["kl_layer"]
    assert decision.verdict == "faster" and decision.passed


def test_new_failure_fails(baseline):
    decisions = gate.decide(
        runs_frame(
            {k: v for k, v in BASE.items() if k[0] != "kl_layer"},
            failures=[("kl_layer", "keras2")],
            seed=6,
        ),
        baseline,
    )
    assert verdicts(decisions)["kl_layer", "keras2"] == "new failure"
    assert not all(d.passed for d in decisions)


def test_loss_leaving_its_band_fails(baseline):
    decisions = gate.decide(
        runs_frame(BASE, loss_by_pair={("gradient_tape", "keras2"): 0.3}, seed=7), baseline
    )
    assert verdicts(decisions)["gradient_tape", "keras2"] == "loss moved"


def test_missing_baseline_entry_is_named(baseline):
    extra = {**BASE, ("tensor_transfer", "keras2"): 75.0}
    decision = {d.recipe: d for d in gate.decide(runs_frame(extra, seed=8), baseline)}[
        "tensor_transfer"
    ]
    assert decision.verdict == "no baseline" and not decision.passed
    assert "--update-baseline" in decision_reason_text(decision)


def test_invalid_baseline_and_tolerance_are_rejected(baseline):
    with pytest.raises(UsageError, match="not a kl-bench baseline"):
        baseline_file.check_baseline({"entries": {}}, "bench/baseline.json")
    with pytest.raises(UsageError, match="tolerance"):
        gate.decide(runs_frame(BASE), baseline, tolerance=0)


def write_folder(results_dir, name, records):
    return folder_of_records(
        results_dir, name, records, {"config": {"name": "ci"}, "python": "3.11"}
    ).path


def test_check_pools_several_folders_into_one_baseline_and_judges_a_new_run(tmp_path, capsys):
    first, second = (
        write_folder(tmp_path, name, gate_records(BASE, seed=seed))
        for name, seed in (("a", 1), ("b", 2))
    )
    baseline_path = tmp_path / "baseline.json"
    assert (
        main(
            [
                "check",
                "--results",
                str(first),
                str(second),
                "--update-baseline",
                "--baseline",
                str(baseline_path),
            ]
        )
        == 0
    )
    written = json.loads(baseline_path.read_text())
    assert (
        written["sources"] == [first.name, second.name]
        and written["entries"]["kl_layer/keras2"]["ok_runs"] == 2 * REPEATS
    )
    assert written["entries"]["kl_layer/keras2"]["ratio"] == pytest.approx(1.1, rel=0.02)
    slower = write_folder(
        tmp_path, "c", gate_records({**BASE, ("kl_layer", "keras2"): 77.0 * 1.5}, seed=3)
    )
    assert main(["check", "--results", str(slower), "--baseline", str(baseline_path)]) == 1
    (regression,) = [line for line in capsys.readouterr().out.splitlines() if "regression:" in line]
    assert regression.split()[:2] == ["kl_layer", "keras2"]


def test_check_of_an_unreadable_results_folder_is_one_line(tmp_path, capsys):
    assert (
        main(
            [
                "check",
                "--results",
                str(tmp_path / "missing"),
                "--update-baseline",
                "--baseline",
                str(tmp_path / "b.json"),
            ]
        )
        == 2
    )
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "results folder not found" in error and "missing" in error
    assert not (tmp_path / "b.json").exists()


HOST = {"hostname": "ci-1", "cpu_model": "Test CPU", "logical_cpus": 2}


def write_host_folder(results_dir, name, records, host=HOST, keras="3.15.1", epochs=2):
    env = {
        "config": {"name": "ci", "training": {"epochs": epochs}},
        "python": "3.11",
        "keras": keras,
        "host": host,
    }
    return folder_of_records(results_dir, name, records, env).path


def test_a_slowdown_of_every_recipe_fails_the_floor_check_on_the_baselines_host(tmp_path, capsys):
    baseline_path = tmp_path / "baseline.json"
    assert (
        main(
            [
                "check",
                "--results",
                str(write_host_folder(tmp_path, "a", gate_records(BASE))),
                "--update-baseline",
                "--baseline",
                str(baseline_path),
            ]
        )
        == 0
    )
    everything_slower = gate_records({pair: ms * 1.5 for pair, ms in BASE.items()}, seed=4)
    assert (
        main(
            [
                "check",
                "--results",
                str(write_host_folder(tmp_path, "b", everything_slower)),
                "--baseline",
                str(baseline_path),
            ]
        )
        == 1
    )
    out = capsys.readouterr().out
    (floor,) = [line for line in out.splitlines() if "regression:" in line]
    assert floor.split()[:4] == ["plain_ae", "keras2", "floor", "ms/step"]
    assert "plain_ae's own ms/step (the baseline was recorded on this host" in out

    elsewhere = write_host_folder(
        tmp_path, "c", everything_slower, host={**HOST, "hostname": "ci-2"}, keras="3.16.0"
    )
    assert main(["check", "--results", str(elsewhere), "--baseline", str(baseline_path)]) == 0
    out = capsys.readouterr().out
    assert (
        "not plain_ae's own ms/step (the baseline was recorded on ci-1 (Test CPU, 2 CPUs))" in out
    )
    assert "differs from the baseline: keras 3.15.1 in the baseline, 3.16.0 here" in out


def test_folders_run_under_different_settings_are_not_pooled(tmp_path, capsys):
    first = write_host_folder(tmp_path, "a", gate_records(BASE))
    other = write_host_folder(tmp_path, "b", gate_records(BASE), epochs=3)
    assert (
        main(
            [
                "check",
                "--results",
                str(first),
                str(other),
                "--update-baseline",
                "--baseline",
                str(tmp_path / "baseline.json"),
            ]
        )
        == 2
    )
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "cannot pool results run under different settings" in error
    assert not (tmp_path / "baseline.json").exists()


# --- the floor against the yardstick: a slowdown of every recipe, on any machine ---------------


def yardstick_blocks(floor_over_yardstick: float, machine: float, seed: int) -> pd.DataFrame:
    """Paired blocks of ``REPEATS`` keras2 processes in which the floor's run timed its step beside
    the yardstick's: the floor's ``floor_over_yardstick`` x the yardstick's, everything
    ``machine`` x slower than a 50 ms yardstick, each step with 2% noise."""
    yardstick = 0.05 * machine
    per_run = {
        ("plain_ae", "keras2", repeat): {
            ("plain_ae", "keras2"): yardstick * floor_over_yardstick,
            (YARDSTICK, "keras2"): yardstick,
        }
        for repeat in range(1, REPEATS + 1)
    }
    return paired_blocks_frame(per_run, blocks=6, steps=5, seed=seed, noise=0.02)


@pytest.fixture
def yardstick_baseline():
    return baseline_file.make_baseline(
        runs_frame(BASE), {}, blocks=yardstick_blocks(1.1, 1.0, seed=0)
    )


def test_the_baseline_records_the_floors_ratio_to_the_yardstick(yardstick_baseline):
    entry = yardstick_baseline["entries"]["plain_ae/keras2"]
    assert entry["yardstick_ratio"] == pytest.approx(1.1, rel=0.01)
    low, high = entry["yardstick_ci"]
    assert low < entry["yardstick_ratio"] < high
    assert "yardstick_ratio" not in yardstick_baseline["entries"]["kl_layer/keras2"]


@pytest.mark.parametrize(
    "floor_over_yardstick, machine, verdict",
    [
        (1.1, 3.0, "ok"),  # a machine 3x slower: the yardstick slows with the floor
        (1.1 * 1.03, 3.0, "ok"),  # ... and moves it a little
        (1.1 * 1.10, 3.0, "regression"),  # every step 10% slower than the machine
        (1.1 * 1.10, 1.0, "regression"),
    ],
)
def test_a_slowdown_of_every_recipe_fails_against_the_yardstick_on_any_machine(
    yardstick_baseline, floor_over_yardstick, machine, verdict
):
    runs = runs_frame({pair: ms * machine for pair, ms in BASE.items()}, seed=1)
    blocks = yardstick_blocks(floor_over_yardstick, machine, seed=2)
    (decision,) = gate.yardstick_decisions(runs, blocks, yardstick_baseline)
    assert (decision.check, decision.verdict) == (gate.YARDSTICK_CHECK, verdict)
    assert (decision_reason_text(decision) != "") == (verdict == "regression")


def test_without_a_yardstick_in_the_run_or_the_baseline_there_is_no_such_check(
    baseline, yardstick_baseline
):
    blocks = yardstick_blocks(1.1, 1.0, seed=3)
    assert gate.yardstick_decisions(runs_frame(BASE), blocks, baseline) == []
    no_yardstick = blocks[blocks.model != YARDSTICK]
    assert gate.yardstick_decisions(runs_frame(BASE), no_yardstick, yardstick_baseline) == []


def test_the_yardstick_is_compared_with_the_floor_only():
    blocks = yardstick_blocks(1.1, 1.0, seed=4)
    kl_layer = blocks.assign(
        run_id=blocks.run_id.str.replace("plain_ae", "kl_layer"),
        recipe="kl_layer",
        model=blocks.model.replace("plain_ae", "kl_layer"),
    )
    paired = pairing.process_ratios(pd.concat([blocks, kl_layer]))
    assert set(paired[paired.compared_with == YARDSTICK].recipe) == {"plain_ae"}
