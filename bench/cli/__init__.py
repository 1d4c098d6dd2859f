"""One module per command verb: ``python -m bench <verb>`` runs ``bench.cli.<verb>`` (a dash in
the verb is an underscore in the module's name: ``new-recipe`` runs ``bench.cli.new_recipe``).

Each module has a docstring (its help text), ``add_arguments(parser)`` and ``run(args) -> int``.
"""

VERBS = (
    "run",
    "sweep",
    "list",
    "report",
    "check",
    "compare",
    "history",
    "verify",
    "new-recipe",
)


def module_of(verb: str) -> str:
    return f"bench.cli.{verb.replace('-', '_')}"
