"""Every recipe optimizes the same objective, and each runs or fails where the registry says."""

import math

import numpy as np
import pytest

from vae_impls import registry

LOSS_RTOL = 1e-5
# Per element: |g - g_ref| <= GRADIENT_RTOL * |g_ref| + GRADIENT_ATOL_SHARE * max|g_ref| of that
# weight.
# The absolute share keeps near-zero elements, whose float32 round-off is relatively large,
# from failing; measured differences stay below 4e-6 of a weight's largest element.
GRADIENT_RTOL = 1e-4
GRADIENT_ATOL_SHARE = 1e-5
FORWARD_ATOL = 1e-6
VAE_RECIPES = [name for name, recipe in registry.RECIPES.items() if recipe.includes_kl]
NOTEBOOK_READINGS = ("notebook_globals", "notebook_encoder_call", "notebook_rerun")


def merged(probes, part):
    return {**probes["keras2"][part], **probes["keras3"][part]}


def working_combinations():
    return [
        (recipe, api)
        for recipe in registry.RECIPES
        for api in registry.APIS
        if registry.status(recipe, api) == registry.WORKS
    ]


def gradient_mismatch(gradient, reference) -> dict:
    """Worst element of one weight's gradient: its difference over the tolerance (> 1 fails),
    and the largest absolute (as a share of the weight's largest element) and relative ones."""
    gradient, reference = np.asarray(gradient, np.float64), np.asarray(reference, np.float64)
    difference, scale = np.abs(gradient - reference), np.abs(reference).max()
    tolerance = GRADIENT_RTOL * np.abs(reference) + GRADIENT_ATOL_SHARE * scale
    return {
        "worst_over_tolerance": float((difference / tolerance).max()),
        "max_abs_share": float(difference.max() / scale),
        "max_rel": float(
            (difference / np.maximum(np.abs(reference), np.finfo(np.float64).tiny)).max()
        ),
    }


def vae_steps(probes):
    return {
        combo: step
        for combo, step in merged(probes, "steps").items()
        if registry.get(combo[0]).includes_kl
    }


@pytest.mark.slow
def test_every_working_vae_recipe_is_probed(probes):
    steps = merged(probes, "steps")
    expected = {combo for combo in working_combinations() if registry.get(combo[0]).includes_kl}
    assert expected <= set(steps)
    assert len(expected) >= 10


@pytest.mark.slow
def test_notebook_readings_are_registered_and_probed(probes):
    steps = merged(probes, "steps")
    for recipe in NOTEBOOK_READINGS:
        assert {(recipe, "keras2"), (recipe, "keras3-port")} <= set(steps), recipe


@pytest.mark.slow
def test_sampling_layer_matches_numpy_with_non_zero_noise(probes):
    for api in ("keras2", "keras3"):
        reference = probes[api]["reference"]
        assert np.abs(reference["z"] - reference["mu"]).min() > 1e-3, "the noise must move every z"
        np.testing.assert_allclose(
            reference["layer_z"], reference["z"], rtol=LOSS_RTOL, atol=FORWARD_ATOL
        )


@pytest.mark.slow
def test_every_recipe_exposes_the_shared_mean_encoder_and_decoder(probes):
    """``mean_encoder`` and ``decoder`` feed the harness' pictures: they must be the trained
    network."""
    for (recipe, api), step in merged(probes, "steps").items():
        reference = probes["keras3" if api.startswith("keras3") else "keras2"]["reference"]
        np.testing.assert_allclose(
            step["mu"],
            reference["mu"],
            rtol=LOSS_RTOL,
            atol=FORWARD_ATOL,
            err_msg=f"{recipe} {api}",
        )
        np.testing.assert_allclose(
            step["reconstruction"],
            reference["reconstruction"],
            rtol=LOSS_RTOL,
            atol=FORWARD_ATOL,
            err_msg=f"{recipe} {api}",
        )


@pytest.mark.slow
@pytest.mark.parametrize("term", ["loss", "bce", "kl"])
def test_one_step_losses_match_numpy(probes, term):
    """The reference samples z in numpy with a KL factor other than 1 (``EQUIVALENCE_FACT``)."""
    from tests.recipe_probe import EQUIVALENCE_FACT

    reference = probes["keras2"]["reference"]
    assert EQUIVALENCE_FACT != 1, "with fact = 1 a recipe that drops or squares fact would pass"
    assert reference["kl"] > 1e-5, "the probe's KL term must be large enough to compare"
    for (recipe, api), step in vae_steps(probes).items():
        assert step["metrics"][term] == pytest.approx(reference[term], rel=LOSS_RTOL), (
            recipe,
            api,
            term,
        )


@pytest.mark.slow
def test_no_recipe_computes_a_second_binary_cross_entropy(probes):
    """Equal metric work per step: BCE is the loss itself or derived as loss - kl, not a metric."""
    for (recipe, api), step in merged(probes, "steps").items():
        assert "BinaryCrossentropy" not in step["metric_classes"], (
            recipe,
            api,
            step["metric_classes"],
        )


@pytest.mark.slow
def test_reference_is_the_same_under_both_apis(probes):
    for term in ("loss", "bce", "kl"):
        assert probes["keras3"]["reference"][term] == pytest.approx(
            probes["keras2"]["reference"][term], rel=LOSS_RTOL
        )


@pytest.mark.slow
def test_gradients_agree_across_recipes_and_apis_per_element(probes):
    steps = vae_steps(probes)
    baseline = steps["gradient_tape", "keras2"]["gradients"]
    assert all(np.abs(g).max() > 0 for g in baseline.values())
    for combo, step in steps.items():
        assert set(step["gradients"]) == set(baseline), combo
        for name, gradient in step["gradients"].items():
            mismatch = gradient_mismatch(gradient, baseline[name])
            assert mismatch["worst_over_tolerance"] <= 1, (combo, name, mismatch)


@pytest.mark.slow
@pytest.mark.parametrize("fact", [1.0, "squared"])
def test_a_wrong_kl_factor_fails_the_comparisons(probes, fact):
    """Guards the two tests above: dropping fact or applying it twice must not pass."""
    from tests.recipe_probe import EQUIVALENCE_FACT

    wrong = probes["keras2"]["wrong_fact"][EQUIVALENCE_FACT**2 if fact == "squared" else fact]
    reference = probes["keras2"]["reference"]
    assert wrong["metrics"]["kl"] != pytest.approx(reference["kl"], rel=LOSS_RTOL)
    baseline = probes["keras2"]["steps"]["gradient_tape", "keras2"]["gradients"]
    assert (
        max(
            gradient_mismatch(g, baseline[name])["worst_over_tolerance"]
            for name, g in wrong["gradients"].items()
        )
        > 1
    )


@pytest.mark.slow
def test_kl_changes_the_gradient(probes):
    """Guards the test above: the floor, without KL, must not pass as equivalent."""
    steps = merged(probes, "steps")
    with_kl = steps["gradient_tape", "keras2"]["gradients"]
    floor = steps["plain_ae", "keras2"]["gradients"]
    assert gradient_mismatch(floor["mu/kernel"], with_kl["mu/kernel"])["worst_over_tolerance"] > 1


@pytest.mark.slow
def test_floor_reconstruction_equals_vae_reconstruction_at_zero_noise(probes):
    zero_noise = merged(probes, "zero_noise")
    for api in ("keras2", "keras3"):
        floor = zero_noise["plain_ae", api]
        assert math.isnan(floor["kl"]) and floor["loss"] == pytest.approx(
            floor["bce"], rel=LOSS_RTOL
        )
        for (recipe, recipe_api), metrics in zero_noise.items():
            if registry.get(recipe).includes_kl and recipe_api.startswith(api):
                assert metrics["bce"] == pytest.approx(floor["bce"], rel=LOSS_RTOL), (
                    recipe,
                    recipe_api,
                )
                assert metrics["loss"] > floor["loss"]


@pytest.mark.parametrize(
    "recipe,api",
    [
        (r, a)
        for r in registry.RECIPES
        for a in registry.APIS
        if registry.status(r, a) != registry.NOT_APPLICABLE
    ],
)
@pytest.mark.slow
def test_recipe_trains_or_fails_as_registered(probes, recipe, api):
    outcome = merged(probes, "training")[recipe, api]
    if registry.status(recipe, api) == registry.WORKS:
        assert "error_type" not in outcome, outcome.get("traceback")
        losses = outcome["losses"]
        assert all(math.isfinite(epoch["loss"]) and math.isfinite(epoch["bce"]) for epoch in losses)
        assert losses[-1]["loss"] < losses[0]["loss"]
        assert math.isfinite(losses[-1]["kl"]) == registry.get(recipe).includes_kl
    else:
        assert "error_type" in outcome, f"{recipe} on {api} was expected to fail but trained"
        assert registry.get(recipe).expected_errors[api] in outcome["error_text"]


def test_closure_loss_fails_everywhere_and_class_free_add_loss_fails_on_keras3():
    assert (
        registry.status("closure_loss", "keras2")
        == registry.status("closure_loss", "keras3")
        == registry.FAILS
    )
    for recipe in ("model_add_loss", *NOTEBOOK_READINGS):
        assert registry.status(recipe, "keras3") == registry.FAILS
        assert registry.status(recipe, "keras2") == registry.WORKS


@pytest.mark.slow
def test_network_options_build_and_train(probes):
    variants = {**probes["keras2"]["network_variants"], **probes["keras3"]["network_variants"]}
    assert len(variants) == 12
    for key, outcome in variants.items():
        assert "error_type" not in outcome, (key, outcome.get("traceback"))
        assert all(
            math.isfinite(epoch["loss"]) and math.isfinite(epoch["kl"])
            for epoch in outcome["losses"]
        ), key
