"""What a recipe hands to whoever trains it, and which Keras it was given."""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


def _images_are_targets(images):
    return images


@dataclass(frozen=True)
class Minus:
    """A log key whose value is subtracted: a term derived as a difference of two logged ones."""

    key: str


class MissingLogKey(KeyError):
    """``Built.log_keys`` names, for the metric ``term``, a log ``key`` that the logs lack."""

    def __init__(self, term: str, key: str, logged: tuple):
        super().__init__(key)
        self.term, self.key, self.logged = term, key, tuple(logged)

    def __reduce__(self):  # picklable across processes with its fields
        return type(self), (self.term, self.key, self.logged)


# The metric keys of recipes that add the KL to a compiled Keras loss and log only the KL: Keras
# already logs the total, so BCE = loss - kl needs no second binary cross-entropy per step.
LOSS_MINUS_KL = {"loss": ("loss",), "bce": ("loss", Minus("kl")), "kl": ("kl",)}


@dataclass
class Built:
    """A built, compiled recipe: ``model.fit(x, fit_targets(x))`` trains it.

    ``log_keys`` maps the common metric names to the Keras log keys that hold them, summed when
    a recipe reports a term in parts; a ``Minus(key)`` entry is subtracted, so a term can be
    derived from others (``LOSS_MINUS_KL``). A missing name means the recipe has no such term.
    Deriving a term instead of logging it keeps the metric work per step equal across recipes.
    """

    model: object
    mean_encoder: object  # images -> mu, for latent-space pictures
    decoder: object  # z -> images
    fit_targets: Callable = _images_are_targets
    log_keys: dict = field(default_factory=lambda: dict(LOSS_MINUS_KL))
    # True: train as post VII's notebook calls fit, on numpy arrays with shuffle=True, instead of
    # the tf.data pipeline every other recipe gets.
    fit_on_arrays: bool = False

    def epoch_metrics(self, logs: dict) -> dict:
        """loss, bce and kl under the same names for every recipe (NaN where a term is absent);
        ``MissingLogKey`` where ``log_keys`` names a key that ``logs`` lacks."""
        for name, terms in self.log_keys.items():
            for term in terms:
                key = term.key if isinstance(term, Minus) else term
                if key not in logs:
                    raise MissingLogKey(name, key, tuple(logs))
        return {
            name: _combine(logs, self.log_keys[name]) if name in self.log_keys else float("nan")
            for name in ("loss", "bce", "kl")
        }


def _combine(logs: dict, terms) -> float:
    return float(
        sum(
            -float(logs[term.key]) if isinstance(term, Minus) else float(logs[term])
            for term in terms
        )
    )


def is_keras2(keras) -> bool:
    """Whether ``keras`` is Keras 2 (``tf_keras``), whose code computes with TensorFlow ops, rather
    than Keras 3, whose backend-neutral ops are ``keras.ops`` on TensorFlow, JAX or PyTorch.

    The one place that tells the two apart: every module asks it with the Keras it was given.
    """
    return not hasattr(keras, "ops")


def keras_backend(keras) -> str:
    """``tensorflow``, ``jax`` or ``torch``: what ``keras`` computes with."""
    return "tensorflow" if is_keras2(keras) else keras.backend.backend()


def no_targets(images):
    """For models whose loss is wholly added inside the model: ``fit(x, None)``."""
    return None


def zeros_like_latent(images, z_dim) -> np.ndarray:
    return np.zeros((len(images), z_dim), np.float32)
