"""The recipes the harness knows: ``vae_impls.registry``'s, then users' own.

Every part of the harness that names, orders or builds recipes asks this module, so a recipe
added here is known to the planner, the statistics, the gate and the plots alike.

A user recipe lives outside kl-bench: a module with a docstring, ``build(keras, net)`` (and
``build_keras3_port`` where it has a Keras 3 port) and ``RECIPE = vae_impls.registry.Recipe(...)``
saying where it runs as written. It is named by a file path (``my_recipe.py``) or an importable
``module`` / ``module:attribute``.

Its code runs only where a command is asked to run it. ``load`` imports it first in a child
process of its own (``bench.recipe_import``: a deadline, an exit check) and keeps what the
harness needs of it without its code: a ``UserRecipe`` (its declaration, whether it has a port,
its source file and the hash of that file's text). Only ``UserRecipe.build``, inside a worker,
imports it into a process that goes on. A run records its users' recipes in the results folder
(env.json's ``USER_RECIPES_KEY``); a command that reads a folder ``declare``s them from there and
never imports them. ``use`` (the config's ``[matrix] recipe_paths``) loads only after
``loading_allowed`` (``run``, ``sweep``, ``verify``, ``list --recipe``): reading a config never runs
the code it names. ``RECIPE_PATHS_ENV`` (a JSON list of records) hands the manager's recipes to
every process it starts.

For tests only, the environment variable ``KLBENCH_EXTRA_RECIPES`` may name modules
(comma-separated) with the registry's interface (``RECIPES``, ``status(name, api)``,
``build(name, api, keras, net)``) whose recipes are added; it is unset in normal use.
"""

import contextlib
import dataclasses
import hashlib
import importlib
import importlib.util
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from bench import recipe_import
from bench.errors import UsageError, quoted, summarize_exception
from bench.processes import exit_now
from vae_impls import registry
from vae_impls.keras_api import APIS, is_port

EXTRA_RECIPES_ENV = "KLBENCH_EXTRA_RECIPES"
RECIPE_PATHS_ENV = "KLBENCH_RECIPE_PATHS"
# env.json's key for the records of a run's user recipes (``UserRecipe.record``).
USER_RECIPES_KEY = "user_recipes"
UNKNOWN = "unknown"
PORT_BUILDER = "build_keras3_port"
# The package a user recipe file is imported under: its own name space, never a project module.
USER_PACKAGE = "kl_bench_user_recipes"


@dataclass(frozen=True)
class UserRecipe:
    """A recipe of the user's own as the harness keeps it: where it came from, its declaration,
    and the file (and hash of its text) that was checked; never its code."""

    spec: str  # an absolute file path, or ``module`` / ``module:attribute``
    recipe: registry.Recipe
    has_port: bool = False  # whether the module has ``build_keras3_port``
    source_file: str = ""  # the file imported (a module's ``__file__``)
    source_hash: str = ""  # sha256 of its text when it was checked

    def status(self, api: str) -> str:
        """As its declaration says (``registry.Recipe.status``); a port only where the module
        has one to build."""
        if is_port(api) and not self.has_port:
            return registry.NOT_APPLICABLE
        return self.recipe.status(api)

    def build(self, api: str, keras, net):
        """Its model, built by its module, imported here (in a worker) if it is not yet."""
        if self.status(api) == registry.NOT_APPLICABLE:
            raise ValueError(f"recipe {self.recipe.name!r} has no {api} variant")
        if self.source_file and source_hash(self.source_file) != self.source_hash:
            raise RuntimeError(f"{self.source_file} changed since the run checked it")
        source = imported(self.spec)
        builder = getattr(source, PORT_BUILDER) if is_port(api) else source.build
        return builder(keras, net)

    def record(self) -> dict:
        """JSON-ready: what a results folder keeps of it and what ``from_record`` reads."""
        declared = {
            key: sorted(value) if isinstance(value, frozenset) else value
            for key, value in dataclasses.asdict(self.recipe).items()
        }
        return {
            "spec": self.spec,
            "recipe": declared,
            "has_port": self.has_port,
            "source_file": self.source_file,
            "source_hash": self.source_hash,
        }

    @classmethod
    def from_record(cls, record) -> "UserRecipe":
        """The recipe a ``record`` describes; a ValueError for one this version cannot read."""
        try:
            declared = dict(record["recipe"])
            for key in ("runs_as_written", "ports"):
                declared[key] = frozenset(declared.get(key, ()))
            recipe = registry.Recipe(**declared)
            user = cls(
                str(record["spec"]),
                recipe,
                bool(record.get("has_port", False)),
                str(record.get("source_file", "")),
                str(record.get("source_hash", "")),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"unreadable recipe record ({type(error).__name__}) {error}") from None
        if not isinstance(recipe.name, str) or not all(isinstance(a, str) for a in recipe.ports):
            raise ValueError(f"unreadable recipe record: name {quoted(recipe.name)}")
        return user


def source_hash(path) -> str:
    """sha256 of a file's bytes; "" for one that cannot be read."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


# --- naming and loading a user recipe ------------------------------------------------------------


def is_file_spec(spec: str) -> bool:
    """Whether ``spec`` names a file (``dir/x.py``) rather than an importable module."""
    return spec.endswith(".py") or "/" in spec or os.sep in spec


def resolved(spec: str, must_exist: bool = True) -> str:
    """``spec`` as it is recorded: a file as its absolute path (so that ``--resume`` finds it from
    anywhere), a module name as given; a UsageError for a file that does not exist (unless
    ``must_exist`` is false: a folder being read names a file that may have gone since)."""
    if not isinstance(spec, str) or not spec.strip():
        raise UsageError(f"a recipe must be a file path or a module name, got {quoted(spec)}")
    if not is_file_spec(spec):
        if not re.fullmatch(r"[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?", spec):
            raise UsageError(f"{spec}: neither a .py file nor a module or module:attribute name")
        return spec
    path = Path(spec).expanduser().resolve()
    if must_exist and not path.is_file():
        raise UsageError(f"{spec}: no such recipe file")
    return str(path)


def load(spec: str) -> UserRecipe:
    """The user recipe ``spec`` names, imported and checked in a child process of its own
    (``bench.recipe_import``) and declared here; a UsageError naming the file (or module) and
    its problem otherwise: an import that fails, exits or does not end in time included."""
    spec = resolved(spec)
    user = UserRecipe.from_record(recipe_import.checked_record(spec))
    _declared[spec] = user
    return user


def load_here(spec: str) -> UserRecipe:
    """``load``'s checks in this process: what the child process of ``load`` runs."""
    spec = resolved(spec)
    source = imported(spec)
    if not callable(getattr(source, "build", None)):
        raise UsageError(f"{spec}: no build(keras, net) function")
    declared = getattr(source, "RECIPE", None)
    if not isinstance(declared, registry.Recipe):
        raise UsageError(
            f"{spec}: no RECIPE = vae_impls.registry.Recipe(name=..., post=..., technique=..., "
            "runs_as_written=...) saying where it runs"
        )
    _check_declaration(spec, declared)
    source_file = spec if is_file_spec(spec) else _file_of(spec)
    return UserRecipe(
        spec, declared, hasattr(source, PORT_BUILDER), source_file, source_hash(source_file)
    )


def _file_of(spec: str) -> str:
    module = sys.modules.get(spec.partition(":")[0])
    return str(Path(module.__file__).resolve()) if getattr(module, "__file__", None) else ""


def imported(spec: str):
    """The module (or attribute) ``spec`` names, imported in this process; any error of its
    import, ``sys.exit`` included, is the file's problem: a UsageError naming it."""
    try:
        if is_file_spec(spec):
            return _module_of_file(Path(spec))
        module_name, _, attribute = spec.partition(":")
        module = importlib.import_module(module_name)
        return getattr(module, attribute) if attribute else module
    except UsageError:
        raise
    except SystemExit as stop:
        raise UsageError(f"{spec}: exits at import (sys.exit({stop.code!r}))") from None
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
    """Recipe name -> ``UserRecipe`` of each of ``specs``, each loaded (``load``); a UsageError
    for two of one name."""
    found = {}
    for spec in specs:
        _add(found, load(spec))
    return found


def _add(found: dict, user: UserRecipe) -> None:
    other = found.get(user.recipe.name)
    if other is not None and other.spec != user.spec:
        raise UsageError(
            f"{user.spec}: recipe name {user.recipe.name!r} is also the name of {other.spec}"
        )
    found[user.recipe.name] = user


@contextlib.contextmanager
def loading_allowed():
    """Within: ``use`` imports (``load``) what it is given that no record declares: for the
    commands that run recipes, never for those that read a folder."""
    global _loading_allowed
    before, _loading_allowed = _loading_allowed, True
    try:
        yield
    finally:
        _loading_allowed = before


def forget() -> None:
    """Forget every declared recipe (a test's process reads many folders and configs)."""
    _declared.clear()


def declare(records) -> list:
    """Make the recipes of ``records`` (a results folder's ``USER_RECIPES_KEY``) known here
    without importing anything; a record this version cannot read is left out."""
    declared = []
    for record in records if isinstance(records, list) else []:
        try:
            user = UserRecipe.from_record(record)
        except ValueError:
            continue
        _declared.setdefault(user.spec, user)
        declared.append(user)
    return declared


def use(specs) -> tuple:
    """Check ``specs`` (file paths or module names) and make their recipes known here and in every
    process started from here on; returns them as recorded (files as absolute paths). Each is
    loaded (``load``) only where loading is allowed (``loading_allowed``) and no record declared
    it."""
    if not isinstance(specs, (list, tuple)) or not all(isinstance(s, str) for s in specs):
        raise UsageError(f"recipe paths must be a list of strings, got {quoted(specs)}")
    recorded_specs = tuple(
        dict.fromkeys(resolved(spec, must_exist=_loading_allowed) for spec in specs)
    )
    found = {}
    for spec in recorded_specs:
        user = _declared.get(spec) or (load(spec) if _loading_allowed else None)
        if user is not None:
            _add(found, user)
    if _loading_allowed:
        for user in found.values():
            _importable_in_workers(user.spec)
    if found:
        os.environ[RECIPE_PATHS_ENV] = json.dumps([user.record() for user in found.values()])
    else:
        os.environ.pop(RECIPE_PATHS_ENV, None)
    return recorded_specs


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
    """Recipe name -> ``UserRecipe`` of the recipes this process knows: those ``use`` handed on
    (here or in the manager that started this process), then those declared here. Nothing is
    imported."""
    text = os.environ.get(RECIPE_PATHS_ENV, "")
    if text not in _handed_on:  # every status() and known() asks: read each list once
        try:
            records = json.loads(text) if text else []
        except ValueError:
            raise UsageError(f"{RECIPE_PATHS_ENV} is not a JSON list: {quoted(text)}") from None
        handed = {}
        for record in records if isinstance(records, list) else []:
            try:
                user = UserRecipe.from_record(record)
            except ValueError:
                continue
            handed.setdefault(user.recipe.name, user)
        _handed_on[text] = handed
    found = dict(_handed_on[text])
    for user in _declared.values():
        found.setdefault(user.recipe.name, user)
    return found


_handed_on = {}  # RECIPE_PATHS_ENV's text -> the recipes its records declare
_declared = {}  # spec -> UserRecipe: loaded here, or read from a results folder's records
_loading_allowed = False


def origins() -> dict:
    """Recipe name -> where each user recipe came from (its file or module)."""
    return {name: user.spec for name, user in user_recipes().items()}


def records(specs) -> list:
    """The records (``UserRecipe.record``) of the declared recipes of ``specs``: what a run keeps
    in its results folder so that reading it needs none of their code."""
    return [_declared[spec].record() for spec in specs if spec in _declared]


def recorded(specs) -> dict:
    """Recipe name -> ``UserRecipe`` of each of ``specs`` (a results folder's ``[matrix]
    recipe_paths``) declared here: from the folder's records or a load. Nothing is imported: a
    report of a folder whose recipe has no record renders without that recipe's declaration."""
    found = {}
    for spec in specs if isinstance(specs, list) else []:
        user = _declared.get(spec) if isinstance(spec, str) else None
        if user is not None:
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


# --- the child process of ``load`` ---------------------------------------------------------------


def checked_in_child(argv: list) -> None:
    """In the child process ``bench.recipe_import`` starts: import and check the recipe
    ``argv[0]`` names; write its record, or its one-line problem, as JSON to ``argv[1]``."""
    spec, result = argv
    try:
        answer = {"recipe": load_here(spec).record()}
    except UsageError as error:
        answer = {"error": str(error)}
    Path(result).write_text(json.dumps(answer), encoding="utf-8")
    exit_now(0)  # whatever the recipe left running (threads, atexit hooks) does not hold it


if __name__ == "__main__":
    checked_in_child(sys.argv[1:])
