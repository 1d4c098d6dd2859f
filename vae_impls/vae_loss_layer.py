"""The whole VAE loss in a layer after the decoder, ``compile(loss=None)`` (post IV, solution I).

F. Chollet's older recipe as repaired in post IV: a ``CustomVariationalLayer`` takes
``[mu, log_var, input image, decoded image]`` as explicit inputs, computes BCE + KL in its
``vae_loss`` method, ``add_loss()``es the total with ``inputs=`` and ``add_metric()``s the total and
both terms. The model is compiled with ``loss=None`` and fitted with ``fit(x, None)``.

Differences from the post: post IV scaled the KL per sample with its own factor (-0.5e-4) and
named the metrics ``reco_loss``/``kl_loss``; here the KL has the shared form and factor (the
batch mean of per-sample means is the same overall mean) and the metrics are ``bce``/``kl``.
As in the post, the decoder is applied to ``encoder(encoder_input)`` while the loss layer takes
the encoder's inner ``mu``/``log_var`` tensors, so the encoder's layers appear twice in the graph.

On Keras 3 (every backend), ``add_loss(inputs=...)`` and ``add_metric`` are gone, so the
recipe as written raises, with the same ``TypeError`` on every backend. ``build_keras3_port``,
the same on every backend, drops ``inputs=`` and adds the total as its two terms, BCE and KL,
so that the model can log each through a ``Mean`` tracker (``vae_impls.added_losses``); Keras
logs their sum as ``loss``.
"""

from vae_impls import network
from vae_impls.added_losses import model_logging_added_losses
from vae_impls.common import Built, no_targets
from vae_impls.objective import kl_loss

METRICS = ("total_loss", "bce", "kl")


def _loss_layer(keras, net, port):
    class CustomVariationalLayer(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.bce = keras.losses.BinaryCrossentropy()

        def vae_loss(self, mu, log_var, images, reconstructions):
            reconstruction = self.bce(images, reconstructions)
            kl = kl_loss(keras, mu, log_var, net.fact)
            return reconstruction + kl, reconstruction, kl

        def call(self, inputs):
            mu, log_var, images, reconstructions = inputs
            values = self.vae_loss(mu, log_var, images, reconstructions)
            if port:
                for term in values[1:]:
                    self.add_loss(term)
            else:
                self.add_loss(values[0], inputs=inputs)
                for name, value in zip(METRICS, values):
                    self.add_metric(value, name=name, aggregation="mean")
            return reconstructions

    return CustomVariationalLayer(name="vae_loss_layer")


def _build(keras, net, port):
    images = network.encoder_input(keras, net)
    mu, log_var = network.encoder_body(keras, net, images)
    encoder = keras.Model(images, network.sampling_layer(keras, net)([mu, log_var]), name="encoder")
    decoder = network.decoder_model(keras, net)
    reconstructions = decoder(encoder(images))
    model_class = model_logging_added_losses(keras, METRICS[1:]) if port else keras.Model
    vae = model_class(
        images, _loss_layer(keras, net, port)([mu, log_var, images, reconstructions]), name="vae"
    )
    vae.compile(loss=None, **network.compile_options(keras, net))
    # The layer computes BCE as part of the loss anyway, so logging it costs no second BCE.
    return Built(
        model=vae,
        mean_encoder=keras.Model(images, mu),
        decoder=decoder,
        fit_targets=no_targets,
        log_keys={"loss": ("loss",), "bce": ("bce",), "kl": ("kl",)},
    )


def build(keras, net):
    return _build(keras, net, port=False)


def build_keras3_port(keras, net):
    return _build(keras, net, port=True)
