"""The recipes the harness knows: ``vae_impls.registry``'s, then users' own.

Every part of the harness that names, orders or builds recipes asks this module, so a recipe
added here is known to the planner, the statistics, the gate and the plots alike.

A user recipe lives outside kl-bench: a module with a docstring, ``build(keras, net)`` (and
``build_keras3_port`` where it has a Keras 3 port) and ``RECIPE = vae_impls.registry.Recipe(...)``
saying where it runs as written. It is named by a file path (``my_recipe.py``) or an importable
``module`` / ``module:attribute``. ``use`` checks such names and hands them to every process the
manager starts through ``RECIPE_PATHS_ENV`` (a JSON list), so a worker builds the same recipes;
the config's ``[matrix] recipe_paths`` keeps them in the results folder for ``--resume``.

For tests only, the environment variable ``KLBENCH_EXTRA_RECIPES`` may name modules
(comma-separated) with the registry's interface (``RECIPES``, ``status(name, api)``,
``build(name, api, keras, net)``) whose recipes are added; it is unset in normal use.
"""

import importlib
import importlib.util
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.errors import UsageError, quoted, summarize_exception
from vae_impls import registry
from vae_impls.keras_api import APIS, is_port

EXTRA_RECIPES_ENV = "KLBENCH_EXTRA_RECIPES"
RECIPE_PATHS_ENV = "KLBENCH_RECIPE_PATHS"
UNKNOWN = "unknown"
PORT_BUILDER = "build_keras3_port"
# The package a user recipe file is imported under: its own name space, never a project module.
USER_PACKAGE = "kl_bench_user_recipes"


@dataclass(frozen=True)
class UserRecipe:
    """A recipe of the user's own: where it came from, its declaration and its module."""

    spec: str  # an absolute file path, or ``module`` / ``module:attribute``
    recipe: registry.Recipe
    source: object  # the module (or attribute) with ``build`` and perhaps ``build_keras3_port``

    def status(self, api: str) -> str:
        """As its declaration says (``registry.Recipe.status``); a port only where the module
        has one to build."""
        if is_port(api) and not hasattr(self.source, PORT_BUILDER):
            return registry.NOT_APPLICABLE
        return self.recipe.status(api)

    def build(self, api: str, keras, net):
        if self.status(api) == registry.NOT_APPLICABLE:
            raise ValueError(f"recipe {self.recipe.name!r} has no {api} variant")
        builder = getattr(self.source, PORT_BUILDER) if is_port(api) else self.source.build
        return builder(keras, net)


# --- naming and loading a user recipe ------------------------------------------------------------


def is_file_spec(spec: str) -> bool:
    """Whether ``spec`` names a file (``dir/x.py``) rather than an importable module."""
    return spec.endswith(".py") or "/" in spec or os.sep in spec


def resolved(spec: str) -> str:
    """``spec`` as it is recorded: a file as its absolute path (so that ``--resume`` finds it from
    anywhere), a module name as given; a UsageError for a file that does not exist."""
    if not isinstance(spec, str) or not spec.strip():
        raise UsageError(f"a recipe must be a file path or a module name, got {quoted(spec)}")
    if not is_file_spec(spec):
        if not re.fullmatch(r"[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?", spec):
            raise UsageError(f"{spec}: neither a .py file nor a module or module:attribute name")
        return spec
    path = Path(spec).expanduser().resolve()
    if not path.is_file():
        raise UsageError(f"{spec}: no such recipe file")
    return str(path)


def load(spec: str) -> UserRecipe:
    """The user recipe ``spec`` names, imported and checked; a UsageError naming the file (or
    module) and its problem otherwise."""
    spec = resolved(spec)
    source = _imported(spec)
    if not callable(getattr(source, "build", None)):
        raise UsageError(f"{spec}: no build(keras, net) function")
    declared = getattr(source, "RECIPE", None)
    if not isinstance(declared, registry.Recipe):
        raise UsageError(
            f"{spec}: no RECIPE = vae_impls.registry.Recipe(name=..., post=..., technique=..., "
            "runs_as_written=...) saying where it runs"
        )
    _check_declaration(spec, declared)
    return UserRecipe(spec, declared, source)


def _imported(spec: str):
    """The module (or attribute) ``spec`` names; any error of its import is the file's problem."""
    try:
        if is_file_spec(spec):
            return _module_of_file(Path(spec))
        module_name, _, attribute = spec.partition(":")
        module = importlib.import_module(module_name)
        return getattr(module, attribute) if attribute else module
    except UsageError:
        raise
    except Exception as error:  # the user's code: a SyntaxError, an ImportError, anything
        raise UsageError(f"{spec}: cannot import: {summarize_exception(error)}") from None


def _module_of_file(path: Path):
    name = f"{USER_PACKAGE}.{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}"
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(path):
        return sys.modules[name]
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # what pickling or a dataclass in the module looks up
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _check_declaration(spec: str, declared: registry.Recipe) -> None:
    name = declared.name
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
        raise UsageError(f"{spec}: RECIPE name {quoted(name)} must be letters, digits and '_'")
    if name in registry.RECIPES:
        raise UsageError(
            f"{spec}: recipe name {name!r} clashes with the built-in recipe of that name; "
            "give RECIPE another name"
        )
    unknown = sorted(set(declared.runs_as_written) - set(APIS))
    if unknown:
        raise UsageError(
            f"{spec}: RECIPE runs_as_written names unknown API {unknown[0]!r}; "
            f"valid APIs: {', '.join(APIS)}"
        )


def load_all(specs) -> dict:
    """Recipe name -> ``UserRecipe`` of each of ``specs``; a UsageError for two of one name."""
    found = {}
    for spec in specs:
        user = load(spec)
        other = found.get(user.recipe.name)
        if other is not None and other.spec != user.spec:
            raise UsageError(
                f"{user.spec}: recipe name {user.recipe.name!r} is also the name of {other.spec}"
            )
        found[user.recipe.name] = user
    return found


def use(specs) -> tuple:
    """Check ``specs`` (file paths or module names) and make their recipes known here and in every
    process started from here on; returns them as recorded (files as absolute paths)."""
    if not isinstance(specs, (list, tuple)) or not all(isinstance(s, str) for s in specs):
        raise UsageError(f"recipe paths must be a list of strings, got {quoted(specs)}")
    recorded = tuple(dict.fromkeys(resolved(spec) for spec in specs))
    for user in load_all(recorded).values():
        _importable_in_workers(user.spec)
    if recorded:
        os.environ[RECIPE_PATHS_ENV] = json.dumps(list(recorded))
    else:
        os.environ.pop(RECIPE_PATHS_ENV, None)
    return recorded


def _importable_in_workers(spec: str) -> None:
    """A module name found here (say, from the current folder) is found by every process started
    from here on too: its package's folder joins their PYTHONPATH."""
    if is_file_spec(spec):
        return
    top = importlib.util.find_spec(spec.partition(":")[0].split(".")[0])
    locations = list(top.submodule_search_locations or []) if top else []
    origin = locations[0] if locations else getattr(top, "origin", None)
    folder = str(Path(origin).resolve().parent) if origin else ""
    paths = [entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
    if folder and folder not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([*paths, folder])


def user_recipes() -> dict:
    """Recipe name -> ``UserRecipe`` of the recipes ``use`` made known (in this process or the
    manager that started it)."""
    text = os.environ.get(RECIPE_PATHS_ENV, "")
    if text not in _loaded:  # every status() and known() asks: load each list once
        try:
            specs = json.loads(text) if text else []
        except ValueError:
            raise UsageError(f"{RECIPE_PATHS_ENV} is not a JSON list: {quoted(text)}") from None
        _loaded[text] = load_all(specs)
    return _loaded[text]


_loaded = {}  # RECIPE_PATHS_ENV's text -> what user_recipes() found for it


def origins() -> dict:
    """Recipe name -> where each user recipe came from (its file or module)."""
    return {name: user.spec for name, user in user_recipes().items()}


def recorded(specs) -> dict:
    """Recipe name -> ``UserRecipe`` of each of ``specs`` (a results folder's ``[matrix]
    recipe_paths``) that still loads: a report of a folder whose recipe file has moved since
    still renders, without that recipe's declaration."""
    found = {}
    for spec in specs if isinstance(specs, list) else []:
        try:
            user = load(spec)
        except UsageError:
            continue
        found.setdefault(user.recipe.name, user)
    return found


# --- every recipe ------------------------------------------------------------------------------


def _test_sources() -> list:
    names = [
        name.strip() for name in os.environ.get(EXTRA_RECIPES_ENV, "").split(",") if name.strip()
    ]
    try:
        return [importlib.import_module(name) for name in names]
    except ImportError as error:
        raise UsageError(f"{EXTRA_RECIPES_ENV}: cannot import {error.name!r}") from None


def _sources() -> list:
    return [registry, *_test_sources()]


def known() -> dict:
    """Recipe name -> ``registry.Recipe``: the registry's first, then tests', then users'."""
    found = {name: recipe for source in _sources() for name, recipe in source.RECIPES.items()}
    return {**found, **{name: user.recipe for name, user in user_recipes().items()}}


def status(recipe: str, api: str) -> str:
    """``works``, ``fails`` or ``n/a`` as registered; ``unknown`` for a name nobody registered."""
    try:
        user = user_recipes().get(recipe)
        return user.status(api) if user else _source_of(recipe).status(recipe, api)
    except (registry.UnknownRecipe, ValueError):
        return UNKNOWN


def build(recipe: str, api: str, keras, net):
    user = user_recipes().get(recipe)
    return (
        user.build(api, keras, net) if user else _source_of(recipe).build(recipe, api, keras, net)
    )


def _source_of(recipe: str):
    for source in _sources():
        if recipe in source.RECIPES:
            return source
    raise registry.UnknownRecipe(f"unknown recipe {recipe!r}; valid recipes: {', '.join(known())}")


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
