"""Tiny recipes that misbehave on purpose, for the runner's tests only.

Enabled by ``KLBENCH_EXTRA_RECIPES=tests.fake_recipes`` (see ``bench.config.plan``), this module has
the registry's interface: ``RECIPES``, ``status`` and ``build``. Each fake works on keras2 and
keras3 and has no keras3-port variant.
"""

import os
import sys
import time

from vae_impls import registry
from vae_impls.common import Built, is_keras2

RECIPES = {
    name: registry.Recipe(name, "test", technique, frozenset({"keras2", "keras3"}))
    for name, technique in (
        ("fake_ok", "a dense autoencoder that trains in milliseconds"),
        ("fake_error", "raises on its first training step"),
        ("fake_nan", "its loss is NaN: it diverges"),
        ("fake_crash", "kills its own process, leaving a line on stderr"),
        (
            "fake_hang",
            "never finishes building (KLBENCH_FAKE_HANG_SECONDS: builds after that long)",
        ),
    )
}


def status(name: str, api: str) -> str:
    return registry.WORKS if api in RECIPES[name].runs_as_written else registry.NOT_APPLICABLE


def build(name: str, api: str, keras, net):
    if name == "fake_crash":
        print("fake_crash: the worker dies here", file=sys.stderr, flush=True)
        os._exit(3)
    if name == "fake_hang":  # a test that must finish it sets the environment variable
        print("fake_hang: building", file=sys.stderr, flush=True)  # tests wait for this line
        time.sleep(float(os.environ.get("KLBENCH_FAKE_HANG_SECONDS", 3600)))
    return _tiny_autoencoder(keras, net, name)


def _tiny_autoencoder(keras, net, name):
    images = keras.Input(shape=net.input_shape, name="encoder_input")
    mu = keras.layers.Dense(net.z_dim, name="mu")(
        keras.layers.Flatten(name="encoder_flatten")(images)
    )
    z = keras.Input(shape=(net.z_dim,), name="decoder_input")
    pixels = keras.layers.Dense(28 * 28, activation="sigmoid", name="decoder_dense")(z)
    decoder = keras.Model(
        z, keras.layers.Reshape(net.input_shape, name="decoder_reshape")(pixels), name="decoder"
    )
    model = keras.Model(images, decoder(mu), name=name)

    def nan_loss(y_true, y_pred):
        return _mean(keras, y_pred) * float("nan")

    def failing_loss(y_true, y_pred):
        raise ValueError("fake_error: this recipe fails on its first step")

    loss = {"fake_nan": nan_loss, "fake_error": failing_loss}.get(name, "binary_crossentropy")
    model.compile(
        loss=loss,
        optimizer=keras.optimizers.Adam(net.learning_rate),
        metrics=[keras.metrics.BinaryCrossentropy(name="bce")],
    )
    return Built(
        model=model,
        mean_encoder=keras.Model(images, mu),
        decoder=decoder,
        log_keys={"loss": ("loss",), "bce": ("bce",)},
    )


def _mean(keras, values):
    """Keras 2 computes with TensorFlow; Keras 3 with its own ops, on any backend."""
    if is_keras2(keras):
        import tensorflow as tf

        return tf.reduce_mean(values)
    return keras.ops.mean(values)
