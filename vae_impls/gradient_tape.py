"""KL loss in a custom ``train_step`` with ``tf.GradientTape`` (post VIII, keras.io VAE example).

A ``keras.Model`` subclass holds the encoder (images -> ``[z, mu, log_var]``) and the decoder,
computes BCE and KL itself under a ``GradientTape``, applies the gradients with its optimizer,
and reports ``total_loss``, ``reconstruction_loss`` and ``kl_loss`` through ``Mean`` trackers
listed in its ``metrics`` property, as keras.io does. ``compile()`` gets only the optimizer.

Differences from keras.io: the keras.io example sums the BCE over pixels and the KL over
latent dimensions; here both use the shared objective (means, ``fact`` on the KL). The network
is the posts' shared one.

Backends. As written the step is TensorFlow code: it runs unchanged on Keras 2 and on Keras 3
with TensorFlow. On JAX and PyTorch it is not applicable (``n/a``), not a failure: the step
needs ``import tensorflow`` and a tape that records TensorFlow ops, while a JAX or PyTorch
process never imports TensorFlow and computes nothing a tape could record (the JAX trainer even
calls ``train_step(state, data)``). Those backends get ports (``build_keras3_port``), each the
custom step its keras.io guide writes ("Customizing what happens in fit()" with JAX / with
PyTorch): the same model, losses and trackers, with the backend's own gradient machinery.
"""

from vae_impls import network
from vae_impls.common import Built, keras_backend, no_targets
from vae_impls.objective import kl_loss, reconstruction_loss

LOG_KEYS = {"loss": ("total_loss",), "bce": ("reconstruction_loss",), "kl": ("kl_loss",)}


def _vae_base(keras, net):
    """What every variant shares: the submodels, the trackers, the losses of one batch."""

    class VAEBase(keras.Model):
        def __init__(self, encoder, decoder, **kwargs):
            super().__init__(**kwargs)
            self.encoder, self.decoder = encoder, decoder
            self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
            self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
            self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

        @property
        def metrics(self):
            return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

        def call(self, images, training=None, with_losses=False):
            """The reconstructions; with ``with_losses``, ``(total, bce, kl)`` too: the ports'
            steps get the losses from one forward pass (JAX's through ``stateless_call``)."""
            z, mu, log_var = self.encoder(images, training=training)
            reconstructions = self.decoder(z, training=training)
            if not with_losses:
                return reconstructions
            bce = reconstruction_loss(keras, images, reconstructions)
            kl = kl_loss(keras, mu, log_var, net.fact)
            return reconstructions, (bce + kl, bce, kl)

    return VAEBase


def _images(data):
    return data[0] if isinstance(data, (tuple, list)) else data


def _tensorflow_vae(keras, net):
    """The step as post VIII and keras.io write it, with ``tf.GradientTape``."""
    import tensorflow as tf

    class VAE(_vae_base(keras, net)):
        def train_step(self, data):
            images = _images(data)
            with tf.GradientTape() as tape:
                z, mu, log_var = self.encoder(images, training=True)
                reconstructions = self.decoder(z, training=True)
                bce = reconstruction_loss(keras, images, reconstructions)
                kl = kl_loss(keras, mu, log_var, net.fact)
                total_loss = bce + kl
            grads = tape.gradient(total_loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            for tracker, value in zip(self.metrics, (total_loss, bce, kl)):
                tracker.update_state(value)
            return {tracker.name: tracker.result() for tracker in self.metrics}

    return VAE


def _jax_vae(keras, net):
    """The stateless step of the keras.io JAX guide: every variable goes in and comes out."""
    import jax

    class VAE(_vae_base(keras, net)):
        def compute_loss_and_updates(self, trainable_variables, non_trainable_variables, images):
            (_, losses), non_trainable_variables = self.stateless_call(
                trainable_variables,
                non_trainable_variables,
                images,
                training=True,
                with_losses=True,
            )
            return losses[0], (losses, non_trainable_variables)

        def train_step(self, state, data):
            trainable_variables, non_trainable_variables, optimizer_variables, metrics_variables = (
                state
            )
            grad_fn = jax.value_and_grad(self.compute_loss_and_updates, has_aux=True)
            (_, (losses, non_trainable_variables)), grads = grad_fn(
                trainable_variables, non_trainable_variables, _images(data)
            )
            trainable_variables, optimizer_variables = self.optimizer.stateless_apply(
                optimizer_variables, grads, trainable_variables
            )
            logs, new_metrics_variables = {}, []
            for tracker, value in zip(self.metrics, losses):
                start = len(new_metrics_variables)
                own = metrics_variables[start : start + len(tracker.variables)]
                own = tracker.stateless_update_state(own, value)
                logs[tracker.name] = tracker.stateless_result(own)
                new_metrics_variables += own
            state = (
                trainable_variables,
                non_trainable_variables,
                optimizer_variables,
                new_metrics_variables,
            )
            return logs, state

    return VAE


def _torch_vae(keras, net):
    """The step of the keras.io PyTorch guide: ``backward()``, then the optimizer without grad."""
    import torch

    class VAE(_vae_base(keras, net)):
        def train_step(self, data):
            self.zero_grad()
            _, losses = self(_images(data), training=True, with_losses=True)
            losses[0].backward()
            trainable_weights = list(self.trainable_weights)
            gradients = [weight.value.grad for weight in trainable_weights]
            with torch.no_grad():
                self.optimizer.apply(gradients, trainable_weights)
            for tracker, value in zip(self.metrics, losses):
                tracker.update_state(value)
            return {tracker.name: tracker.result() for tracker in self.metrics}

    return VAE


VAE_OF_BACKEND = {"tensorflow": _tensorflow_vae, "jax": _jax_vae, "torch": _torch_vae}


def _build(keras, net, vae_class):
    images = network.encoder_input(keras, net)
    mu, log_var = network.encoder_body(keras, net, images)
    z = network.sampling_layer(keras, net)([mu, log_var])
    encoder = keras.Model(images, [z, mu, log_var], name="encoder")
    decoder = network.decoder_model(keras, net)
    vae = vae_class(keras, net)(encoder, decoder, name="vae")
    vae.compile(**network.compile_options(keras, net))
    return Built(
        model=vae,
        mean_encoder=keras.Model(images, mu),
        decoder=decoder,
        fit_targets=no_targets,
        log_keys=dict(LOG_KEYS),
    )


def build(keras, net):
    return _build(keras, net, _tensorflow_vae)


def build_keras3_port(keras, net):
    """The port for Keras 3 on JAX or PyTorch; TensorFlow runs the recipe as written."""
    backend = keras_backend(keras)
    if backend == "tensorflow":
        raise ValueError("gradient_tape runs as written on TensorFlow: it has no port there")
    return _build(keras, net, VAE_OF_BACKEND[backend])
