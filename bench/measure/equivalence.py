"""What ``python -m bench verify`` measures of a recipe, in the process of one Keras API group.

``python -m bench.measure.equivalence SPEC.json RESULT.json``: for each API of the spec, the
recipe and a trusted reference recipe each take one SGD step from the same seeded weights on the
same batch, with fixed, non-zero sampling noise and a KL factor other than 1. The step's logged
loss, BCE and KL and the numpy objective of the shared network's own outputs are recorded, and
each weight's gradient, recovered from its change (a huge learning rate makes the float32 change
carry the gradient), is compared element by element with the reference's. Where a term
differs, the recipe takes its step again with other fixed noise: a loss that does not move
draws its noise elsewhere than the network's sampling layer. The manager (``bench.cli.verify``)
judges and words what comes back; Keras 2 and Keras 3 cannot share a process, so it starts one
such process per API group.

RESULT is written a JSON line at a time, so that the manager sees each check begin and end:
``{"started": [recipe, api]}`` before a check, ``{"check": {...}}`` after it, and
``{"error": "..."}`` where the process cannot go on. A recipe's exception is explained by the
rule a benchmark's worker uses too (``bench.explanations``).
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench import recipes  # noqa: E402
from bench.errors import summarize_exception  # noqa: E402
from bench.explanations import explain  # noqa: E402
from bench.processes import die_with_manager, exit_now  # noqa: E402
from vae_impls import keras_api, registry  # noqa: E402
from vae_impls.common import MissingLogKey  # noqa: E402
from vae_impls.network_spec import NetworkSpec  # noqa: E402

BATCH = 16
STEP_LR = 1000.0  # large, so that the float32 weight change carries the gradient to ~1e-7
WEIGHT_SEED = 7
SAMPLING_NOISE = (0.5, -1.0, 0.25)  # fixed and non-zero: the Sampling layer is checked too
OTHER_NOISE = (-0.75, 0.5, 1.0)  # the second step's, for a recipe whose terms differ
SAME_LOSS_RTOL = 1e-7  # losses this close did not see the noise change


def network_spec(fact: float, noise: tuple = SAMPLING_NOISE) -> NetworkSpec:
    """The shared network for one SGD step with fixed ``noise``, its KL factor ``fact`` (the
    manager's: a factor other than 1, so that dropping it or applying it twice shows)."""
    return NetworkSpec(
        z_dim=len(noise),
        fact=fact,
        optimizer="sgd",
        learning_rate=STEP_LR,
        sampling_noise=noise,
    )


# The recipes trusted as the gradients' reference, in order of preference.
REFERENCES = ("gradient_tape", "kl_layer", "tensor_transfer", "model_add_loss")


def images(count: int, seed: int) -> np.ndarray:
    """Smooth blobs in [0, 1]: enough structure for a loss that is not trivial."""
    rng = np.random.default_rng(seed)
    grid = np.mgrid[0:28, 0:28].transpose(1, 2, 0)
    centres = rng.uniform(6, 22, (count, 1, 1, 2))
    radii = rng.uniform(3, 7, (count, 1, 1))
    distance = np.linalg.norm(grid[None] - centres, axis=-1)
    return np.clip(1.2 - distance / radii, 0, 1)[..., None].astype(np.float32)


def objective(keras, net: NetworkSpec, x) -> dict:
    """The shared network with the seeded weights, z sampled in numpy from the spec's fixed
    noise: loss, BCE and KL."""
    from vae_impls import network
    from vae_impls.objective import numpy_objective

    inputs = network.encoder_input(keras, net)
    mu, log_var = network.encoder_body(keras, net, inputs)
    decoder = network.decoder_model(keras, net)
    model = keras.Model(inputs, [mu, log_var])
    z_input = network.sampling_layer(keras, net)([mu, log_var])
    network.set_seeded_weights(keras.Model(inputs, decoder(z_input)), net, WEIGHT_SEED)
    mu_value, log_var_value = (np.asarray(v, np.float64) for v in model.predict(x, verbose=0))
    z = mu_value + np.exp(log_var_value / 2) * np.asarray(net.sampling_noise)
    reconstruction = decoder.predict(z.astype(np.float32), verbose=0)
    terms = numpy_objective(x, reconstruction, mu_value, log_var_value, net.fact)
    return {term: float(value) for term, value in terms.items()}


def one_step(keras, net: NetworkSpec, recipe: str, api: str, x) -> dict:
    """The logs of one SGD step of ``recipe`` and the gradient of each weight."""
    from vae_impls import network

    keras.utils.set_random_seed(0)
    built = recipes.build(recipe, api, keras, net)
    network.set_seeded_weights(built.model, net, WEIGHT_SEED)
    before = network.get_weights(built.model)
    history = built.model.fit(
        x, built.fit_targets(x), batch_size=len(x), epochs=1, shuffle=False, verbose=0
    )
    after = network.get_weights(built.model)
    logs = {key: float(values[-1]) for key, values in history.history.items()}
    gradients = {
        key: (before[key].astype(np.float64) - after[key]) / STEP_LR for key in sorted(before)
    }
    return {"built": built, "logs": logs, "gradients": gradients}


def logged_terms(built, logs: dict) -> dict:
    """loss, bce and kl as the recipe's ``log_keys`` read them from ``logs`` (NaN for a term it
    does not name), or the log key a term names that ``logs`` lacks."""
    try:
        terms, missing = built.epoch_metrics(logs), {}
    except MissingLogKey as error:  # the same rule a benchmark's run is explained by
        terms, missing = {}, {error.term: error.key}
    return {"terms": terms, "missing_keys": missing, "log_keys": sorted(logs)}


def noise_elsewhere(keras, spec: dict, recipe: str, api: str, x, loss: float) -> dict:
    """Whether ``recipe`` draws its noise elsewhere than the network's sampling layer: its
    model has no such layer, or its loss stays the same when that layer's noise changes."""
    from vae_impls import network

    other = network_spec(spec["fact"], OTHER_NOISE)
    moved = (
        objective(keras, other, x)["loss"]
        != objective(keras, network_spec(spec["fact"]), x)["loss"]
    )
    step = one_step(keras, other, recipe, api, x)
    other_loss = step["built"].epoch_metrics(step["logs"])["loss"]
    unmoved = moved and abs(other_loss - loss) <= SAME_LOSS_RTOL * max(abs(loss), 1e-12)
    has_layer = network.SAMPLING_LAYER in _layer_names(step["built"].model)
    return {
        "sampling_layer": has_layer,
        "loss_unmoved": unmoved,
        "elsewhere": unmoved or not has_layer,
    }


def _layer_names(model) -> set:
    """The names of ``model``'s layers, nested models' included (Keras 2 and 3 alike)."""
    return {layer.name for layer in model._flatten_layers(include_self=False, recursive=True)}


def _terms_differ(found: dict) -> bool:
    return any(
        not np.isclose(found["terms"].get(term, np.nan), found["objective"][term], rtol=1e-5)
        for term in ("loss", "bce")
    )


def gradient_differences(mine: dict, theirs: dict, tolerance: dict) -> dict:
    """Per element |g - g_ref| against rtol * |g_ref| + atol_share * max|g_ref| of the weight:
    the largest difference, the worst ratio to the tolerance, and the first element over it."""
    missing = sorted(set(theirs) ^ set(mine))
    result = {"max_difference": 0.0, "worst_over_tolerance": 0.0, "first": None, "missing": missing}
    for key in sorted(set(mine) & set(theirs)):
        difference = np.abs(mine[key] - theirs[key])
        allowed = tolerance["rtol"] * np.abs(theirs[key]) + tolerance["atol_share"] * max(
            float(np.abs(theirs[key]).max()), 1e-30
        )
        over = difference / allowed
        result["max_difference"] = max(result["max_difference"], float(difference.max()))
        result["worst_over_tolerance"] = max(result["worst_over_tolerance"], float(over.max()))
        if result["first"] is None and (over > 1).any():
            index = np.unravel_index(int(np.argmax(over > 1)), over.shape)
            result["first"] = {
                "weight": key,
                "index": [int(i) for i in index],
                "mine": float(mine[key][index]),
                "reference": float(theirs[key][index]),
            }
    return result


def reference_recipe(api: str) -> str:
    """The first trusted built-in that works on ``api`` as registered; "" for none."""
    return next((name for name in REFERENCES if registry.status(name, api) == registry.WORKS), "")


def check_api(keras, spec: dict, recipe: str, api: str) -> dict:
    """What one API's check of ``recipe`` found; an ``error`` where it could not take its step."""
    x, net = images(BATCH, seed=1), network_spec(spec["fact"])
    reference = reference_recipe(api)
    found = {"recipe": recipe, "api": api, "reference": reference}
    found["objective"] = objective(keras, net, x)
    found["shape"] = {"pixels": int(np.prod(x.shape[1:])), "latent": net.z_dim, "batch": len(x)}
    try:
        step = one_step(keras, net, recipe, api, x)
        found.update(logged_terms(step["built"], step["logs"]))
        if not found["missing_keys"] and _terms_differ(found):
            found["noise"] = noise_elsewhere(keras, spec, recipe, api, x, found["terms"]["loss"])
    except Exception as error:  # the user's recipe failing is the finding, not a crash
        return {**found, "error": explain(error)}
    if reference:
        if (reference, api) not in _REFERENCE_GRADIENTS:
            _REFERENCE_GRADIENTS[reference, api] = one_step(keras, net, reference, api, x)
        theirs = _REFERENCE_GRADIENTS[reference, api]["gradients"]
        found["gradients"] = gradient_differences(step["gradients"], theirs, spec["tolerance"])
    return found


_REFERENCE_GRADIENTS = {}  # (reference, api) -> its step: one per API however many recipes


def run(spec: dict, result_path: Path) -> None:
    """Each recipe on each of its APIs (``spec["apis"]``: recipe -> APIs of one API group)
    checked in this process, each check's start and end written to ``result_path``."""
    first_apis = next(iter(spec["apis"].values()))
    keras = keras_api.load(first_apis[0])
    for recipe, apis in spec["apis"].items():
        for api in apis:
            write_line(result_path, {"started": [recipe, api]})
            write_line(result_path, {"check": check_api(keras, spec, recipe, api)})


def write_line(path: Path, entry: dict) -> None:
    """One JSON line appended and flushed: the manager reads the file while it grows."""
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(entry) + "\n")


def main(argv=None) -> int:
    die_with_manager()  # a verify killed outright leaves no check process behind
    spec_path, result_path = argv or sys.argv[1:]
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    try:
        run(spec, Path(result_path))
    except Exception as error:  # Keras itself, or the reference recipe: the group says why
        write_line(Path(result_path), {"error": summarize_exception(error)})
    return 0


if __name__ == "__main__":
    exit_now(main())
