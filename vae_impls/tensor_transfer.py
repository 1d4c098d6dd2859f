"""KL loss through tensor transfer and multiple outputs (post VI; post VII solution_type 1).

The encoder model outputs ``[z, mu, log_var]``; the decoder model takes ``[z, mu, log_var]`` and
passes mu and log_var through beside the reconstruction; the VAE therefore has three outputs,
each with its own Keras loss function: binary cross-entropy for the image, and for the two
transferred tensors the two halves of the KL term (``fact * mean(mu^2)`` and
``-fact * mean(1 + log_var - exp(log_var))``, whose sum is the shared KL). ``fit()`` gets dummy
zero targets for mu and log_var, which those losses ignore.

Differences from the post: the shared ``Sampling`` layer replaces the ``Lambda``; identity
layers named ``vae_out_*`` give the outputs the post's names.

Backends. As written the two KL losses are ``tf.function``s of TensorFlow ops: the recipe runs
unchanged on Keras 2 and on Keras 3 with TensorFlow, and is not applicable (``n/a``) on JAX and
PyTorch, whose processes never import TensorFlow. ``build_keras3_port`` is the one change that
makes it backend-neutral: the same two losses as plain functions of ``keras.ops``; the model,
its outputs and the compile call are the recipe's own.
"""

from vae_impls import network
from vae_impls.common import Built, zeros_like_latent

OUTPUTS = ("vae_out_main", "vae_out_mu", "vae_out_var")


def _kl_halves(fact):
    import tensorflow as tf

    @tf.function
    def mu_loss(y_true, y_pred):
        return fact * tf.reduce_mean(tf.square(y_pred))

    @tf.function
    def logvar_loss(y_true, y_pred):
        return -fact * tf.reduce_mean(1 + y_pred - tf.exp(y_pred))

    return mu_loss, logvar_loss


def _backend_neutral_kl_halves(keras, fact):
    ops = keras.ops

    def mu_loss(y_true, y_pred):
        return fact * ops.mean(ops.square(y_pred))

    def logvar_loss(y_true, y_pred):
        return -fact * ops.mean(1 + y_pred - ops.exp(y_pred))

    return mu_loss, logvar_loss


def _decoder_with_transfer(keras, net):
    z = keras.Input(shape=(net.z_dim,), name="decoder_input")
    mu = keras.Input(shape=(net.z_dim,), name="decoder_mu_input")
    log_var = keras.Input(shape=(net.z_dim,), name="decoder_log_var_input")
    passed_on = [
        keras.layers.Activation("linear", name=f"decoder_{n}_out")(t)
        for n, t in (("mu", mu), ("log_var", log_var))
    ]
    reconstruction = network.decoder_body(keras, net, z)
    return keras.Model([z, mu, log_var], [reconstruction, *passed_on], name="decoder")


def _build(keras, net, kl_halves):
    images = network.encoder_input(keras, net)
    mu, log_var = network.encoder_body(keras, net, images)
    z = network.sampling_layer(keras, net)([mu, log_var])
    encoder = keras.Model(images, [z, mu, log_var], name="encoder")
    decoder = _decoder_with_transfer(keras, net)
    decoded = decoder(encoder(images))
    outputs = [keras.layers.Activation("linear", name=name)(t) for name, t in zip(OUTPUTS, decoded)]
    vae = keras.Model(images, outputs, name="vae")
    mu_loss, logvar_loss = kl_halves
    vae.compile(
        loss=dict(zip(OUTPUTS, ("binary_crossentropy", mu_loss, logvar_loss))),
        **network.compile_options(keras, net),
    )

    def fit_targets(x):
        dummy = zeros_like_latent(x, net.z_dim)
        return dict(zip(OUTPUTS, (x, dummy, dummy)))

    image_decoder = keras.Model(decoder.inputs[0], decoder.outputs[0])
    return Built(
        model=vae,
        mean_encoder=keras.Model(images, mu),
        decoder=image_decoder,
        fit_targets=fit_targets,
        log_keys={
            "loss": ("loss",),
            "bce": ("vae_out_main_loss",),
            "kl": ("vae_out_mu_loss", "vae_out_var_loss"),
        },
    )


def build(keras, net):
    return _build(keras, net, _kl_halves(net.fact))


def build_keras3_port(keras, net):
    return _build(keras, net, _backend_neutral_kl_halves(keras, net.fact))
