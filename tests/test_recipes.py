"""Every recipe optimizes the same objective on every installed backend, and each runs or fails
where the registry says."""

import math
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from tests.builders import ROOT
from tests.recipe_probe import (
    GROUPS,
    LEAN_GROUPS,
    VARIANT_RECIPES,
    apis_of,
    installed_groups,
    variants_of,
)
from vae_impls import keras_api, registry

LOSS_RTOL = 1e-5
# Per element: |g - g_ref| <= GRADIENT_RTOL * |g_ref| + GRADIENT_ATOL_SHARE * max|g_ref| of that
# weight.
# The absolute share keeps near-zero elements, whose float32 round-off is relatively large,
# from failing; measured differences stay below 4e-6 of a weight's largest element. The same
# float32 tolerances hold for every backend (JAX and PyTorch differences measured within 10% of
# them), once the probe's images keep LeakyReLU off its kink (``recipe_probe.images``).
GRADIENT_RTOL = 1e-4
GRADIENT_ATOL_SHARE = 1e-5
FORWARD_ATOL = 1e-6
VAE_RECIPES = [name for name, recipe in registry.RECIPES.items() if recipe.includes_kl]
NOTEBOOK_READINGS = ("notebook_globals", "notebook_encoder_call", "notebook_rerun")
INSTALLED_GROUPS = installed_groups()
INSTALLED_LEAN_GROUPS = tuple(group for group in INSTALLED_GROUPS if group in LEAN_GROUPS)
INSTALLED_APIS = tuple(api for group in INSTALLED_GROUPS for api in apis_of(group))
WRITTEN_KERAS3_APIS = tuple(
    api
    for api in registry.APIS
    if keras_api.package_for(api) == "keras" and not keras_api.is_port(api)
)
PROBE_TIMEOUT_S = 900


def _tensorflow_blocker(folder):
    """A folder whose ``tensorflow`` package refuses to import: first on a probe's PYTHONPATH, it
    proves that the probe never imports TensorFlow."""
    package = folder / "tensorflow"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        'raise ImportError("TensorFlow is blocked: this process must not import it")\n'
    )
    return folder


def _start_probe(group, out_path, blocker):
    path = [str(ROOT)] if group not in LEAN_GROUPS else [str(blocker), str(ROOT)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "recipe_probe.py"), group, str(out_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(scope="session")
def probes(tmp_path_factory):
    """Every installed API group probed at once, each in its own process (they cannot share
    one); the JAX and PyTorch groups with TensorFlow blocked."""
    folder = tmp_path_factory.mktemp("probes")
    blocker = _tensorflow_blocker(folder / "no_tensorflow")
    running = {
        group: _start_probe(group, folder / f"{group}.pkl", blocker) for group in INSTALLED_GROUPS
    }
    results = {}
    for group, process in running.items():
        output, _ = process.communicate(timeout=PROBE_TIMEOUT_S)
        assert process.returncode == 0, f"{group} probe failed:\n{output[-4000:]}"
        results[group] = pickle.loads((folder / f"{group}.pkl").read_bytes())
    results["blocker"] = blocker
    return results


def merged(probes, part):
    return {key: value for group in INSTALLED_GROUPS for key, value in probes[group][part].items()}


def reference_of(probes, api):
    return probes[keras_api.process_group(api)]["reference"]


def working_combinations():
    return [
        (recipe, api)
        for recipe in registry.RECIPES
        for api in INSTALLED_APIS
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


def test_jax_is_installed_by_default():
    """JAX is a default dependency: its probe always runs; only PyTorch is an optional extra."""
    assert keras_api.installed("keras3-jax")
    assert {"keras2", "keras3", "keras3-jax"} <= set(INSTALLED_GROUPS)
    assert set(GROUPS) == {"keras2", "keras3", "keras3-jax", "keras3-torch"}


@pytest.mark.slow
def test_every_working_vae_recipe_is_probed(probes):
    steps = merged(probes, "steps")
    expected = {combo for combo in working_combinations() if registry.get(combo[0]).includes_kl}
    assert expected <= set(steps)
    assert len(expected) >= 10 + 10 * len(INSTALLED_LEAN_GROUPS)


@pytest.mark.slow
def test_notebook_readings_are_registered_and_probed(probes):
    steps = merged(probes, "steps")
    port_apis = ["keras3-port", *(keras_api.port_api(group) for group in INSTALLED_LEAN_GROUPS)]
    for recipe in NOTEBOOK_READINGS:
        assert {(recipe, api) for api in ("keras2", *port_apis)} <= set(steps), recipe


@pytest.mark.slow
@pytest.mark.parametrize("group", INSTALLED_GROUPS)
def test_sampling_layer_matches_numpy_with_non_zero_noise(probes, group):
    reference = probes[group]["reference"]
    assert np.abs(reference["z"] - reference["mu"]).min() > 1e-3, "the noise must move every z"
    np.testing.assert_allclose(
        reference["layer_z"], reference["z"], rtol=LOSS_RTOL, atol=FORWARD_ATOL
    )


@pytest.mark.slow
@pytest.mark.parametrize("group", INSTALLED_GROUPS)
def test_reference_network_is_the_same_on_every_backend(probes, group):
    """The same seeded weights compute the same network under every API group."""
    keras2, reference = probes["keras2"]["reference"], probes[group]["reference"]
    for term in ("loss", "bce", "kl"):
        assert reference[term] == pytest.approx(keras2[term], rel=LOSS_RTOL), term
    for output in ("mu", "reconstruction"):
        np.testing.assert_allclose(
            reference[output], keras2[output], rtol=LOSS_RTOL, atol=FORWARD_ATOL, err_msg=output
        )


@pytest.mark.slow
def test_every_recipe_exposes_the_shared_mean_encoder_and_decoder(probes):
    """``mean_encoder`` and ``decoder`` feed the harness' pictures: they must be the trained
    network."""
    for (recipe, api), step in merged(probes, "steps").items():
        reference = reference_of(probes, api)
        for output in ("mu", "reconstruction"):
            np.testing.assert_allclose(
                step[output],
                reference[output],
                rtol=LOSS_RTOL,
                atol=FORWARD_ATOL,
                err_msg=f"{recipe} {api} {output}",
            )


@pytest.mark.slow
@pytest.mark.parametrize("term", ["loss", "bce", "kl"])
def test_one_step_losses_match_numpy(probes, term):
    """The reference samples z in numpy with a KL factor other than 1 (``EQUIVALENCE_FACT``);
    every backend is held to the Keras 2 network's numpy objective."""
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
def test_gradients_agree_across_recipes_and_backends_per_element(probes):
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
@pytest.mark.parametrize("api", ["keras2", "keras3"])
def test_floor_reconstruction_equals_vae_reconstruction_at_zero_noise(probes, api):
    zero_noise = merged(probes, "zero_noise")
    floor = zero_noise["plain_ae", api]
    assert math.isnan(floor["kl"]) and floor["loss"] == pytest.approx(floor["bce"], rel=LOSS_RTOL)
    for (recipe, recipe_api), metrics in zero_noise.items():
        if registry.get(recipe).includes_kl and keras_api.process_group(recipe_api) == api:
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
        for a in INSTALLED_APIS
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
        assert registry.get(recipe).expected_errors[api] in outcome["error_summary"]


def test_every_failure_has_its_expected_error_registered():
    for recipe in registry.RECIPES:
        for api in registry.APIS:
            if registry.status(recipe, api) == registry.FAILS:
                assert registry.get(recipe).expected_errors.get(api), (recipe, api)


def test_closure_loss_fails_everywhere_and_class_free_add_loss_fails_on_keras3():
    for api in ("keras2", *WRITTEN_KERAS3_APIS):
        assert registry.status("closure_loss", api) == registry.FAILS, api
        assert registry.status("plain_ae", api) == registry.WORKS, api
    for recipe in ("model_add_loss", *NOTEBOOK_READINGS):
        assert registry.status(recipe, "keras2") == registry.WORKS
        for api in WRITTEN_KERAS3_APIS:
            assert registry.status(recipe, api) == registry.FAILS, (recipe, api)
            assert registry.status(recipe, keras_api.port_api(api)) == registry.WORKS, (recipe, api)


@pytest.mark.parametrize("recipe", ["gradient_tape", "tensor_transfer"])
def test_tensorflow_only_recipes_have_ports_on_jax_and_torch_only(recipe):
    for api in WRITTEN_KERAS3_APIS:
        on_tensorflow = keras_api.backend_of(api) == "tensorflow"
        written, port = registry.status(recipe, api), registry.status(recipe, api + "-port")
        assert written == (registry.WORKS if on_tensorflow else registry.NOT_APPLICABLE), api
        assert port == (registry.NOT_APPLICABLE if on_tensorflow else registry.WORKS), api


def test_a_recipe_declared_by_position_runs_where_declared():
    """A user's ``Recipe(name, post, technique, runs_as_written)`` keeps working."""
    recipe = registry.Recipe("mine", "X", "my technique", frozenset({"keras2", "keras3-jax"}))
    assert [recipe.status(api) for api in registry.APIS] == [
        registry.WORKS,
        registry.FAILS,
        registry.NOT_APPLICABLE,
        registry.WORKS,
        registry.NOT_APPLICABLE,
        registry.FAILS,
        registry.NOT_APPLICABLE,
    ]


@pytest.mark.slow
def test_network_options_build_and_train(probes):
    variants = merged(probes, "network_variants")
    assert len(variants) == sum(
        len(variants_of(group)) * len(VARIANT_RECIPES[group]) for group in INSTALLED_GROUPS
    )
    for key, outcome in variants.items():
        assert "error_type" not in outcome, (key, outcome.get("traceback"))
        assert all(
            math.isfinite(epoch["loss"]) and math.isfinite(epoch["kl"])
            for epoch in outcome["losses"]
        ), key


@pytest.mark.slow
@pytest.mark.parametrize("group", INSTALLED_LEAN_GROUPS)
def test_jax_and_torch_probes_import_no_tensorflow(probes, group):
    """Their probe ran every recipe with TensorFlow replaced by a package that refuses to
    import, and TensorFlow was never imported."""
    assert probes[group]["tensorflow_origin"].startswith(str(probes["blocker"]))
    assert not probes[group]["tensorflow_imported"]
    assert probes[group]["steps"], "the probe must have trained recipes"


def test_every_recipe_module_imports_without_tensorflow(tmp_path):
    """TensorFlow is imported only by code that runs for it, never on import."""
    blocker = _tensorflow_blocker(tmp_path)
    modules = [
        f"vae_impls.{path.stem}"
        for path in sorted((ROOT / "vae_impls").glob("*.py"))
        if path.stem not in ("__init__", "notebook_globals_cells")  # the cells are exec'd
    ]
    imports_all = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
        "assert 'tensorflow' not in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-c", imports_all, *modules], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
