"""bench.analysis.findings on constructed tables: what the report's sentences state, as data."""

import math
from types import SimpleNamespace

import pandas as pd
import pytest

from bench.analysis import estimators, findings, step_times
from bench.analysis.findings import FASTER, GAP, SAME, SLOWER


def ratio_row(recipe="kl_layer", api="keras2", ratio=1.2, low=1.1, high=1.3, **values):
    return SimpleNamespace(recipe=recipe, api=api, ratio=ratio, ci_low=low, ci_high=high, **values)


def ratios_frame(rows: list) -> pd.DataFrame:
    return pd.DataFrame([vars(row) for row in rows])


def speed_frame(ops: dict) -> pd.DataFrame:
    """A speed_table's op columns: {(recipe, api): graph_ops}; every other op count is 4."""
    return pd.DataFrame(
        [
            {
                "recipe": recipe,
                "api": api,
                **dict.fromkeys(step_times.OP_COLUMNS, 4),
                "graph_ops": total,
            }
            for (recipe, api), total in ops.items()
        ]
    )


# --- gaps across a sweep ------------------------------------------------------------------------


def gap_of(*lows) -> findings.Gap:
    rows = {f"variant-{index}": ratio_row(low=low) for index, low in enumerate(lows)}
    return findings.Gap("kl_layer", "keras2", rows)


def test_a_gap_survives_where_its_ci_lies_above_the_gap_ratio():
    assert gap_of(GAP + 0.01, 1.2).everywhere
    assert gap_of(GAP, 1.0).nowhere  # a CI that only reaches GAP keeps no gap
    mixed = gap_of(1.2, 1.0, math.nan)  # no CI: the gap is not shown to hold
    assert not mixed.everywhere and not mixed.nowhere
    assert mixed.lost_at == ["variant-1", "variant-2"]


def test_gaps_line_up_each_recipe_and_api_across_variants_in_registry_order():
    ratios = ratios_frame(
        [
            ratio_row("vae_loss_layer", low=1.3, variant="off"),
            ratio_row("kl_layer", low=1.1, variant="off"),
            ratio_row("vae_loss_layer", low=1.0, variant="autojit"),
        ]
    )
    first, second = findings.gaps(ratios)
    assert (first.recipe, list(first.rows)) == ("kl_layer", ["off"])
    assert (second.recipe, list(second.rows), second.lost_at) == (
        "vae_loss_layer",
        ["off", "autojit"],
        ["autojit"],
    )


# --- why the notebook is slower -----------------------------------------------------------------


def reading(low: float, high: float, recipe="notebook_globals", undone="model_add_loss"):
    return ratio_row(recipe, low=low, high=high, undone=undone)


SPEED = speed_frame(
    {
        ("notebook_globals", "keras2"): 520,
        ("model_add_loss", "keras2"): 500,
        ("notebook_rerun", "keras2"): 520,
    }
)


def test_a_slower_reading_is_explained_by_the_ops_its_step_adds():
    explanation = findings.explain(reading(1.3, 1.5), SPEED)
    assert explanation.outcome == SLOWER
    assert explanation.extra_ops == {"graph_ops": 20}  # equal op counts are left out
    assert not explanation.same_graph


def test_a_reading_with_the_same_graph_and_one_without_a_variant_have_no_extra_ops():
    same = findings.explain(reading(1.3, 1.5, "notebook_rerun", "notebook_globals"), SPEED)
    assert same.outcome == SLOWER and same.same_graph
    missing = findings.explain(reading(1.3, 1.5, undone="notebook_numpy_fit"), SPEED)
    assert missing.extra_ops == {}
    assert findings.op_difference(SPEED, "notebook_globals", "notebook_numpy_fit", "keras2") == {}


def test_a_readings_outcome_is_the_side_of_1_its_ci_lies_on():
    assert findings.explain(reading(0.8, 0.9), SPEED).outcome == FASTER
    assert findings.explain(reading(0.9, 1.1), SPEED).outcome == SAME
    assert findings.explain(reading(math.nan, math.nan), SPEED).outcome == SAME


def test_the_readings_are_compared_with_the_class_and_the_floor_of_each_api():
    readings = pd.DataFrame({"api": ["keras2", "keras2", "keras3"]})
    assert findings.op_baselines(readings) == [
        ("model_add_loss", "keras2"),
        ("plain_ae", "keras2"),
        ("model_add_loss", "keras3"),
        ("plain_ae", "keras3"),
    ]


# --- the fastest KL recipe ----------------------------------------------------------------------


def test_the_fastest_recipe_names_every_recipe_whose_ci_overlaps_its_own():
    speed = speed_frame({("kl_layer", "keras2"): 500, ("plain_ae", "keras2"): 500})
    speed = pd.concat([speed, speed_frame({("kl_layer", "keras3-port"): 500})])
    ratios = ratios_frame(
        [
            ratio_row("vae_loss_layer", ratio=1.5, low=1.4, high=1.6),
            ratio_row("model_add_loss", ratio=1.15, low=1.12, high=1.2),
            ratio_row("kl_layer", ratio=1.1, low=1.05, high=1.13),
            ratio_row("kl_layer", "keras3-port", ratio=math.nan, low=math.nan, high=math.nan),
        ]
    )
    keras2, port = findings.fastest_per_api(speed, ratios)
    assert list(keras2.tied.recipe) == ["kl_layer", "model_add_loss"]
    assert keras2.floor_speed.recipe == "plain_ae"
    assert port.api == "keras3-port" and port.tied.empty
    assert port.floor_speed is None  # the port's floor is Keras 3's plain_ae: it did not run


def keras2_fastest(rows: list) -> findings.Fastest:
    speed = speed_frame({("plain_ae", "keras2"): 500})
    (found,) = findings.fastest_per_api(speed, ratios_frame(rows))
    return found


def test_the_slowest_recipe_is_named_where_its_interval_stands_apart():
    found = keras2_fastest(
        [
            ratio_row("vae_loss_layer", ratio=1.5, low=1.45, high=1.55),
            ratio_row("kl_layer", ratio=1.01, low=0.99, high=1.03),
        ]
    )
    assert list(found.fastest.named.recipe) == ["kl_layer"]
    assert list(found.slowest.named.recipe) == ["vae_loss_layer"]


def test_an_overlap_with_a_wide_interval_is_not_a_tie():
    # vae_loss_layer's interval is ±20%: it overlaps kl_layer's and tells them apart from nothing
    found = keras2_fastest(
        [
            ratio_row("kl_layer", ratio=1.0, low=0.99, high=1.01),
            ratio_row("vae_loss_layer", ratio=1.28, low=1.0, high=1.6),
        ]
    )
    assert found.fastest.named.empty and found.slowest.named.empty
    assert list(found.fastest.unresolved.recipe) == ["kl_layer", "vae_loss_layer"]
    assert found.fastest.leader.recipe == "kl_layer"
    assert not found.one_process


def test_a_ratio_without_an_interval_is_told_from_nothing():
    found = keras2_fastest(
        [
            ratio_row("kl_layer", ratio=1.0, low=0.99, high=1.01),
            ratio_row("model_add_loss", ratio=0.71, low=math.nan, high=math.nan),
        ]
    )
    # the lowest ratio has no CI: nothing is named fastest; kl_layer's CI leaves it slowest of none
    assert found.fastest.named.empty
    assert list(found.fastest.unresolved.recipe) == ["model_add_loss"]
    assert found.slowest.named.empty


def test_one_process_per_recipe_decides_nothing():
    found = keras2_fastest(
        [
            ratio_row("kl_layer", ratio=0.71, low=math.nan, high=math.nan),
            ratio_row("model_add_loss", ratio=1.0, low=math.nan, high=math.nan),
        ]
    )
    assert found.one_process
    assert found.fastest.named.empty and found.slowest.named.empty


# --- precision of the ratios --------------------------------------------------------------------


def half_widths(*values) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "recipe": [f"recipe-{index}" for index in range(len(values))],
            "n": 3,
            "half_width": values,
        }
    )


def test_precision_is_the_widest_and_the_median_half_width_and_what_the_target_takes():
    precision = findings.precision(half_widths(0.10, 0.04, 0.03), round_seconds=20.0)
    assert (precision.widest.half_width, precision.median.half_width) == (0.10, 0.04)
    assert not precision.within_target
    assert precision.runs_needed == estimators.repeats_needed(0.04, 3)
    more_rounds = precision.runs_needed - 3  # the median pair has 3 runs already
    assert precision.hours_needed == pytest.approx(20 * more_rounds / 3600)


def test_precision_within_target_needs_no_runs_and_without_a_ci_there_is_none():
    precision = findings.precision(half_widths(0.03, 0.02, 0.01))
    assert precision.within_target and precision.runs_needed == 0
    assert findings.precision(half_widths(math.nan)) is None


# --- time to quality ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "training, long_enough",
    [
        ({"steps_per_epoch": 0, "epochs": findings.MIN_PASSES_FOR_QUALITY}, True),
        ({"steps_per_epoch": 0, "epochs": findings.MIN_PASSES_FOR_QUALITY - 1}, False),
        ({"steps_per_epoch": 5, "epochs": 30}, False),
        ({}, False),
    ],
)
def test_time_to_quality_needs_enough_full_passes_over_the_data(training, long_enough):
    assert findings.trains_long_enough({"config": {"training": training}}) is long_enough
    assert not findings.trains_long_enough({})
