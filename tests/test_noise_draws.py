"""A Keras 3 run records how many times its sampling layer drew noise per train step, and the
quality guard reads it: a recipe whose step draws twice is said to draw noise differently and is
not compared; the others are."""

import pytest

from bench.analysis import quality_guard
from bench.recipes import EXTRA_RECIPES_ENV
from bench.results.folder import ResultsFolder
from bench.results.records import OK
from tests.builders import only_folder, run_bench, tiny_config
from tests.noise_recipes import ENCODER_DRAWN_TWICE


@pytest.mark.slow
def test_a_keras3_run_records_its_sampling_layers_draws_per_train_step(tmp_path):
    names = ["plain_ae", "kl_layer", "notebook_encoder_call", ENCODER_DRAWN_TWICE]
    config = tiny_config(tmp_path, names, apis=("keras3", "keras3-port"))
    done = run_bench(
        "--config",
        config,
        "--results-dir",
        tmp_path / "results",
        env={EXTRA_RECIPES_ENV: "tests.noise_recipes"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = ResultsFolder(only_folder(tmp_path / "results")).read().runs
    ok = runs[runs.status == OK].set_index(["recipe", "api"])
    draws = ok.noise_draws.to_dict()
    assert draws["kl_layer", "keras3-port"] == 1.0, draws
    # notebook_encoder_call's second encoder pass stops at mu and log_var: one draw per step
    assert draws["notebook_encoder_call", "keras3-port"] == 1.0, draws
    assert draws[ENCODER_DRAWN_TWICE, "keras3"] == 2.0, draws  # the whole encoder twice
    assert ok.noise_draws.isna()["plain_ae", "keras3"]  # no sampling layer: nothing counted
    checks = quality_guard.round_checks(runs).set_index("recipe")
    assert checks.check[ENCODER_DRAWN_TWICE] == quality_guard.OTHER_NOISE
    assert checks.noise_basis[ENCODER_DRAWN_TWICE] == quality_guard.DRAWS_COUNTED
    assert set(checks.check[["kl_layer", "notebook_encoder_call"]]) == {quality_guard.SAME_LOSS}
