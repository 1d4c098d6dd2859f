"""How the report and the verbs name the code a folder ran: its short commit, and a dirty tree."""

from bench.formatting import MISSING


def commit_text(git: dict, length: int = 7, unknown: str = MISSING) -> str:
    """'0123456' or '0123456 (dirty)' from env.json's git table (its commit and whether the tree
    had changes); ``unknown`` where the folder does not record a commit."""
    commit = git.get("commit") if isinstance(git, dict) else None
    if not commit:
        return unknown
    return str(commit)[:length] + (" (dirty)" if git.get("dirty") else "")
