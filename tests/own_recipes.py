"""Users' recipes with the mistakes ``verify`` recognises, one ``module:attribute`` each.

Each is new-recipe's custom ``train_step`` with one thing written another common way: the
reconstruction summed over the pixels, the KL in its ``-0.5 * sum`` form, ``fact`` applied twice,
a term doubled, noise drawn in the step instead of by the network's sampling layer, a log key
the logs lack, the objective's helper called in its earlier form, a TensorFlow step declared for
JAX, a build that never ends. ``python -m bench verify tests.own_recipes:NAME`` checks one.
"""

import os
import threading
from types import SimpleNamespace

from vae_impls.common import Built, no_targets
from vae_impls.registry import Recipe

ON_TENSORFLOW = frozenset({"keras2", "keras3"})
HANG_MARKER_ENV = "KLBENCH_TEST_HANG_MARKER"  # hangs: the file it writes its pid to first


def _mean_bce(tf, keras, x, pixels):
    return tf.reduce_mean(keras.losses.binary_crossentropy(x, pixels))


def _kl(tf, mu, log_var, fact):
    return -fact * tf.reduce_mean(1 + log_var - tf.square(mu) - tf.exp(log_var))


def _plus(bce, kl):
    return bce + kl


def recipe(
    name,
    *,
    bce=_mean_bce,
    kl=_kl,
    loss=_plus,
    own_noise=False,
    keys=None,
    apis=None,
    encoder_twice=False,
):
    """A recipe as ``new-recipe`` writes it but for the parts given: ``bce(tf, keras, x,
    pixels)``, ``kl(tf, mu, log_var, fact)``, ``loss(bce, kl)``; noise drawn in the step itself
    with ``own_noise``; other ``log_keys`` with ``keys``; with ``encoder_twice``, the step calls
    the encoder a second time for ``mu`` and ``log_var`` (its sampling layer draws again)."""

    def build(keras, net):
        import tensorflow as tf

        from vae_impls import network

        images = network.encoder_input(keras, net)
        mu, log_var = network.encoder_body(keras, net, images)
        if own_noise:
            encoder = keras.Model(images, [mu, log_var], name="encoder")
        else:
            z = network.sampling_layer(keras, net)([mu, log_var])
            encoder = keras.Model(images, [z, mu, log_var], name="encoder")
        decoder = network.decoder_model(keras, net)

        class VAE(keras.Model):
            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                self.encoder, self.decoder = encoder, decoder
                self.trackers = [keras.metrics.Mean(name=key) for key in ("loss", "bce", "kl")]

            @property
            def metrics(self):
                return self.trackers

            def call(self, x, training=None):
                return self.decoder(self.encoder(x, training=training)[0], training=training)

            def train_step(self, data):
                x = data[0] if isinstance(data, tuple) else data
                with tf.GradientTape() as tape:
                    if own_noise:
                        mu, log_var = self.encoder(x, training=True)
                        z = mu + tf.exp(log_var / 2) * tf.random.normal(tf.shape(mu))
                    else:
                        z, mu, log_var = self.encoder(x, training=True)
                    if encoder_twice:
                        _, mu, log_var = self.encoder(x, training=True)
                    pixels = self.decoder(z, training=True)
                    bce_value = bce(tf, keras, x, pixels)
                    kl_value = kl(tf, mu, log_var, net.fact)
                    total = loss(bce_value, kl_value)
                gradients = tape.gradient(total, self.trainable_weights)
                self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
                for tracker, value in zip(self.trackers, (total, bce_value, kl_value)):
                    tracker.update_state(value)
                return {tracker.name: tracker.result() for tracker in self.trackers}

        vae = VAE(name=name)
        vae.compile(**network.compile_options(keras, net))
        return Built(
            model=vae,
            mean_encoder=keras.Model(images, mu),
            decoder=decoder,
            fit_targets=no_targets,
            log_keys=keys or {"loss": ("loss",), "bce": ("bce",), "kl": ("kl",)},
        )

    declared = Recipe(
        name, "own", "custom train_step", apis or ON_TENSORFLOW, needs_tensorflow=True
    )
    return SimpleNamespace(RECIPE=declared, build=build)


def _pixel_sum(tf, keras, x, pixels):
    per_image = tf.reduce_sum(keras.losses.binary_crossentropy(x, pixels), axis=(1, 2))
    return tf.reduce_mean(per_image)


def _half_sum_without_fact(tf, mu, log_var, fact):
    """The KL as many VAE tutorials write it: -0.5 * sum over the latent dimensions."""
    per_image = -0.5 * tf.reduce_sum(1 + log_var - tf.square(mu) - tf.exp(log_var), axis=1)
    return tf.reduce_mean(per_image)


def _earlier_helper(tf, mu, log_var, fact):
    from vae_impls.objective import kl_loss

    return kl_loss(mu, log_var, fact)  # the form before the Keras module came first


def _hang(keras, net):
    marker = os.environ.get(HANG_MARKER_ENV)
    if marker:
        with open(marker, "w", encoding="utf-8") as out:
            out.write(str(os.getpid()))
    threading.Event().wait()


correct = recipe("correct")
pixel_sum = recipe("pixel_sum", bce=_pixel_sum)
tutorial_kl = recipe("tutorial_kl", kl=_half_sum_without_fact)
fact_twice = recipe(
    "fact_twice", kl=lambda tf, mu, log_var, fact: fact * _kl(tf, mu, log_var, fact)
)
kl_doubled = recipe("kl_doubled", loss=lambda bce, kl: bce + 2 * kl)
bce_doubled = recipe("bce_doubled", loss=lambda bce, kl: 2 * bce + kl)
own_noise = recipe("own_noise", own_noise=True)
wrong_key = recipe("wrong_key", keys={"loss": ("total",), "bce": ("bce",), "kl": ("kl",)})
earlier_helper = recipe("earlier_helper", kl=_earlier_helper)
declared_for_jax = recipe("declared_for_jax", apis=frozenset({"keras2", "keras3", "keras3-jax"}))
hangs_too = SimpleNamespace(
    RECIPE=Recipe("hangs_too", "own", "another build that never ends", ON_TENSORFLOW), build=_hang
)
hangs = SimpleNamespace(
    RECIPE=Recipe("hangs", "own", "a build that never ends", ON_TENSORFLOW), build=_hang
)
declared_for_torch = recipe(
    "declared_for_torch", apis=frozenset({"keras2", "keras3", "keras3-torch"})
)
