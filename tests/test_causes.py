"""The cause finder: which layers a recipe's traced step runs more often than the floor's."""

import math

from bench.analysis import causes
from bench.report import cause_words

CONV = {"Conv2D": 1, "Conv2DBackpropInput": 1, "Conv2DBackpropFilter": 1}
FLOOR = {
    **{f"encoder_conv_{i}": CONV for i in range(3)},
    **{f"decoder_conv_t_{i}": CONV for i in range(3)},
    "mu": {"MatMul": 3},
    "decoder_dense": {"MatMul": 3},
}
KL = {**FLOOR, "log_var": {"MatMul": 3}}
TWICE = {
    **KL,
    **{f"encoder_conv_{i}": {op: 2 for op in CONV} for i in range(3)},
    "mu": {"MatMul": 6},
    "log_var": {"MatMul": 6},
}


def scopes(**recipes):
    return {"plain_ae": FLOOR, **recipes}


def test_the_encoder_in_the_graph_twice_is_named_with_its_layers_and_cost():
    cause = causes.find("mine", "keras2", scopes(mine=TWICE, gradient_tape=KL), extra_ms=31.4)
    assert cause.encoder_twice and cause.nearest.other == "gradient_tape"
    text = cause_words.cause_text(cause, slower=True)
    assert text == (
        "encoder_conv_0 … encoder_conv_2 and the mu/log_var heads run twice per step: "
        "the encoder is in the graph twice, +31.4 ms/step"
    )
    assert cause_words.nearest_text(cause) == (
        "against gradient_tape, the nearest recipe: +3 Conv2D, +3 Conv2DBackpropInput, "
        "+3 Conv2DBackpropFilter, +6 MatMul"
    )


def test_a_gap_with_the_floors_layer_counts_lies_outside_the_graph():
    cause = causes.find("mine", "keras2", scopes(mine=KL, other=KL), extra_ms=12.0)
    assert not cause.encoder_twice and not cause.repeated_layers
    assert cause_words.cause_text(cause, slower=True) == (
        "no layer runs more often than in the floor: the gap (+12.0 ms/step) lies outside the graph"
    )
    assert (
        cause_words.cause_text(cause, slower=False) == "no layer runs more often than in the floor"
    )
    assert cause_words.nearest_text(cause) == "the same layers and ops as other"


def test_another_repeated_layer_is_named_without_claiming_the_encoder():
    decoder_twice = {**KL, "decoder_dense": {"MatMul": 6}}
    cause = causes.find("mine", "keras3", scopes(mine=decoder_twice), math.nan)
    assert not cause.encoder_twice
    assert cause_words.cause_text(cause, slower=False) == (
        "decoder_dense run twice as often as in the floor"
    )


def test_a_layer_that_runs_a_fraction_more_often_is_said_to_three_figures():
    more_ops = {**KL, "decoder_dense": {"MatMul": 14}, "mu": {"MatMul": 3}}
    floor = {**FLOOR, "decoder_dense": {"MatMul": 11}}
    cause = causes.find("mine", "keras3", {"plain_ae": floor, "mine": more_ops}, math.nan)
    assert cause_words.cause_text(cause, slower=False) == (
        "decoder_dense run 1.27 times as often as in the floor"
    )


def test_no_cause_without_counts_of_the_recipe_or_the_floor():
    assert causes.find("mine", "keras2", {"mine": KL}) is None
    assert causes.find("mine", "keras2", scopes()) is None
    assert causes.find("plain_ae", "keras2", scopes()) is None


def test_nearest_is_the_recipe_whose_counts_differ_least():
    assert causes.nearest(TWICE, {"a": FLOOR, "b": KL, "c": TWICE}) == "c"
    assert causes.nearest(KL, {}) == ""


def reading(low, high):
    from types import SimpleNamespace

    return SimpleNamespace(
        recipe="notebook_encoder_call",
        undone="notebook_globals",
        api="keras2",
        ratio=(low + high) / 2,
        ci_low=low,
        ci_high=high,
        choice="the VAE wired as decoder(encoder(x))",
        method="paired",
        n=5,
    )


def test_a_readings_why_names_the_layers_it_runs_twice_or_says_the_graph_is_the_same():
    import pandas as pd

    from bench.analysis import findings
    from bench.report.why_sections import cause_sentence

    speed = pd.DataFrame(columns=["recipe", "api"])
    layers = {"notebook_encoder_call": TWICE, "notebook_globals": KL}
    slower = findings.explain(reading(1.3, 1.5), speed, layers)
    assert slower.layers.encoder_twice and not slower.same_graph
    sentence = cause_sentence(slower)
    assert (
        "layers running more often: encoder_conv_0 … encoder_conv_2 and the mu/log_var heads x2 "
        "(the encoder is in the graph twice)"
    ) in sentence
    same = {"notebook_encoder_call": KL, "notebook_globals": KL}
    assert "the cost lies outside the graph" in cause_sentence(
        findings.explain(reading(1.3, 1.5), speed, same)
    )
