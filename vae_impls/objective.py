"""The one objective every KL recipe minimizes, and an independent numpy version of it.

loss = BCE + fact * KL, with BCE Keras' binary cross-entropy averaged over pixels and batch, and
KL = -mean(1 + log_var - mu^2 - exp(log_var)) over batch and latent dimensions (posts V-VII).

Keras 2 computes the terms with TensorFlow ops, as the posts do; Keras 3 with ``keras.ops``, so
that the same code runs on TensorFlow, JAX and PyTorch. Importing this module imports no backend.
"""

import numpy as np

from vae_impls.common import is_keras2

# Keras clips probabilities to this before taking logs; the numpy reference does the same.
KERAS_EPSILON = 1e-7


def kl_loss(keras, mu, log_var, fact):
    """The posts' KL term, already scaled by ``fact``."""
    if is_keras2(keras):
        import tensorflow as tf

        return -fact * tf.reduce_mean(1 + log_var - tf.square(mu) - tf.exp(log_var))
    ops = keras.ops
    return -fact * ops.mean(1 + log_var - ops.square(mu) - ops.exp(log_var))


def reconstruction_loss(keras, images, reconstructions):
    per_pixel = keras.losses.binary_crossentropy(images, reconstructions)
    if is_keras2(keras):
        import tensorflow as tf

        return tf.reduce_mean(per_pixel)
    return keras.ops.mean(per_pixel)


def numpy_objective(images, reconstructions, mu, log_var, fact) -> dict:
    """Reference values in float64 from the network's outputs."""
    x = np.asarray(images, np.float64)
    p = np.clip(np.asarray(reconstructions, np.float64), KERAS_EPSILON, 1 - KERAS_EPSILON)
    bce = -np.mean(x * np.log(p) + (1 - x) * np.log(1 - p))
    mu, log_var = np.asarray(mu, np.float64), np.asarray(log_var, np.float64)
    kl = -fact * np.mean(1 + log_var - mu**2 - np.exp(log_var))
    return {"loss": bce + kl, "bce": bce, "kl": kl}
