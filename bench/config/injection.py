"""A deliberate step-time regression, to prove that the CI gate catches one; never on by default.

``KLBENCH_INJECT_SLOWDOWN="kl_layer/keras2=80"`` makes every training step of kl_layer under
Keras 2 sleep 80 ms longer (several pairs: comma-separated); ``*/keras2=80`` slows every recipe of
Keras 2, the floor's instances included: a slowdown every ratio to the floor cancels, which only
the floor's check against the yardstick catches (docs/gate.md). The sleep is an op inside the traced
train step, so it costs what a slower op would: per step, inside the timed epochs. The runner
records the injection in env.json and the gate prints it, so an injected run is never mistaken
for a normal one. It does not combine with ``xla = "jit_compile"`` (XLA cannot compile a sleep).
"""

import math
import os

from bench.errors import UsageError
from vae_impls.keras_api import APIS

ENV_VAR = "KLBENCH_INJECT_SLOWDOWN"
EVERY_RECIPE = "*"  # in place of a recipe's name: every recipe of the API


def from_environment(known_recipes, environ=os.environ) -> dict:
    """``{"recipe/api": milliseconds per step}`` from ``KLBENCH_INJECT_SLOWDOWN``; {} when unset."""
    injections = {}
    for item in filter(None, (part.strip() for part in environ.get(ENV_VAR, "").split(","))):
        pair, _, milliseconds = item.partition("=")
        recipe, _, api = pair.partition("/")
        if (recipe not in known_recipes and recipe != EVERY_RECIPE) or api not in APIS:
            raise UsageError(
                f"{ENV_VAR}: {item!r} must read RECIPE/API=MS with a known recipe (or "
                f"{EVERY_RECIPE}) and one of {', '.join(APIS)}"
            )
        try:
            delay = float(milliseconds)
        except ValueError:
            delay = math.nan
        if not (math.isfinite(delay) and delay > 0):
            raise UsageError(
                f"{ENV_VAR}: {item!r} needs a positive number of milliseconds after '='"
            )
        injections[pair] = delay
    return injections


def describe(injected: dict) -> str:
    """``kl_layer/keras2 +80 ms/step, ...`` for a report or a log line."""
    return ", ".join(f"{pair} +{milliseconds:g} ms/step" for pair, milliseconds in injected.items())
