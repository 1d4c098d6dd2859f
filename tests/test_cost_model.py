"""The cost model: which count a recipe's gap to the floor is made of, on synthetic frames, on the
committed references (the H100's, the CPU's, the launch-bound CPU run's) and on a real tiny run
of the launch-bound config."""

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from bench.analysis import cost_model
from bench.report import costs, render
from bench.results.folder import runs_frame
from tests.builders import ROOT, folder_of_records, only_folder, record, run_bench
from vae_impls import keras_api, registry

FLOOR_API, PORT = "keras3-torch", "keras3-torch-port"
FLOOR_MS = 6.6
RATIO_COLUMNS = ["recipe", "api", "compared_with", "compared_api", "ratio", "ci_low", "ci_high"]
# recipe -> (extra operators, extra convolutions) over a floor of 227 and 12, as on PyTorch.
STEPS = {
    "kl_layer": (70, 0),
    "model_add_loss": (70, 0),
    "gradient_tape": (60, 0),
    "tensor_transfer": (108, 0),
    "notebook_encoder_call": (149, 6),
    "vae_loss_layer": (163, 6),
}


def frames(gap_ms, half_width=0.01, steps=STEPS, counted=True):
    """(runs, ratios) of a PyTorch floor and its ports whose gaps are ``gap_ms(ops, convs)``."""
    counts = {"graph_ops": 227, "ops_convolutions": 12} if counted else {}
    rows = [_row(registry.FLOOR, FLOOR_API, FLOOR_MS, _counts(counts, 0, 0))]
    ratios = []
    for recipe, (ops, convs) in steps.items():
        ratio = 1 + gap_ms(ops, convs) / FLOOR_MS
        rows.append(_row(recipe, PORT, FLOOR_MS * ratio, _counts(counts, ops, convs)))
        low, high = (ratio - half_width, ratio + half_width) if half_width else (math.nan,) * 2
        ratios.append([recipe, PORT, registry.FLOOR, FLOOR_API, ratio, low, high])
    return runs_frame(rows), pd.DataFrame(ratios, columns=RATIO_COLUMNS)


def _row(recipe: str, api: str, ms_per_step: float, counts: dict):
    return dataclasses.replace(record(recipe, api, ms_per_step=ms_per_step), **counts)


def _counts(counts: dict, ops: int, convs: int) -> dict:
    if not counts:
        return {"graph_ops": None}
    return {
        "graph_ops": counts["graph_ops"] + ops,
        "ops_convolutions": counts["ops_convolutions"] + convs,
    }


def by_recipe(model) -> dict:
    return {record.recipe: record for record in model.recipes}


# --- the fit ----------------------------------------------------------------------------------


def test_a_line_through_the_floor_recovers_the_per_unit_cost():
    fit = cost_model.fit_count("graph_ops", [70, 60, 108, 149], [1.75, 1.5, 2.7, 3.725])
    assert fit.unit_ms == pytest.approx(0.025)
    assert fit.r_squared == pytest.approx(1.0)
    assert fit.unit_ms_low == pytest.approx(0.025) and fit.explains


def test_a_count_no_recipe_adds_cannot_be_fitted():
    assert cost_model.fit_count("ops_convolutions", [0, 0, 0], [1.0, 2.0, 3.0]) is None


def test_misses_within_the_gaps_noise_explain_despite_a_low_r_squared():
    """Gaps near the noise (JAX on the H100): the line misses each by less than its error."""
    units, gaps = [0, 0, 0, 0, 8, 8], [0.08, -0.05, 0.06, 0.1, 0.29, 0.17]
    fit = cost_model.fit_count("ops_convolutions", units, gaps, [0.08] * 6)
    assert fit.r_squared < cost_model.EXPLAINS_R2
    assert fit.within_noise and fit.explains
    tight = cost_model.fit_count("ops_convolutions", units, gaps, [0.001] * 6)
    assert not tight.within_noise and not tight.explains


def test_a_prediction_agrees_inside_the_gaps_ci_within_2x_or_within_5_percent_of_the_floor():
    assert cost_model.agrees(1.0, 0.8, 1.2, 1.1, FLOOR_MS)  # inside the CI
    assert cost_model.agrees(0.85, 0.8, 0.9, 1.4, FLOOR_MS)  # within 2x
    assert cost_model.agrees(0.2, math.nan, math.nan, 0.0, FLOOR_MS)  # 0.2 < 5% of 6.6
    assert not cost_model.agrees(3.0, 2.9, 3.1, 1.0, FLOOR_MS)  # 3x off
    assert not cost_model.agrees(2.0, 1.9, 2.1, 0.0, FLOOR_MS)  # a gap the count does not see


# --- the regimes on synthetic frames ----------------------------------------------------------


def test_operators_explain_a_launch_bound_step():
    rng = np.random.default_rng(0)
    model = cost_model.model_of(
        *frames(lambda ops, convs: 0.025 * ops * rng.normal(1, 0.03)), FLOOR_API
    )
    assert model.regime == cost_model.LAUNCH_BOUND and model.best.count == "graph_ops"
    assert model.best.unit_ms_low < 0.025 < model.best.unit_ms_high
    assert model.floor_units == {"graph_ops": 227, "ops_convolutions": 12}
    records = by_recipe(model)
    assert (
        records["kl_layer"].units == 70 and records["kl_layer"].extra_units["ops_convolutions"] == 0
    )
    assert {record.regime for record in model.recipes} == {cost_model.LAUNCH_BOUND}
    convolutions = next(fit for fit in model.fits if fit.count == "ops_convolutions")
    assert not convolutions.explains


def test_convolutions_explain_an_arithmetic_bound_step():
    model = cost_model.model_of(*frames(lambda ops, convs: 15.0 * convs + 0.1), FLOOR_API)
    assert model.regime == cost_model.ARITHMETIC_BOUND and model.best.count == "ops_convolutions"
    records = by_recipe(model)
    assert records["notebook_encoder_call"].units == 6
    assert records["notebook_encoder_call"].regime == cost_model.ARITHMETIC_BOUND
    assert records["kl_layer"].units == 0  # no convolution more: its gap is noise
    assert records["kl_layer"].regime == cost_model.ARITHMETIC_BOUND


def test_a_later_rounds_run_timed_only_and_not_counted_keeps_its_first_runs_counts():
    runs, ratios = frames(lambda ops, convs: 15.0 * convs + 0.1)
    later = runs[runs.recipe != registry.FLOOR].assign(
        repeat=2, timed_only=True, graph_ops=math.nan, ops_convolutions=math.nan
    )
    model = cost_model.model_of(pd.concat([runs, later], ignore_index=True), ratios, FLOOR_API)
    assert model.regime == cost_model.ARITHMETIC_BOUND and model.best.count == "ops_convolutions"
    extra = by_recipe(model)["vae_loss_layer"].extra_units
    assert extra == {"graph_ops": 163, "ops_convolutions": 6}


def test_gaps_no_count_follows_are_unexplained():
    gaps = {"kl_layer": 3.0, "model_add_loss": 0.1, "gradient_tape": 2.5, "tensor_transfer": 0.0}
    steps = {recipe: STEPS[recipe] for recipe in gaps}
    lookup = {step: gaps[recipe] for recipe, step in steps.items() if step != (70, 0)}
    rows = iter([3.0, 0.1])  # the two recipes of 70 operators, in order

    def gap(ops, convs):
        return lookup.get((ops, convs)) if (ops, convs) in lookup else next(rows)

    model = cost_model.model_of(*frames(gap, steps=steps), FLOOR_API)
    assert model.best is None and model.regime == cost_model.UNEXPLAINED
    records = by_recipe(model)
    assert records["kl_layer"].regime == cost_model.UNEXPLAINED
    assert records["tensor_transfer"].regime == cost_model.NO_GAP


def test_a_backend_without_counts_is_not_counted():
    model = cost_model.model_of(*frames(lambda ops, convs: 1.0, counted=False), FLOOR_API)
    assert model.fits == () and model.regime == cost_model.NOT_COUNTED
    assert {record.regime for record in model.recipes} == {cost_model.NOT_COUNTED}


def test_no_floor_no_model():
    runs, ratios = frames(lambda ops, convs: 1.0)
    assert cost_model.model_of(runs[runs.recipe != registry.FLOOR], ratios, FLOOR_API) is None


def test_a_folder_is_read_for_its_first_variant_only(tmp_path):
    """A sweep's variants have settings of their own: never pooled into one fit."""
    runs, ratios = frames(lambda ops, convs: 0.025 * ops)
    other_runs, other_ratios = frames(lambda ops, convs: 15.0 * convs)
    rows = [
        *(dataclasses.replace(row, variant="small") for row in _records(runs)),
        *(
            dataclasses.replace(row, variant="large", run_id=f"{row.run_id}-large")
            for row in _records(other_runs)
        ),
    ]
    folder = folder_of_records(tmp_path, "sweep", rows)
    both = pd.concat([ratios.assign(variant="small"), other_ratios.assign(variant="large")])
    folder.write_ratios(both.assign(host=""))
    (model,) = cost_model.read_costs(folder.path)
    assert model.regime == cost_model.LAUNCH_BOUND and len(model.recipes) == len(STEPS)
    pairs = cost_model.records_by_pair([model])
    assert pairs[("kl_layer", PORT)].units == 70


def _records(runs: pd.DataFrame) -> list:
    """The frame's rows back as records (the builder's defaults, the frame's counts)."""
    return [
        _row(row.recipe, row.api, row.ms_per_step, _frame_counts(row)) for row in runs.itertuples()
    ]


def _frame_counts(row) -> dict:
    return {"graph_ops": int(row.graph_ops), "ops_convolutions": int(row.ops_convolutions)}


# --- the words --------------------------------------------------------------------------------


def test_each_regime_is_worded_with_its_units_and_their_cost():
    launch = cost_model.model_of(*frames(lambda ops, convs: 0.025 * ops), FLOOR_API)
    text = costs.why_phrase(by_recipe(launch)["kl_layer"])
    assert text.startswith("+70 operators per step at ~25.0 µs each (R² 1.00)")
    assert "launching operators" in text
    arithmetic = cost_model.model_of(*frames(lambda ops, convs: 15.0 * convs), FLOOR_API)
    records = by_recipe(arithmetic)
    assert costs.why_phrase(records["vae_loss_layer"]).startswith(
        "+6 convolutions per step at ~15.0 ms each"
    )
    assert costs.why_phrase(records["kl_layer"]).startswith("no convolution more than the floor")
    bare = cost_model.model_of(*frames(lambda ops, convs: 1.0, counted=False), FLOOR_API)
    assert "no per-step counts" in costs.why_phrase(bare.recipes[0])


def test_a_gap_its_counts_do_not_predict_says_what_they_would_cost():
    torch = models_of("reference-launch-bound")["keras3-torch"]
    tape = by_recipe(torch)["gradient_tape"]
    assert tape.regime == cost_model.UNEXPLAINED  # its operators cost < half the fit's each
    text = costs.why_phrase(tape)
    assert "that no count explains: its +61 operators at ~" in text
    assert f"would cost {tape.predicted_ms:+.1f} ms/step" in text


def test_the_section_shows_each_fit_and_each_recipe():
    model = cost_model.model_of(*frames(lambda ops, convs: 0.025 * ops), FLOOR_API)
    markdown = render.markdown(costs.cost_blocks([model]))
    assert f"## {costs.TITLE}" in markdown
    assert "operators explain the recipes' gaps, at ~25.0 µs each" in markdown
    assert "| kl_layer | Keras 3 PyTorch port |" in markdown
    assert "+70 operators, +0 convolutions" in markdown
    assert "no op counts" not in markdown


# --- the committed references -----------------------------------------------------------------


def models_of(folder: str) -> dict:
    return {model.floor_api: model for model in cost_model.read_costs(ROOT / "docs" / folder)}


def test_pytorch_on_the_h100_is_launch_bound_at_about_25_us_an_operator():
    models = models_of("reference-gpu")
    torch = models["keras3-torch"]
    assert torch.regime == cost_model.LAUNCH_BOUND and torch.best.r_squared > 0.9
    assert 0.020 < torch.best.unit_ms_low < torch.best.unit_ms < torch.best.unit_ms_high < 0.027
    records = by_recipe(torch)
    assert torch.floor_units["graph_ops"] == 227 and records["kl_layer"].units == 70
    slower = [record for record in torch.recipes if record.ratio_low > 1.05]
    assert len(slower) == len(torch.recipes)
    assert {record.regime for record in slower} == {cost_model.LAUNCH_BOUND}


def test_every_h100_cell_above_1_05x_gets_a_cause_from_counts():
    explained = {cost_model.LAUNCH_BOUND, cost_model.ARITHMETIC_BOUND}
    for model in models_of("reference-gpu").values():
        for found in model.recipes:
            if found.ratio > 1.05:
                assert found.regime in explained, (found.recipe, found.api, found.regime)


def test_jax_on_the_h100_pays_for_convolutions_only():
    jax = models_of("reference-gpu")["keras3-jax"]
    assert jax.regime == cost_model.ARITHMETIC_BOUND
    assert "graph_ops" not in jax.floor_units  # StableHLO before fusion: not what runs
    records = by_recipe(jax)
    assert records["notebook_encoder_call"].units == 8
    assert records["notebook_encoder_call"].regime == cost_model.ARITHMETIC_BOUND
    assert records["kl_layer"].units == 0


def test_every_counted_backend_of_the_cpu_reference_is_arithmetic_bound():
    models = models_of("reference")
    for group in ("keras2", "keras3", "keras3-jax", "keras3-torch"):
        assert models[group].best.count == "ops_convolutions", group
        twice = by_recipe(models[group])["notebook_encoder_call"]
        assert twice.regime == cost_model.ARITHMETIC_BOUND and twice.units > 0


def test_the_launch_bound_cpu_run_names_operators_for_pytorchs_kl_cost():
    """docs/reference-launch-bound: the launch_bound config on a 2-core CPU (docs/cost-model.md)."""
    torch = models_of("reference-launch-bound")["keras3-torch"]
    assert torch.regime == cost_model.LAUNCH_BOUND and torch.best.count == "graph_ops"
    kl = by_recipe(torch)["kl_layer"]
    assert kl.ratio >= 1.1 and kl.ratio_low > 1
    assert kl.regime == cost_model.LAUNCH_BOUND and kl.units > 0


# --- a real run -------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not keras_api.installed(FLOOR_API), reason="PyTorch is the extra '.[torch]'")
def test_a_tiny_launch_bound_run_feeds_the_cost_model_its_counts(tmp_path):
    """One round of the launch_bound config: every port's counts over the floor's reach the
    model (what its timings make of them is the committed run's test, not a unit test's)."""
    names = [registry.FLOOR, "kl_layer", "tensor_transfer"]
    done = run_bench(
        "--config", "launch_bound", "--recipes", *names, "--repeats", "1",
        "--results-dir", tmp_path / "results",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (model,) = cost_model.read_costs(only_folder(tmp_path / "results"))
    assert model.floor_api == FLOOR_API and model.floor_units["graph_ops"] > 0
    records = by_recipe(model)
    assert set(records) == {"kl_layer", "tensor_transfer"}
    for found in records.values():
        assert found.extra_units["graph_ops"] > 0 and found.extra_units["ops_convolutions"] == 0
    assert (
        records["tensor_transfer"].extra_units["graph_ops"]
        > records["kl_layer"].extra_units["graph_ops"]
    )
    assert {fit.count for fit in model.fits} == {"graph_ops"}  # no recipe adds a convolution


def test_jax_is_fitted_on_what_xla_runs_after_fusion_not_on_its_traced_ops():
    runs = pd.DataFrame(
        {
            "graph_ops": [900.0, 1000.0],
            "compiled_ops": [120.0, 125.0],
            "ops_convolutions": [18.0, 18.0],
        }
    )
    jax = cost_model.counts_of(runs, "jax")
    assert jax == {"compiled_ops": 122.5, "ops_convolutions": 18.0}
    assert cost_model.COUNTS["compiled_ops"] == cost_model.LAUNCH_BOUND
    torch = cost_model.counts_of(runs.assign(compiled_ops=math.nan), "torch")
    assert torch == {"graph_ops": 950.0, "ops_convolutions": 18.0}  # not counted: left out
