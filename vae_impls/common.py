"""What a recipe hands to whoever trains it."""
from dataclasses import dataclass, field
from typing import Callable

import numpy as np


def _images_are_targets(images):
    return images


@dataclass
class Built:
    """A built, compiled recipe: ``model.fit(x, fit_targets(x))`` trains it.

    ``log_keys`` maps the common metric names to the Keras log keys that hold them (summed when
    a recipe reports a term in parts); a missing name means the recipe has no such term.
    """
    model: object
    mean_encoder: object      # images -> mu, for latent-space pictures
    decoder: object           # z -> images
    fit_targets: Callable = _images_are_targets
    log_keys: dict = field(default_factory=lambda: {"loss": ("loss",), "bce": ("bce",), "kl": ("kl",)})

    def epoch_metrics(self, logs: dict) -> dict:
        """loss, bce and kl under the same names for every recipe (NaN where a term is absent)."""
        return {name: float(sum(float(logs[key]) for key in self.log_keys[name])) if name in self.log_keys
                else float("nan") for name in ("loss", "bce", "kl")}


def no_targets(images):
    """For models whose loss is wholly added inside the model: ``fit(x, None)``."""
    return None


def zeros_like_latent(images, z_dim) -> np.ndarray:
    return np.zeros((len(images), z_dim), np.float32)
