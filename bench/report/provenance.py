"""What the verbs say a folder ran: its short commit and a dirty tree, and the backends compared."""

from bench.formatting import MISSING
from bench.results.env import NOT_A_CHECKOUT
from vae_impls import keras_api, registry


def commit_text(git: dict, length: int = 7, unknown: str = MISSING) -> str:
    """'0123456' or '0123456 (dirty)' from env.json's git table (its commit and whether the tree
    had changes); ``unknown`` where the folder does not record a commit."""
    commit = git.get("commit") if isinstance(git, dict) else None
    if not commit:
        return unknown
    if commit == NOT_A_CHECKOUT:  # a copy of the tree inside another repository, or none
        return NOT_A_CHECKOUT
    return str(commit)[:length] + (" (dirty)" if git.get("dirty") else "")


def backends_sentence(apis) -> str:
    """ "" for runs of one backend; else the line that says how runs of several are compared:
    each recipe only with runs of its own backend, its ratio to that backend's floor."""
    used = sorted({keras_api.backend_of(api) for api in apis if api in keras_api.APIS})
    if len(used) < 2:
        return ""
    return (
        f"backends: {', '.join(used)}; a recipe is compared only with runs of its own backend, "
        f"its ratio to {registry.FLOOR} on that backend (separate processes: backends' own "
        "ms/step do not compare)"
    )
