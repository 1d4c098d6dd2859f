"""KL loss from a custom encoder layer (post V, ``My_KL_Layer``, solution_type 0).

A layer placed after the ``mu`` and ``log_var`` heads computes the KL term, hands it to Keras
with ``self.add_loss(kl, inputs=inputs)``, reports it with ``self.add_metric(kl, name="kl")`` and
returns its inputs unchanged for the sampling layer. The reconstruction term comes from
``compile(loss="binary_crossentropy")`` and ``fit(x, x)``; the reported BCE is ``loss - kl``.

Differences from the post: the sampling is a small ``Sampling`` layer shared by all recipes
instead of a ``Lambda`` (so the noise can be fixed in tests); ``fact`` is the shared one instead
of the layer's default argument; the KL uses the shared objective's ops instead of
``keras.backend``.

On Keras 3 (every backend), ``add_loss`` has no ``inputs=`` argument and ``Layer.add_metric`` is
gone, so the recipe as written raises, with the same ``TypeError`` on every backend.
``build_keras3_port``, the same on every backend, drops ``inputs=`` and logs the KL through a
``Mean`` tracker of the model (``vae_impls.added_losses``).
"""

from vae_impls import network
from vae_impls.added_losses import model_logging_added_losses
from vae_impls.common import Built
from vae_impls.objective import kl_loss


def _kl_layer(keras, net, port):
    class KLLayer(keras.layers.Layer):
        def call(self, inputs):
            mu, log_var = inputs
            kl = kl_loss(keras, mu, log_var, net.fact)
            if port:
                self.add_loss(kl)
            else:
                self.add_loss(kl, inputs=inputs)
                self.add_metric(kl, name="kl", aggregation="mean")
            return inputs

    return KLLayer(name="kl_layer")


def _build(keras, net, port):
    images = network.encoder_input(keras, net)
    mu, log_var = network.encoder_body(keras, net, images)
    mu, log_var = _kl_layer(keras, net, port)([mu, log_var])
    z = network.sampling_layer(keras, net)([mu, log_var])
    decoder = network.decoder_model(keras, net)
    model_class = model_logging_added_losses(keras, ("kl",)) if port else keras.Model
    vae = model_class(images, decoder(z), name="vae")
    vae.compile(loss="binary_crossentropy", **network.compile_options(keras, net))
    return Built(model=vae, mean_encoder=keras.Model(images, mu), decoder=decoder)


def build(keras, net):
    return _build(keras, net, port=False)


def build_keras3_port(keras, net):
    return _build(keras, net, port=True)
