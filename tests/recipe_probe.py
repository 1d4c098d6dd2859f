"""Exercise every recipe of one Keras package in this process and save what the tests compare.

``python tests/recipe_probe.py keras2|keras3 OUT.pkl``: for each API served by that package
(keras3 also serves keras3-port), each recipe

- takes one SGD step from shared seeded weights on a fixed batch with fixed, non-zero sampling
  noise, and records loss/bce/kl, the gradient of every weight (recovered from the weight
  change), and what its ``mean_encoder`` and ``decoder`` compute before the step;
- trains a few Adam steps and records the losses, or records the error it raises;
and the shared network with SELU, batch norm, dropout and other z_dim values trains a few steps.
The reference objective samples z in numpy (z = mu + exp(log_var / 2) * epsilon) from the
network's mu and log_var and decodes that z, so the ``Sampling`` layer is checked, not trusted.
Keras 2 and 3 cannot share a process, hence a script run once per package.
"""

import os
import pickle
import sys
import traceback
from dataclasses import replace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from vae_impls import keras_api, network, registry  # noqa: E402

BATCH = 16
STEP_LR = 1000.0  # large, so the float32 weight change carries the gradient with ~1e-7 error
WEIGHT_SEED = 7
# A KL factor other than 1, so that a recipe dropping ``fact`` or applying it twice is caught.
EQUIVALENCE_FACT = 0.3
EQUIVALENCE_NET = network.NetworkSpec(
    z_dim=3,
    fact=EQUIVALENCE_FACT,
    optimizer="sgd",
    learning_rate=STEP_LR,
    sampling_noise=(0.5, -1.0, 0.25),
)
WRONG_FACTS = (1.0, EQUIVALENCE_FACT**2)
ZERO_NOISE_NET = network.NetworkSpec(
    z_dim=3,
    fact=EQUIVALENCE_FACT,
    optimizer="sgd",
    learning_rate=STEP_LR,
    sampling_noise=(0.0, 0.0, 0.0),
)
TRAINING_NET = network.NetworkSpec(z_dim=2)
NETWORK_VARIANTS = {
    "selu_dropout": network.NetworkSpec(activation="selu", dropout=True),
    "relu_batch_norm": network.NetworkSpec(activation="relu", batch_norm=True),
    "leaky_relu_dropout_batch_norm_z16": network.NetworkSpec(
        batch_norm=True, dropout=True, z_dim=16
    ),
}
VARIANT_RECIPES = {
    "keras2": (("kl_layer", "keras2"), ("gradient_tape", "keras2")),
    "keras3": (("kl_layer", "keras3-port"), ("gradient_tape", "keras3")),
}


def images(n, seed):
    """Smooth blobs in [0, 1]: enough structure for a non-trivial loss."""
    rng = np.random.default_rng(seed)
    grid = np.mgrid[0:28, 0:28].transpose(1, 2, 0)
    centres = rng.uniform(6, 22, (n, 1, 1, 2))
    radii = rng.uniform(3, 7, (n, 1, 1))
    distance = np.linalg.norm(grid[None] - centres, axis=-1)
    return np.clip(1.2 - distance / radii, 0, 1)[..., None].astype(np.float32)


def reference(keras, net, x):
    """The shared network with the seeded weights: the objective with z sampled in numpy.

    Returns the objective's terms, the encoder's ``mu``, the numpy ``z``, the decoder's output
    for it, and the ``Sampling`` layer's own ``z`` for comparison with the numpy one.
    """
    from vae_impls.objective import numpy_objective

    inputs = network.encoder_input(keras, net)
    mu, log_var = network.encoder_body(keras, net, inputs)
    layer_z = network.sampling_layer(keras, net)([mu, log_var])
    decoder = network.decoder_model(keras, net)
    model = keras.Model(inputs, [mu, log_var, layer_z, decoder(layer_z)])
    network.set_seeded_weights(model, net, WEIGHT_SEED)
    mu_value, log_var_value, layer_z_value, _ = model.predict(x, verbose=0)
    epsilon = np.broadcast_to(np.asarray(net.sampling_noise, np.float64), mu_value.shape)
    numpy_z = mu_value.astype(np.float64) + np.exp(log_var_value.astype(np.float64) / 2) * epsilon
    reconstruction = decoder.predict(numpy_z.astype(np.float32), verbose=0)
    return {
        **numpy_objective(x, reconstruction, mu_value, log_var_value, net.fact),
        "mu": mu_value,
        "z": numpy_z,
        "layer_z": layer_z_value,
        "reconstruction": reconstruction,
    }


def metric_classes(model) -> list:
    """Class names of every metric the model updates per step, inside Keras 3's containers too."""
    found, pending = [], list(model.metrics)
    while pending:
        metric = pending.pop()
        if metric is None:
            continue
        found.append(type(metric).__name__)
        for attribute in ("_flat_metrics", "_flat_weighted_metrics"):
            pending.extend(getattr(metric, attribute, None) or [])
    return sorted(found)


def one_step(keras, recipe, api, net, x, z):
    """One SGD step; ``z`` (the reference's numpy z) probes the recipe's own decoder."""
    keras.utils.set_random_seed(0)
    built = registry.build(recipe, api, keras, net)
    network.set_seeded_weights(built.model, net, WEIGHT_SEED)
    mu = built.mean_encoder.predict(x, verbose=0)
    reconstruction = built.decoder.predict(np.asarray(z, np.float32), verbose=0)
    before = network.get_weights(built.model)
    history = built.model.fit(
        x, built.fit_targets(x), batch_size=len(x), epochs=1, shuffle=False, verbose=0
    )
    after = network.get_weights(built.model)
    metrics = built.epoch_metrics({key: values[-1] for key, values in history.history.items()})
    gradients = {
        key: (before[key].astype(np.float64) - after[key]) / net.learning_rate for key in before
    }
    return {
        "metrics": metrics,
        "gradients": gradients,
        "mu": mu,
        "reconstruction": reconstruction,
        "metric_classes": metric_classes(built.model),
    }


def train_or_raise(keras, recipe, api, net, x):
    try:
        keras.utils.set_random_seed(0)
        built = registry.build(recipe, api, keras, net)
        history = built.model.fit(
            x, built.fit_targets(x), batch_size=8, epochs=2, shuffle=True, verbose=0
        )
    except Exception as error:  # the error itself is the result for recipes that fail as written
        return {
            "error_type": type(error).__name__,
            "error_text": str(error),
            "traceback": traceback.format_exc(),
        }
    return {
        "losses": [
            built.epoch_metrics({k: v[epoch] for k, v in history.history.items()})
            for epoch in range(2)
        ]
    }


def apis_of(package_api):
    return ("keras3", "keras3-port") if package_api == "keras3" else (package_api,)


def probe(package_api):
    keras = keras_api.load(package_api)
    x = images(BATCH, seed=1)
    results = {
        "reference": reference(keras, EQUIVALENCE_NET, x),
        "steps": {},
        "zero_noise": {},
        "training": {},
        "network_variants": {},
    }
    z, zero_noise_z = results["reference"]["z"], reference(keras, ZERO_NOISE_NET, x)["z"]
    for api in apis_of(package_api):
        for recipe in registry.RECIPES:
            status = registry.status(recipe, api)
            if status == registry.NOT_APPLICABLE:
                continue
            if status == registry.WORKS:
                results["steps"][recipe, api] = one_step(keras, recipe, api, EQUIVALENCE_NET, x, z)
                results["zero_noise"][recipe, api] = one_step(
                    keras, recipe, api, ZERO_NOISE_NET, x, zero_noise_z
                )["metrics"]
            results["training"][recipe, api] = train_or_raise(
                keras, recipe, api, TRAINING_NET, images(32, seed=2)
            )
    if package_api == "keras2":
        # A recipe that dropped fact (1) or applied it twice (fact**2): the tests must reject both.
        results["wrong_fact"] = {
            fact: one_step(
                keras, "gradient_tape", "keras2", replace(EQUIVALENCE_NET, fact=fact), x, z
            )
            for fact in WRONG_FACTS
        }
    for name, net in NETWORK_VARIANTS.items():
        for recipe, api in VARIANT_RECIPES[package_api]:
            results["network_variants"][name, recipe, api] = train_or_raise(
                keras, recipe, api, net, images(32, 3)
            )
    return results


if __name__ == "__main__":
    package_api, out_path = sys.argv[1:3]
    with open(out_path, "wb") as out:
        pickle.dump(probe(package_api), out)
