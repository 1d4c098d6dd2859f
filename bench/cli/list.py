"""List the recipes (post and technique), the Keras APIs, and which recipe runs under which API.

Status per recipe x API: "works" (runs as written), "fails" (raises as written: the benchmark
still runs it and records the failure), "n/a" (no such variant: the benchmark skips it) and
"not installed" (the API's backend is an extra this install lacks: ``pip install -e '.[torch]'``).
--recipe PATH lists a recipe of your own among them, as a run with that --recipe would plan it
(its file is imported in a process of its own to read its declaration).
"""

from bench import recipes
from bench.cli.common import add_recipe_argument
from bench.formatting import text_table
from vae_impls import keras_api
from vae_impls.keras_api import APIS

NOT_INSTALLED = "not installed"


def add_arguments(parser) -> None:
    add_recipe_argument(parser)


def run(args) -> int:
    with recipes.loading_allowed():  # the files the command line names, and those alone
        recipes.use(args.recipe)
    known = recipes.known()
    print("Recipes:")
    print(
        text_table(
            ["recipe", "post", "technique"],
            [[name, recipe.post, recipe.technique] for name, recipe in known.items()],
        )
    )
    print("\nAPIs:")
    print(text_table(["api", "package", "backend", "installed"], [_api_row(api) for api in APIS]))
    print("\nWhat runs where:")
    print(text_table(["recipe", *APIS], [_status_row(name) for name in known]))
    return 0


def _api_row(api: str) -> list:
    missing = keras_api.not_installed_reason(api)
    return [
        api,
        keras_api.package_for(api),
        keras_api.backend_of(api),
        "yes" if not missing else f"no: {missing.split('(', 1)[-1].rstrip(')')}",
    ]


def _status_row(name: str) -> list:
    """A recipe's status on each API; "not installed" where the API cannot run here (what it
    would do there is the registry's, shown once installed)."""
    return [
        name,
        *(recipes.status(name, api) if keras_api.installed(api) else NOT_INSTALLED for api in APIS),
    ]
