"""What a results folder covers: which planned runs did not finish, and which recipe runs where.

The plan stored with the results (plan.json) says which runs were due; a folder without one is
judged by the runs it holds. A run that fails as the registry expects (its recipe raises as
written on that Keras, with the registered error) is part of the answer, not a run gone wrong:
``failed_as_registered`` tells the two apart.
"""

import pandas as pd

from bench import recipes
from bench.analysis.selection import in_registry_order
from bench.results.records import FAILED, OK
from vae_impls import registry
from vae_impls.keras_api import APIS, PORT_API

NOT_RUN = "not run"


def _planned_pairs(runs: pd.DataFrame, planned) -> list:
    if planned is None:
        return list(dict.fromkeys(zip(runs.recipe, runs.api)))
    return list(dict.fromkeys((run.recipe, run.api) for run in planned))


def _observed(group: pd.DataFrame) -> tuple:
    """(status, error) seen for one recipe x API: ok if any run was, else the first problem."""
    if group.empty:
        return NOT_RUN, ""
    if (group.status == OK).any():
        return OK, ""
    first = group.iloc[0]
    return first.status, first.error


def _cell(expected: str, observed: str, api: str) -> str:
    if observed == "failed":
        return registry.FAILS
    if expected == registry.WORKS and api == PORT_API:
        return "port"
    return expected


def compatibility(runs: pd.DataFrame, planned=None) -> pd.DataFrame:
    """Every known recipe x the APIs run or planned: the registry's status, what the runs showed
    (``not run`` for a planned pair without runs, "" for a pair nobody asked for) and the cell
    shown: works / fails / port / n/a, where an observed failure overrides the registry."""
    planned_pairs = set(_planned_pairs(runs, planned))
    known = recipes.known()
    names = list(dict.fromkeys([*known, *runs.recipe]))
    used_apis = set(runs.api) | {api for _, api in planned_pairs}
    # a folder without runs still gets the registry's whole matrix
    apis = [api for api in APIS if api in used_apis] + sorted(used_apis - set(APIS)) or list(APIS)
    rows = []
    for recipe in names:
        for api in apis:
            expected = recipes.status(recipe, api)
            observed, error = _observed(runs[(runs.recipe == recipe) & (runs.api == api)])
            if observed == NOT_RUN and (recipe, api) not in planned_pairs:
                observed = ""
            cell = _cell(expected, observed, api)
            if not error and cell == registry.FAILS and recipe in known:
                error = known[recipe].expected_errors.get(api, "")
            rows.append(
                {
                    "recipe": recipe,
                    "api": api,
                    "expected": expected,
                    "observed": observed,
                    "cell": cell,
                    "error": error,
                }
            )
    return pd.DataFrame(rows, columns=["recipe", "api", "expected", "observed", "cell", "error"])


def expected_error(recipe: str, api: str) -> str:
    """The text the registry says ``recipe``'s error contains on ``api`` as written; "" where it
    registers none."""
    found = recipes.known().get(recipe)
    return getattr(found, "expected_errors", {}).get(api, "") if found else ""


def failed_as_registered(recipe: str, api: str, status: str, error: str) -> bool:
    """Whether a run ended exactly as the registry expects a failure: its recipe is registered to
    fail on ``api`` as written, the run failed, and its error holds the registered text."""
    return (
        status == FAILED
        and recipes.status(recipe, api) == registry.FAILS
        and expected_error(recipe, api) in error
    )


def registered_mask(frame: pd.DataFrame) -> pd.Series:
    """Per row of a frame with recipe, api, status and error: ``failed_as_registered``."""
    return pd.Series(
        [
            failed_as_registered(row.recipe, row.api, row.status, row.error)
            for row in frame.itertuples()
        ],
        index=frame.index,
        dtype=bool,
    )


def unfinished_runs(runs: pd.DataFrame, planned=None) -> pd.DataFrame:
    """Runs that did not finish ok, and planned runs missing from the folder."""
    failed = runs.loc[runs.status != OK, ["recipe", "api", "repeat", "status", "error"]]
    done = set(runs.run_id)
    missing = pd.DataFrame(
        [
            {
                "recipe": run.recipe,
                "api": run.api,
                "repeat": run.repeat,
                "status": NOT_RUN,
                "error": "",
            }
            for run in planned or ()
            if run.run_id not in done
        ],
        columns=failed.columns,
    )
    return in_registry_order(pd.concat([failed, missing], ignore_index=True))
