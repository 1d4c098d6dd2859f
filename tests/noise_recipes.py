"""A recipe whose train step calls the encoder twice, for the noise-draw tests only: enabled by
``KLBENCH_EXTRA_RECIPES=tests.noise_recipes``, with the registry's interface (``RECIPES``,
``status``, ``build``). It computes the shared objective, but its sampling layer draws twice per
step, so from the second step on it trains with other noise than the others of its round."""

from tests import own_recipes
from vae_impls import registry

ENCODER_DRAWN_TWICE = "encoder_drawn_twice"
_RECIPE = own_recipes.recipe(ENCODER_DRAWN_TWICE, encoder_twice=True, apis=frozenset({"keras3"}))
RECIPES = {ENCODER_DRAWN_TWICE: _RECIPE.RECIPE}


def status(name: str, api: str) -> str:
    return registry.WORKS if api in RECIPES[name].runs_as_written else registry.NOT_APPLICABLE


def build(name: str, api: str, keras, net):
    return _RECIPE.build(keras, net)
