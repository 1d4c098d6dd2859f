"""The one objective every KL recipe minimizes, and an independent numpy version of it.

loss = BCE + fact * KL, with BCE Keras' binary cross-entropy averaged over pixels and batch, and
KL = -mean(1 + log_var - mu^2 - exp(log_var)) over batch and latent dimensions (posts V-VII).

Keras 2 computes the terms with TensorFlow ops, as the posts do; Keras 3 with ``keras.ops``, so
that the same code runs on TensorFlow, JAX and PyTorch. Importing this module imports no backend.

Their signatures are part of a recipe's interface (docs/own-recipes.md): a recipe written against
an earlier form gets a ``SignatureChanged`` error saying what changed and how to call it now.
"""

import numpy as np

from vae_impls.common import is_keras2

# Keras clips probabilities to this before taking logs; the numpy reference does the same.
KERAS_EPSILON = 1e-7
_NOT_GIVEN = object()


class SignatureChanged(TypeError):
    """A helper called in a form it no longer has."""


def _is_keras(module) -> bool:
    """Whether ``module`` is the Keras a recipe's ``build(keras, net)`` received (2 or 3)."""
    return all(hasattr(module, name) for name in ("layers", "Model", "losses"))


def kl_loss(keras, mu, log_var, fact=_NOT_GIVEN):
    """The posts' KL term, already scaled by ``fact``.

    The Keras module comes first (2026-11-28), so that the same call computes with TensorFlow
    ops on Keras 2 and with ``keras.ops`` on every Keras 3 backend; the earlier
    ``kl_loss(mu, log_var, fact)`` is refused with that fix.
    """
    if fact is _NOT_GIVEN or not _is_keras(keras):
        raise SignatureChanged(
            "kl_loss takes the Keras module first since 2026-11-28: call "
            "kl_loss(keras, mu, log_var, fact) with the keras your build(keras, net) received "
            "instead of kl_loss(mu, log_var, fact)"
        )
    if is_keras2(keras):
        import tensorflow as tf

        return -fact * tf.reduce_mean(1 + log_var - tf.square(mu) - tf.exp(log_var))
    ops = keras.ops
    return -fact * ops.mean(1 + log_var - ops.square(mu) - ops.exp(log_var))


def reconstruction_loss(keras, images, reconstructions):
    """Binary cross-entropy averaged over pixels and batch."""
    if not _is_keras(keras):
        raise SignatureChanged(
            "reconstruction_loss(keras, images, reconstructions) takes the Keras module first: "
            "pass the keras your build(keras, net) received"
        )
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
