"""KL loss in a custom ``train_step`` with ``tf.GradientTape`` (post VIII, keras.io VAE example).

A ``keras.Model`` subclass holds the encoder (images -> ``[z, mu, log_var]``) and the decoder,
computes BCE and KL itself under a ``GradientTape``, applies the gradients with its optimizer,
and reports ``total_loss``, ``reconstruction_loss`` and ``kl_loss`` through ``Mean`` trackers
listed in its ``metrics`` property, as keras.io does. ``compile()`` gets only the optimizer.

Differences from keras.io: the keras.io example sums the BCE over pixels and the KL over
latent dimensions; here both use the shared objective (means, ``fact`` on the KL). The network
is the posts' shared one. Runs unchanged on both Keras APIs.
"""

import tensorflow as tf

from vae_impls import network
from vae_impls.common import Built, no_targets
from vae_impls.objective import kl_loss, reconstruction_loss


def _vae_class(keras, net):
    class VAE(keras.Model):
        def __init__(self, encoder, decoder, **kwargs):
            super().__init__(**kwargs)
            self.encoder, self.decoder = encoder, decoder
            self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
            self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
            self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

        @property
        def metrics(self):
            return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

        def call(self, images, training=None):
            z, _, _ = self.encoder(images, training=training)
            return self.decoder(z, training=training)

        def train_step(self, data):
            images = data[0] if isinstance(data, tuple) else data
            with tf.GradientTape() as tape:
                z, mu, log_var = self.encoder(images, training=True)
                reconstructions = self.decoder(z, training=True)
                bce = reconstruction_loss(keras, images, reconstructions)
                kl = kl_loss(mu, log_var, net.fact)
                total_loss = bce + kl
            grads = tape.gradient(total_loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            for tracker, value in zip(self.metrics, (total_loss, bce, kl)):
                tracker.update_state(value)
            return {tracker.name: tracker.result() for tracker in self.metrics}

    return VAE


def build(keras, net):
    images = network.encoder_input(keras, net)
    mu, log_var = network.encoder_body(keras, net, images)
    z = network.sampling_layer(keras, net)([mu, log_var])
    encoder = keras.Model(images, [z, mu, log_var], name="encoder")
    decoder = network.decoder_model(keras, net)
    vae = _vae_class(keras, net)(encoder, decoder, name="vae")
    vae.compile(**network.compile_options(keras, net))
    return Built(
        model=vae,
        mean_encoder=keras.Model(images, mu),
        decoder=decoder,
        fit_targets=no_targets,
        log_keys={"loss": ("total_loss",), "bce": ("reconstruction_loss",), "kl": ("kl_loss",)},
    )
