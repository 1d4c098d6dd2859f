"""Exercise every recipe of one Keras API group in this process and save what the tests compare.

``python tests/recipe_probe.py GROUP OUT.pkl``, GROUP one of ``keras2``, ``keras3``,
``keras3-jax``, ``keras3-torch`` (``keras_api.process_group``): for each API of the group (an
as-written API and its port API), each recipe

- takes one SGD step from shared seeded weights on a fixed batch with fixed, non-zero sampling
  noise, and records loss/bce/kl, the gradient of every weight (recovered from the weight
  change), and what its ``mean_encoder`` and ``decoder`` compute before the step;
- trains a few Adam steps and records the losses, or records the error it raises;
and the shared network with SELU, batch norm, dropout and other z_dim values trains a few steps.
The reference objective samples z in numpy (z = mu + exp(log_var / 2) * epsilon) from the
network's mu and log_var and decodes that z, so the ``Sampling`` layer is checked, not trusted.
API groups cannot share a process, hence a script run once per group. The JAX and PyTorch groups
run lean, to keep the suite's time: no zero-noise steps and one network variant, trained with
its own sampling noise (under XLA on JAX, where the noise generator's state must be traced).
"""

import importlib.util
import os
import pickle
import sys
import traceback
from dataclasses import replace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench.errors import summarize_exception  # noqa: E402
from vae_impls import keras_api, network, registry  # noqa: E402

BATCH = 16
STEP_LR = 1000.0  # large, so the float32 weight change carries the gradient with ~1e-7 error
WEIGHT_SEED = 7
BACKGROUND = 0.05  # the faint background of the probe's images (see ``images``)
# A KL factor other than 1, so that a recipe dropping ``fact`` or applying it twice is caught.
EQUIVALENCE_FACT = 0.3
# The posts' layers with fewer filters: the objective does not depend on the width, and JAX's
# gradient of a wide transposed convolution takes a second on a CPU (docs/backends.md).
NARROW = {"encoder_filters": (8, 16, 16), "decoder_filters": (16, 8, 1)}
EQUIVALENCE_NET = network.NetworkSpec(
    **NARROW,
    z_dim=3,
    fact=EQUIVALENCE_FACT,
    optimizer="sgd",
    learning_rate=STEP_LR,
    sampling_noise=(0.5, -1.0, 0.25),
)
WRONG_FACTS = (1.0, EQUIVALENCE_FACT**2)
ZERO_NOISE_NET = network.NetworkSpec(
    **NARROW,
    z_dim=3,
    fact=EQUIVALENCE_FACT,
    optimizer="sgd",
    learning_rate=STEP_LR,
    sampling_noise=(0.0, 0.0, 0.0),
)
TRAINING_NET = network.NetworkSpec(**NARROW, z_dim=2)
NETWORK_VARIANTS = {
    "selu_dropout": network.NetworkSpec(**NARROW, activation="selu", dropout=True),
    "relu_batch_norm": network.NetworkSpec(**NARROW, activation="relu", batch_norm=True),
    "leaky_relu_dropout_batch_norm_z16": network.NetworkSpec(
        **NARROW, batch_norm=True, dropout=True, z_dim=16
    ),
}
LEAN_VARIANT = "leaky_relu_dropout_batch_norm_z16"
VARIANT_RECIPES = {
    "keras2": (("kl_layer", "keras2"), ("gradient_tape", "keras2")),
    "keras3": (("kl_layer", "keras3-port"), ("gradient_tape", "keras3")),
    "keras3-jax": (("gradient_tape", "keras3-jax-port"),),
    "keras3-torch": (("gradient_tape", "keras3-torch-port"),),
}
GROUPS = tuple(dict.fromkeys(keras_api.process_group(api) for api in keras_api.APIS))
LEAN_GROUPS = tuple(g for g in GROUPS if keras_api.backend_of(g) != "tensorflow")


def installed_groups() -> tuple:
    return tuple(group for group in GROUPS if keras_api.installed(group))


def apis_of(group) -> tuple:
    return tuple(api for api in keras_api.APIS if keras_api.process_group(api) == group)


def variants_of(group) -> dict:
    if group not in LEAN_GROUPS:
        return NETWORK_VARIANTS
    jit = keras_api.backend_of(group) == "jax"  # torch.compile would cost minutes
    return {LEAN_VARIANT: replace(NETWORK_VARIANTS[LEAN_VARIANT], jit_compile=jit)}


def images(n, seed):
    """Smooth blobs on a faint background, in [0, 1]: enough structure for a non-trivial loss.

    No pixel is exactly 0: with the seeded zero biases a blank patch would give the activations
    a pre-activation of exactly 0, where LeakyReLU's derivative is a convention that backends do
    not share (TensorFlow and PyTorch take the slope, JAX takes 1), and the encoder's bias
    gradients would then differ by up to 2x between backends for that reason alone.
    """
    rng = np.random.default_rng(seed)
    grid = np.mgrid[0:28, 0:28].transpose(1, 2, 0)
    centres = rng.uniform(6, 22, (n, 1, 1, 2))
    radii = rng.uniform(3, 7, (n, 1, 1))
    distance = np.linalg.norm(grid[None] - centres, axis=-1)
    blobs = np.clip(1.2 - distance / radii, 0, 1)[..., None]
    return (BACKGROUND + (1 - BACKGROUND) * blobs).astype(np.float32)


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
            "error_summary": summarize_exception(error),
            "traceback": traceback.format_exc(),
        }
    return {
        "losses": [
            built.epoch_metrics({k: v[epoch] for k, v in history.history.items()})
            for epoch in range(2)
        ]
    }


def probe(group):
    keras = keras_api.load(group)
    x = images(BATCH, seed=1)
    lean = group in LEAN_GROUPS
    results = {
        "reference": reference(keras, EQUIVALENCE_NET, x),
        "steps": {},
        "zero_noise": {},
        "training": {},
        "network_variants": {},
    }
    z = results["reference"]["z"]
    zero_noise_z = None if lean else reference(keras, ZERO_NOISE_NET, x)["z"]
    for api in apis_of(group):
        for recipe in registry.RECIPES:
            status = registry.status(recipe, api)
            if status == registry.NOT_APPLICABLE:
                continue
            if status == registry.WORKS:
                results["steps"][recipe, api] = one_step(keras, recipe, api, EQUIVALENCE_NET, x, z)
                if not lean:
                    results["zero_noise"][recipe, api] = one_step(
                        keras, recipe, api, ZERO_NOISE_NET, x, zero_noise_z
                    )["metrics"]
            results["training"][recipe, api] = train_or_raise(
                keras, recipe, api, TRAINING_NET, images(32, seed=2)
            )
    if group == "keras2":
        # A recipe that dropped fact (1) or applied it twice (fact**2): the tests must reject both.
        results["wrong_fact"] = {
            fact: one_step(
                keras, "gradient_tape", "keras2", replace(EQUIVALENCE_NET, fact=fact), x, z
            )
            for fact in WRONG_FACTS
        }
    for name, net in variants_of(group).items():
        for recipe, api in VARIANT_RECIPES[group]:
            results["network_variants"][name, recipe, api] = train_or_raise(
                keras, recipe, api, net, images(32, 3)
            )
    # Where TensorFlow would come from, and whether it was imported: a JAX or PyTorch probe runs
    # with TensorFlow replaced by a package that refuses to import.
    found = importlib.util.find_spec("tensorflow")
    results["tensorflow_origin"] = found.origin if found else ""
    results["tensorflow_imported"] = "tensorflow" in sys.modules
    return results


if __name__ == "__main__":
    group, out_path = sys.argv[1:3]
    with open(out_path, "wb") as out:
        pickle.dump(probe(group), out)
