"""The recipes the harness knows: ``vae_impls.registry``, plus test recipes when asked for.

Every part of the harness that names, orders or builds recipes asks this module, so a recipe
added here is known to the planner, the statistics, the gate and the plots alike.

For tests only, the environment variable ``KLBENCH_EXTRA_RECIPES`` may name modules
(comma-separated) with the registry's interface (``RECIPES``, ``status(name, api)``,
``build(name, api, keras, net)``) whose recipes are added; it is unset in normal use.
"""

import importlib
import os

from bench.errors import UsageError
from vae_impls import registry
from vae_impls.keras_api import APIS

EXTRA_RECIPES_ENV = "KLBENCH_EXTRA_RECIPES"
UNKNOWN = "unknown"


def _sources() -> list:
    names = [
        name.strip() for name in os.environ.get(EXTRA_RECIPES_ENV, "").split(",") if name.strip()
    ]
    try:
        return [registry, *(importlib.import_module(name) for name in names)]
    except ImportError as error:
        raise UsageError(f"{EXTRA_RECIPES_ENV}: cannot import {error.name!r}") from None


def _source_of(recipe: str):
    for source in _sources():
        if recipe in source.RECIPES:
            return source
    raise registry.UnknownRecipe(f"unknown recipe {recipe!r}; valid recipes: {', '.join(known())}")


def known() -> dict:
    """Recipe name -> ``registry.Recipe``, the registry's first."""
    return {name: recipe for source in _sources() for name, recipe in source.RECIPES.items()}


def status(recipe: str, api: str) -> str:
    """``works``, ``fails`` or ``n/a`` as registered; ``unknown`` for a name nobody registered."""
    try:
        return _source_of(recipe).status(recipe, api)
    except (registry.UnknownRecipe, ValueError):
        return UNKNOWN


def build(recipe: str, api: str, keras, net):
    return _source_of(recipe).build(recipe, api, keras, net)


def kernel_of(recipe: str) -> str:
    """The recipe whose notebook cells ``recipe`` runs in a Jupyter kernel; "" for a recipe the
    worker trains itself."""
    return getattr(known().get(recipe), "kernel_of", "")


def includes_kl(recipe: str) -> bool:
    """False for the floor, which minimizes BCE alone: its losses compare with no other's."""
    found = known().get(recipe)
    return found.includes_kl if found else recipe != registry.FLOOR


def order_key(recipe: str, api: str = "") -> tuple:
    """Registry order of recipes, then API order: every table and figure reads the same way."""
    names = list(known())
    return (
        names.index(recipe) if recipe in names else len(names),
        recipe,
        APIS.index(api) if api in APIS else len(APIS),
        api,
    )
