"""The quality guard compares like with like: a KL run's final loss against the other KL
recipes' of its round, on its Keras and backend, naming a run only against others that agree."""

import pytest

from bench.analysis import quality_guard
from bench.analysis.quality_guard import (
    ALONE,
    DRAWS_COUNTED,
    NOISE_FROM_ENCODER_TWICE,
    OTHER_NOISE,
    OUTLIER,
    SAME_LOSS,
    UNDECIDED,
)
from bench.report import quality_sections
from bench.results.folder import runs_frame
from bench.results.records import scopes_text
from tests.builders import record

# A step's layer counts: the floor's encoder once, an encoder-twice recipe's twice.
ENCODER_ONCE = {f"encoder_conv_{i}": {"Conv2D": 1} for i in range(3)} | {"mu": {"MatMul": 1}}
ENCODER_TWICE_COUNTS = {layer: {op: 2 for op in ops} for layer, ops in ENCODER_ONCE.items()}


def runs_of(rows: list):
    """A runs frame of (recipe, api, round, final loss, extra fields) rows."""
    return runs_frame(
        [
            record(recipe, api, repeat, ms_per_step=50.0, final_loss=loss, **values)
            for recipe, api, repeat, loss, values in rows
        ]
    )


def checks_of(rows: list) -> dict:
    checks = quality_guard.round_checks(runs_of(rows))
    return {(row.recipe, row.repeat): row.check for row in checks.itertuples()}


def sentences(rows: list) -> str:
    return quality_sections.same_loss_sentences(quality_guard.round_checks(runs_of(rows)))


def test_a_recipe_whose_sampling_layer_drew_twice_draws_noise_differently_and_no_other_is_named():
    port = "keras3-port"
    rows = [
        (name, port, 1, 0.683743, {"noise_draws": 1.0})
        for name in ("kl_layer", "model_add_loss", "notebook_rerun")
    ] + [("notebook_encoder_call", port, 1, 0.683771, {"noise_draws": 2.0})]
    checks = quality_guard.round_checks(runs_of(rows))
    assert dict(zip(checks.recipe, checks.check)) == {
        "kl_layer": SAME_LOSS,
        "model_add_loss": SAME_LOSS,
        "notebook_rerun": SAME_LOSS,
        "notebook_encoder_call": OTHER_NOISE,
    }
    assert set(checks.noise_basis[checks.check == OTHER_NOISE]) == {DRAWS_COUNTED}
    assert quality_guard.unmatched_losses(runs_of(rows)).empty  # the gate fails no one
    text = sentences(rows)
    assert (
        "notebook_encoder_call (keras3-port, round 1) draws its noise differently: its sampling "
        "layer drew 2 times per train step against 1 for its round's other KL recipes (counted "
        "during fit)"
    ) in text
    assert "trains something else" not in text and "kl_layer" not in text
    assert "Within a round, every other KL run's final loss equals another recipe's" in text


def test_without_counted_draws_an_encoder_run_twice_is_inferred_from_the_op_counts():
    once, twice = scopes_text(ENCODER_ONCE), scopes_text(ENCODER_TWICE_COUNTS)
    rows = [("plain_ae", "keras2", 1, 0.6801, {"op_scopes": once})] + [
        (name, "keras2", 1, 0.6838, {"op_scopes": once}) for name in ("kl_layer", "gradient_tape")
    ]
    differing = [*rows, ("notebook_encoder_call", "keras2", 1, 0.6842, {"op_scopes": twice})]
    checks = quality_guard.round_checks(runs_of(differing))
    encoder = checks[checks.recipe == "notebook_encoder_call"].iloc[0]
    assert (encoder.check, encoder.noise_basis) == (OTHER_NOISE, NOISE_FROM_ENCODER_TWICE)
    assert "its encoder runs twice per train step (read from its op counts" in sentences(differing)
    # the same recipe whose loss equals the others' is compared like any other: an inference
    # only excuses a loss that matches none
    matching = [*rows, ("notebook_encoder_call", "keras2", 1, 0.6838, {"op_scopes": twice})]
    assert set(checks_of(matching).values()) == {SAME_LOSS}


def test_one_against_one_names_neither_recipe_as_training_something_else():
    rows = [
        ("kl_layer", "keras2", 1, 0.6838, {}),
        ("gradient_tape", "keras2", 1, 0.6840, {}),
        ("plain_ae", "keras2", 1, 0.6801, {}),  # the floor is never judged
    ]
    assert checks_of(rows) == {("kl_layer", 1): UNDECIDED, ("gradient_tape", 1): UNDECIDED}
    assert quality_guard.unmatched_losses(runs_of(rows)).empty
    text = sentences(rows)
    assert text == (
        " In round 1 (keras2), kl_layer 0.683800 and gradient_tape 0.684000 end at different "
        "losses (to 1e-05) and no two KL recipes agree: the guard cannot tell which trains "
        "something else."
    )


def test_a_single_kl_recipe_is_said_to_be_compared_with_none():
    rows = [("kl_layer", "keras2", 1, 0.6838, {}), ("plain_ae", "keras2", 1, 0.6801, {})]
    assert checks_of(rows) == {("kl_layer", 1): ALONE}
    assert sentences(rows) == (
        " The guard compared the final loss of kl_layer (keras2, round 1) with none: it is the "
        "only KL recipe of its round on that Keras and backend."
    )
    # one left once the other draws noise differently: said so
    drew = [
        ("kl_layer", "keras3-port", 1, 0.6838, {"noise_draws": 1.0}),
        ("notebook_encoder_call", "keras3-port", 1, 0.6842, {"noise_draws": 2.0}),
    ]
    assert checks_of(drew) == {("kl_layer", 1): ALONE, ("notebook_encoder_call", 1): OTHER_NOISE}
    assert (
        "The guard compared the final loss of kl_layer (keras3-port, round 1) with none: no other "
        "KL recipe of its round on that Keras and backend draws noise as it does."
    ) in sentences(drew)


def test_a_loss_outside_two_or_more_agreeing_recipes_is_named_with_its_round_as_an_integer():
    losses = {
        "kl_layer": (0.6838, 0.6825),
        "model_add_loss": (0.6838, 0.6825),
        "notebook_numpy_fit": (0.6837, 0.6824),  # other batches, the same as notebook_kernel's
        "notebook_kernel": (0.6837, 0.6824),
        "gradient_tape": (0.6838, 0.6826),
    }
    rows = [
        (recipe, "keras2", repeat, loss, {})
        for recipe, pair in losses.items()
        for repeat, loss in zip((1, 2), pair)
    ]
    unmatched = quality_guard.unmatched_losses(runs_of(rows))
    assert list(zip(unmatched.recipe, unmatched.repeat)) == [("gradient_tape", 2)]
    assert set(checks_of(rows).values()) == {SAME_LOSS, OUTLIER}
    assert unmatched.closest.iloc[0] == pytest.approx(0.6825)
    text = sentences(rows)
    assert (
        " In its round, the final loss of gradient_tape (keras2, round 2: 0.682600, while 2 others "
        "agree at 0.682500) equals no other KL recipe's to 1e-05: it trains something else."
    ) in text
    assert "round 2.0" not in text


def test_ports_are_compared_with_the_as_written_runs_of_their_backend_and_no_other_keras():
    rows = [
        ("gradient_tape", "keras3", 1, 0.6838, {}),
        ("kl_layer", "keras3-port", 1, 0.6838, {}),
        ("kl_layer", "keras2", 1, 0.6901, {}),  # other noise and seeds: never compared
    ]
    checks = quality_guard.round_checks(runs_of(rows))
    assert dict(zip(zip(checks.recipe, checks.api), checks.check)) == {
        ("gradient_tape", "keras3"): SAME_LOSS,
        ("kl_layer", "keras3-port"): SAME_LOSS,
        ("kl_layer", "keras2"): ALONE,
    }


def test_the_noise_band_names_a_recipe_only_against_two_others_that_agree():
    def band(losses: dict):
        rows = [
            (recipe, "keras2", repeat, loss, {})
            for recipe, values in losses.items()
            for repeat, loss in enumerate(values, start=1)
        ]
        return quality_guard.quality_table(runs_of(rows)).set_index("recipe")

    one_against_one = band({"kl_layer": [150.0, 151.0], "gradient_tape": [180.0, 181.0]})
    assert not one_against_one.flagged.any() and one_against_one.beyond_noise.all()
    text = quality_sections.band_sentence(one_against_one.reset_index())
    assert "the guard cannot tell which trains something else" in text
    three = band(
        {"kl_layer": [150.0, 151.0], "model_add_loss": [150.5, 150.0], "gradient_tape": [180.0]}
    )
    assert three.flagged.to_dict() == {
        "kl_layer": False,
        "model_add_loss": False,
        "gradient_tape": True,
    }
    alone = band({"kl_layer": [150.0]})
    assert alone.compared.to_dict() == {"kl_layer": 0}
    assert quality_sections.band_sentence(alone.reset_index()) == (
        "Quality guard: kl_layer (keras2) is the only KL recipe of its API: the guard compared "
        "its final loss with none."
    )
