"""List the recipes (post and technique), the Keras APIs, and which recipe runs under which API.

Status per recipe x API: "works" (runs as written), "fails" (raises as written: the benchmark
still runs it and records the failure) and "n/a" (no such variant: the benchmark skips it).
"""

from bench import recipes
from bench.formatting import text_table
from vae_impls.keras_api import APIS, PACKAGE_OF_API


def add_arguments(parser) -> None:
    pass  # nothing to choose


def run(args) -> int:
    known = recipes.known()
    print("Recipes:")
    print(
        text_table(
            ["recipe", "post", "technique"],
            [[name, recipe.post, recipe.technique] for name, recipe in known.items()],
        )
    )
    print("\nAPIs:")
    print(text_table(["api", "package"], [[api, PACKAGE_OF_API[api]] for api in APIS]))
    print("\nWhat runs where:")
    print(
        text_table(
            ["recipe", *APIS],
            [[name, *(recipes.status(name, api) for api in APIS)] for name in known],
        )
    )
    return 0
