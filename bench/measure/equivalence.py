"""What ``python -m bench verify`` measures of a recipe, in the process of one Keras API group.

``python -m bench.measure.equivalence SPEC.json RESULT.json``: for each API of the spec, the
recipe and a trusted reference recipe each take one SGD step from the same seeded weights on the
same batch, with fixed, non-zero sampling noise and a KL factor other than 1. The step's logged
loss, BCE and KL and the numpy objective of the shared network's own outputs are recorded, and
each weight's gradient, recovered from its change (a huge learning rate makes the float32 change
carry the gradient), is compared element by element with the reference's. The manager
(``bench.cli.verify``) judges and words what comes back; Keras 2 and Keras 3 cannot share a
process, so it starts one such process per API group.
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench import recipes  # noqa: E402
from bench.errors import summarize_exception  # noqa: E402
from bench.processes import exit_now  # noqa: E402
from vae_impls import keras_api, registry  # noqa: E402
from vae_impls.network_spec import NetworkSpec  # noqa: E402

BATCH = 16
STEP_LR = 1000.0  # large, so that the float32 weight change carries the gradient to ~1e-7
WEIGHT_SEED = 7
SAMPLING_NOISE = (0.5, -1.0, 0.25)  # fixed and non-zero: the Sampling layer is checked too


def network_spec(fact: float) -> NetworkSpec:
    """The shared network for one SGD step with fixed noise, its KL factor ``fact`` (the
    manager's: a factor other than 1, so that dropping it or applying it twice shows)."""
    return NetworkSpec(
        z_dim=len(SAMPLING_NOISE),
        fact=fact,
        optimizer="sgd",
        learning_rate=STEP_LR,
        sampling_noise=SAMPLING_NOISE,
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
    """The shared network with the seeded weights, z sampled in numpy: loss, BCE and KL."""
    from vae_impls import network
    from vae_impls.objective import numpy_objective

    inputs = network.encoder_input(keras, net)
    mu, log_var = network.encoder_body(keras, net, inputs)
    decoder = network.decoder_model(keras, net)
    model = keras.Model(inputs, [mu, log_var])
    z_input = network.sampling_layer(keras, net)([mu, log_var])
    network.set_seeded_weights(keras.Model(inputs, decoder(z_input)), net, WEIGHT_SEED)
    mu_value, log_var_value = (np.asarray(v, np.float64) for v in model.predict(x, verbose=0))
    z = mu_value + np.exp(log_var_value / 2) * np.asarray(SAMPLING_NOISE)
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
    does not name), or the log key each term names that ``logs`` lacks."""
    missing = {}
    for term, keys in built.log_keys.items():
        absent = [getattr(key, "key", key) for key in keys if getattr(key, "key", key) not in logs]
        if absent:
            missing[term] = absent[0]
    terms = {} if missing else built.epoch_metrics(logs)
    return {"terms": terms, "missing_keys": missing, "log_keys": sorted(logs)}


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
    try:
        step = one_step(keras, net, recipe, api, x)
    except Exception as error:  # the user's recipe failing is the finding, not a crash
        return {**found, "error": summarize_exception(error)}
    found.update(logged_terms(step["built"], step["logs"]))
    if reference:
        if (reference, api) not in _REFERENCE_GRADIENTS:
            _REFERENCE_GRADIENTS[reference, api] = one_step(keras, net, reference, api, x)
        theirs = _REFERENCE_GRADIENTS[reference, api]["gradients"]
        found["gradients"] = gradient_differences(step["gradients"], theirs, spec["tolerance"])
    return found


_REFERENCE_GRADIENTS = {}  # (reference, api) -> its step: one per API however many recipes


def run(spec: dict) -> list:
    """Each recipe on each of its APIs (``spec["apis"]``: recipe -> APIs of one API group)
    checked in this process."""
    first_apis = next(iter(spec["apis"].values()))
    keras = keras_api.load(first_apis[0])
    return [
        check_api(keras, spec, recipe, api) for recipe, apis in spec["apis"].items() for api in apis
    ]


def main(argv=None) -> int:
    spec_path, result_path = argv or sys.argv[1:]
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    try:
        answer = {"checks": run(spec)}
    except Exception as error:  # Keras itself, or the reference recipe: the group says why
        answer = {"error": summarize_exception(error)}
    Path(result_path).write_text(json.dumps(answer), encoding="utf-8")
    return 0


if __name__ == "__main__":
    exit_now(main())
