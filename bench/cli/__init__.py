"""One module per command verb: ``python -m bench <verb>`` runs ``bench.cli.<verb>``.

Each module has a docstring (its help text), ``add_arguments(parser)`` and ``run(args) -> int``.
"""

VERBS = ("run", "sweep", "list", "report", "check", "compare", "history")
