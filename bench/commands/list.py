"""List the recipes (post and technique), the Keras APIs, and which recipe runs under which API.

Status per recipe x API: "works" (runs as written), "fails" (raises as written: the benchmark
still runs it and records the failure) and "n/a" (no such variant: the benchmark skips it).
"""
from bench import plan
from vae_impls.keras_api import APIS, PACKAGE_OF_API


def add_arguments(parser) -> None:
    pass  # nothing to choose


def run(args) -> int:
    recipes = plan.known_recipes()
    print("Recipes:")
    print(_table(["recipe", "post", "technique"],
                 [[name, recipe.post, recipe.technique] for name, recipe in recipes.items()]))
    print("\nAPIs:")
    print(_table(["api", "package"], [[api, PACKAGE_OF_API[api]] for api in APIS]))
    print("\nWhat runs where:")
    print(_table(["recipe", *APIS], [[name, *(plan.status(name, api) for api in APIS)] for name in recipes]))
    return 0


def _table(header: list, rows: list) -> str:
    widths = [max(len(str(line[column])) for line in (header, *rows)) for column in range(len(header))]
    lines = ["  ".join(str(text).ljust(width) for text, width in zip(line, widths)).rstrip()
             for line in (header, *rows)]
    return "\n".join([lines[0], "-" * max(len(line) for line in lines), *lines[1:]])
