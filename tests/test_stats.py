"""The statistics on constructed samples (bench.analysis: estimators, pairing, step_ratios,
quality_guard, time_to_quality): ratios and their CIs, claim verdicts, quality guard, time to
quality."""

import math

import numpy as np
import pandas as pd
import pytest

from bench.analysis import (
    claims,
    coverage,
    estimators,
    pairing,
    quality_guard,
    step_ratios,
    time_to_quality,
)
from bench.config.plan import PlannedRun
from tests.builders import blocks_as_read, frame_of, paired_blocks_frame


def runs_frame(ms_per_step: dict, final_loss: dict = None, status: str = "ok") -> pd.DataFrame:
    """One runs.csv row per sample: {(recipe, api): [ms/step of each run]}; final losses
    likewise."""
    return frame_of(ms_per_step, status, final_loss)


def noisy(center: float, n: int = 10, spread: float = 0.01, seed: int = 0) -> list:
    return list(center * (1 + np.random.default_rng(seed).normal(0, spread, n)))


def floor_ratio(runs: pd.DataFrame, recipe: str, api: str = "keras2"):
    ratios = step_ratios.ratio_table(runs)
    return ratios[(ratios.recipe == recipe) & (ratios.api == api)].iloc[0]


def test_ratio_ci_contains_true_ratio_and_excludes_one():
    floor = noisy(50.0, seed=1)
    runs = runs_frame(
        {
            ("plain_ae", "keras2"): floor,
            ("kl_layer", "keras2"): [1.4 * value for value in noisy(50.0, seed=2)],
        }
    )
    row = floor_ratio(runs, "kl_layer")
    assert row.ci_low < 1.4 < row.ci_high
    assert row.ci_low > 1.0
    assert row.p_value < 0.05
    assert row.half_width == pytest.approx((row.ci_high - row.ci_low) / 2 / row.ratio)


def test_identical_samples_give_ratio_one_and_no_significance():
    samples = noisy(50.0)
    row = floor_ratio(
        runs_frame({("plain_ae", "keras2"): samples, ("kl_layer", "keras2"): samples}), "kl_layer"
    )
    assert row.ratio == pytest.approx(1.0)
    assert row.ci_low <= 1.0 <= row.ci_high
    assert row.p_value > 0.05


def test_port_is_compared_with_keras3_references():
    runs = runs_frame(
        {
            ("plain_ae", "keras3"): noisy(40.0),
            ("kl_layer", "keras3-port"): noisy(60.0),
            ("tensor_transfer", "keras3"): noisy(50.0),
        }
    )
    ratios = step_ratios.ratio_table(runs)
    (port,) = ratios[ratios.api == "keras3-port"].itertuples()
    assert (port.compared_with, port.compared_api, port.method) == (
        "plain_ae",
        "keras3",
        step_ratios.BOOTSTRAP,
    )
    assert port.ratio == pytest.approx(1.5, rel=0.05)


# --- the paired measurement ---------------------------------------------------------------------


def paired_runs(ratios_by_repeat: list, recipe="kl_layer", api="keras2") -> tuple:
    """(runs, blocks) of paired runs of ``recipe`` against plain_ae with the given per-process
    ratios; each process runs at its own speed, as separate processes do."""
    per_run = {
        (recipe, api, repeat): {
            (recipe, api): 0.05 * speed * ratio,
            ("plain_ae", api): 0.05 * speed,
        }
        for repeat, (ratio, speed) in enumerate(
            zip(ratios_by_repeat, (1.0, 1.3, 0.8, 1.1, 0.9, 1.2)), start=1
        )
    }
    runs = runs_frame({(recipe, api): [100.0] * len(ratios_by_repeat)})
    return runs, paired_blocks_frame(per_run)


def test_process_ratio_is_the_ratio_of_median_step_times_within_one_run():
    _, blocks = paired_runs([1.2, 1.2, 1.2])
    ratios = pairing.process_ratios(blocks)
    assert list(ratios.compared_with) == ["plain_ae"] * 3
    assert ratios.ratio.to_list() == pytest.approx([1.2] * 3, rel=0.01)


def test_runs_that_shared_a_process_are_compared_with_each_other_and_never_across_processes():
    # Two rounds, each one process: kl_layer, vae_loss_layer and plain_ae each stored under its
    # own run.
    # Round 2's process ran 1.5x slower for its whole life: its ratios are the same.
    speeds = {1: 1.0, 2: 1.5}
    rows = [
        {
            "run_id": f"{model}-keras2-r{repeat}",
            "recipe": model,
            "api": "keras2",
            "repeat": repeat,
            "process": f"keras2-r{repeat}",
            "block": block,
            "model": model,
            "model_api": "keras2",
            "step": step,
            "seconds": seconds * speeds[repeat],
        }
        for repeat in (1, 2)
        for block in (1, 2, 3)
        for step in (1, 2)
        for model, seconds in (("kl_layer", 0.051), ("vae_loss_layer", 0.075), ("plain_ae", 0.050))
    ]
    ratios = (
        pairing.process_ratios(blocks_as_read(rows)).set_index(["run_id", "compared_with"]).ratio
    )
    for repeat in (1, 2):
        assert ratios[f"kl_layer-keras2-r{repeat}", "plain_ae"] == pytest.approx(1.02)
        assert ratios[f"vae_loss_layer-keras2-r{repeat}", "kl_layer"] == pytest.approx(
            0.075 / 0.051
        )
        assert ratios[f"plain_ae-keras2-r{repeat}", "vae_loss_layer"] == pytest.approx(
            0.050 / 0.075
        )
    assert len(ratios) == 2 * 3 * 2  # each run against the two other models of its own process only


def test_paired_ratio_cancels_process_speed_and_its_t_interval_covers_the_truth():
    runs, blocks = paired_runs([1.18, 1.21, 1.20, 1.19, 1.22])
    row = step_ratios.ratio_table(runs, blocks).iloc[0]
    assert row.method == step_ratios.PAIRED and row.n == 5
    assert row.ci_low < 1.2 < row.ci_high and row.half_width < 0.02  # processes ran 0.8-1.3x apart


def test_pairs_in_separate_processes_are_compared_over_their_block_step_times():
    # notebook_kernel and notebook_numpy_fit never share a process; each run's own block steps say
    # 60 vs 50 ms, while a 5-step epoch's ms/step carries noise from the epoch's boundaries.
    fit_ms = {
        ("notebook_kernel", "keras2"): [71.0, 58.0, 90.0],
        ("notebook_numpy_fit", "keras2"): [49.0, 66.0, 52.0],
    }
    runs = runs_frame(fit_ms)
    per_run = {
        (recipe, "keras2", repeat): {(recipe, "keras2"): seconds}
        for recipe, seconds in (("notebook_kernel", 0.060), ("notebook_numpy_fit", 0.050))
        for repeat in (1, 2, 3)
    }
    blocks = paired_blocks_frame(per_run)
    (row,) = claims.reading_table(runs, blocks).query("recipe == 'notebook_kernel'").itertuples()
    assert (row.undone, row.method, row.n) == ("notebook_numpy_fit", step_ratios.BOOTSTRAP, 3)
    assert row.ratio == pytest.approx(1.2, rel=0.01)
    without_blocks = claims.reading_table(runs, blocks[blocks.recipe != "notebook_numpy_fit"])
    assert without_blocks.query("recipe == 'notebook_kernel'").ratio.iloc[0] == pytest.approx(
        71.0 / 52.0
    )


def test_a_kernel_run_is_timed_beside_its_floor_only():
    assert claims.references("notebook_kernel", "keras3-port") == (("plain_ae", "keras3"),)
    assert claims.references("notebook_numpy_fit", "keras3-port") == (
        ("plain_ae", "keras3"),
        ("model_add_loss", "keras3-port"),
        ("notebook_globals", "keras3-port"),
    )


def test_log_t_interval_matches_a_hand_computation():
    ratios = [1.10, 1.20, 1.15]
    logs = np.log(ratios)
    margin = (
        4.302652729911275 * np.std(logs, ddof=1) / math.sqrt(3)
    )  # t(0.975, 2 degrees of freedom)
    found = estimators.log_t_interval(ratios)
    assert found["ratio"] == pytest.approx(math.exp(logs.mean()))
    assert (found["ci_low"], found["ci_high"]) == pytest.approx(
        (math.exp(logs.mean() - margin), math.exp(logs.mean() + margin))
    )
    single = estimators.log_t_interval([1.3])
    assert (
        single["ratio"] == pytest.approx(1.3) and math.isnan(single["ci_low"]) and single["n"] == 1
    )


def test_a_disturbed_process_is_flagged_and_the_others_are_not():
    _, blocks = paired_runs([1.20, 1.21, 1.19, 1.20, 1.45])
    outliers = pairing.outlier_runs(blocks)
    assert (
        list(outliers.run_id) == ["kl_layer-keras2-r5"]
        and outliers.mads.iloc[0] > pairing.OUTLIER_MADS
    )
    _, calm = paired_runs([1.20, 1.21, 1.19, 1.20, 1.205])
    assert pairing.outlier_runs(calm).empty


def test_median_ci_degenerate_samples_do_not_crash():
    median, low, high = estimators.median_ci([42.0])
    assert median == 42.0 and math.isnan(low) and math.isnan(high)
    assert estimators.median_ci([5.0, 5.0, 5.0]) == (5.0, 5.0, 5.0)
    assert all(math.isnan(value) for value in estimators.median_ci([]))


@pytest.mark.parametrize(
    "ci, expected",
    [
        ((1.35, 1.45), "reproduced"),
        ((1.6, 1.8), "not reproduced"),
        ((0.9, 1.2), "not reproduced"),
        ((1.2, 1.4), "inconclusive"),
        ((math.nan, math.nan), "inconclusive"),
    ],
)
def test_verdict_rule(ci, expected):
    assert claims.verdict(*ci, 1.3, 1.5) == expected


def test_verdict_with_a_claimed_minimum_only():
    assert claims.verdict(1.6, 2.0, 1.3, math.inf) == "reproduced"


@pytest.mark.parametrize(
    "factor, spread, expected",
    [(1.4, 0.01, "reproduced"), (2.0, 0.01, "not reproduced"), (1.45, 0.3, "inconclusive")],
)
def test_claim_verdict_from_constructed_runs(factor, spread, expected):
    runs = runs_frame(
        {
            ("model_add_loss", "keras2"): noisy(44.0, spread=spread, seed=3),
            ("notebook_globals", "keras2"): [
                factor * v for v in noisy(44.0, spread=spread, seed=4)
            ],
        }
    )
    table = claims.claim_table(runs)
    assert len(table) == 1  # only the notebook-globals claim has both recipes
    row = table.iloc[0]
    assert (row.claim.recipe, row.api, row.verdict) == ("notebook_globals", "keras2", expected)


def test_claims_are_evaluated_on_every_api_with_both_recipes():
    samples = {
        (recipe, api): noisy(44.0)
        for recipe in ("kl_layer", "vae_loss_layer")
        for api in ("keras2", "keras3-port")
    }
    table = claims.claim_table(runs_frame(samples))
    assert list(table.api) == ["keras2", "keras3-port"]


def quality_runs(worst_factor: float) -> pd.DataFrame:
    recipes = ("kl_layer", "tensor_transfer", "gradient_tape", "model_add_loss")
    ms = {(recipe, "keras2"): [50.0] * 5 for recipe in (*recipes, "plain_ae")}
    losses = {(recipe, "keras2"): noisy(150.0, n=5, seed=i) for i, recipe in enumerate(recipes)}
    losses[("model_add_loss", "keras2")] = [
        worst_factor * v for v in losses[("model_add_loss", "keras2")]
    ]
    losses[("plain_ae", "keras2")] = noisy(120.0, n=5)  # a different objective: never flagged
    return runs_frame(ms, losses)


def test_quality_flag_fires_for_a_20_percent_higher_loss_only():
    quality = quality_guard.quality_table(quality_runs(1.2)).set_index("recipe")
    assert quality.flagged.to_dict() == {
        "kl_layer": False,
        "tensor_transfer": False,
        "gradient_tape": False,
        "model_add_loss": True,
        "plain_ae": False,
    }


def test_quality_flag_ignores_run_to_run_noise():
    assert not quality_guard.quality_table(quality_runs(1.0)).flagged.any()


def curve(run_id: str, recipe: str, losses: list, seconds: list) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run_id": run_id,
            "recipe": recipe,
            "api": "keras2",
            "epoch": range(1, len(losses) + 1),
            "loss": losses,
            "seconds": seconds,
        }
    )


def test_time_to_level_picks_the_first_epoch_at_or_below_the_level():
    run = curve("r1", "kl_layer", [10.0, 8.0, 6.0, 5.0, 4.5], [5.0, 2.0, 2.0, 2.0, 2.0])
    assert time_to_quality.time_to_level(run, 6.0) == (3.0, 9.0)  # warm-up epoch 1 counts
    assert all(math.isnan(value) for value in time_to_quality.time_to_level(run, 1.0))


def test_time_to_quality_uses_the_worst_final_loss_of_the_api():
    runs = runs_frame(
        {
            ("kl_layer", "keras2"): [50.0],
            ("tensor_transfer", "keras2"): [50.0],
            ("plain_ae", "keras2"): [40.0],
        }
    )
    epochs = pd.concat(
        [
            curve("kl_layer-keras2-r1", "kl_layer", [10.0, 7.0, 5.0, 4.0], [3.0, 1.0, 1.0, 1.0]),
            curve(
                "tensor_transfer-keras2-r1",
                "tensor_transfer",
                [10.0, 8.0, 6.0, 5.0],
                [3.0, 2.0, 2.0, 2.0],
            ),
            curve("plain_ae-keras2-r1", "plain_ae", [3.0, 2.0, 1.0, 0.5], [1.0, 1.0, 1.0, 1.0]),
        ]
    )
    table = time_to_quality.time_to_quality_table(runs, epochs).set_index("recipe")
    assert list(table.index) == ["kl_layer", "tensor_transfer"]  # the floor has another objective
    assert (table.level == 5.0).all()
    assert table.loc["kl_layer", ["epoch", "seconds"]].tolist() == [3.0, 5.0]
    assert table.loc["tensor_transfer", ["epoch", "seconds"]].tolist() == [4.0, 9.0]


def test_repeats_needed_scales_with_the_square_of_the_half_width():
    assert estimators.repeats_needed(0.04, 5) == 20
    assert estimators.repeats_needed(0.01, 5) == 2


def test_compatibility_observed_failure_overrides_registry():
    runs = pd.concat(
        [
            runs_frame({("plain_ae", "keras2"): [40.0], ("kl_layer", "keras3-port"): [50.0]}),
            runs_frame({("tensor_transfer", "keras2"): [math.nan]}, status="failed").assign(
                error="ValueError: boom"
            ),
        ]
    )
    compat = coverage.compatibility(runs).set_index(["recipe", "api"])
    assert compat.loc[("tensor_transfer", "keras2"), ["cell", "error"]].tolist() == [
        "fails",
        "ValueError: boom",
    ]
    assert compat.loc[("kl_layer", "keras3-port"), "cell"] == "port"
    assert compat.loc[("closure_loss", "keras3-port"), ["cell", "observed"]].tolist() == ["n/a", ""]
    assert (
        compat.loc[("closure_loss", "keras2"), "cell"] == "fails"
    )  # the registry's word, not run here


def test_unfinished_runs_lists_problems_and_runs_missing_from_the_matrix():
    runs = pd.concat(
        [
            runs_frame({("plain_ae", "keras2"): [40.0, 41.0], ("kl_layer", "keras2"): [50.0]}),
            runs_frame({("tensor_transfer", "keras2"): [math.nan]}, status="timeout"),
        ]
    )
    planned = [
        PlannedRun(f"{recipe}-{api}-r{repeat}", recipe, api, repeat, repeat)
        for recipe, api in (
            ("plain_ae", "keras2"),
            ("kl_layer", "keras2"),
            ("tensor_transfer", "keras2"),
            ("kl_layer", "keras3-port"),
        )
        for repeat in (1, 2)
    ]
    unfinished = coverage.unfinished_runs(runs, planned)
    assert set(zip(unfinished.recipe, unfinished.api, unfinished.repeat, unfinished.status)) == {
        ("tensor_transfer", "keras2", 1, "timeout"),
        ("tensor_transfer", "keras2", 2, "not run"),
        ("kl_layer", "keras2", 2, "not run"),
        ("kl_layer", "keras3-port", 1, "not run"),
        ("kl_layer", "keras3-port", 2, "not run"),
    }  # plain_ae and tensor_transfer have no port: n/a
    assert (
        coverage.compatibility(runs, planned)
        .set_index(["recipe", "api"])
        .loc[("kl_layer", "keras3-port"), "observed"]
        == "not run"
    )
    without_plan = coverage.unfinished_runs(runs)  # then: only the runs that did not finish ok
    assert set(zip(without_plan.recipe, without_plan.repeat, without_plan.status)) == {
        ("tensor_transfer", 1, "timeout")
    }
