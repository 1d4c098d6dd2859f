"""A folder's results-format version, and the upgrades that read older folders as current.

In the manner of asv's ``api_version`` and its ``update_to_N`` functions: a folder records the
version it was created with (env.json's ``results_format``), and every read of it upgrades what
it read, once, version by version (``UPGRADES``), so the analysis and the report read one
format. The upgrades work on what was read, never on the files, and a resumed folder keeps its
version (it adds rows of the current format, and every upgrade leaves a row that is already
current as it is).

Changing the format: raise ``CURRENT``, add its upgrade to ``UPGRADES`` and say what changed
in docs/results-folder.md.
"""

from bench.errors import UsageError

FORMAT_KEY = "results_format"  # env.json's entry that holds the version
UNVERSIONED = 1  # every folder written before the format had a version
CURRENT = 3


def version_of(env: dict) -> int:
    """The results format an env.json (as written) says its folder has: ``UNVERSIONED`` where it
    says none, or nothing readable as one; a UsageError for a format newer than this version of
    the harness reads."""
    version = env.get(FORMAT_KEY)
    if not isinstance(version, int) or isinstance(version, bool) or version < UNVERSIONED:
        return UNVERSIONED
    if version > CURRENT:
        raise UsageError(
            f"results format {version} is newer than this kl-bench reads (up to {CURRENT}): "
            "read the folder with the kl-bench that wrote it, or a newer one"
        )
    return version


def stamped(env: dict, version: int) -> dict:
    """``env`` saying its folder has the results format ``version``."""
    return {**env, FORMAT_KEY: version}


def _own_process_to_2(rows: list, columns: tuple) -> list:
    """Format 1 (before runs shared a worker process, and before blocks.csv named the process):
    each run was a worker process of its own, so an empty process is the run's id."""
    if "process" not in columns:
        return rows
    return [{**row, "process": row.get("process") or row.get("run_id", "")} for row in rows]


def _interval_freedom_to_3(rows: list, columns: tuple) -> list:
    """Format 2 (before a paired ratio's variance was moderated by its API's other ratios):
    ratios.csv had no ``df``, and a paired ratio's interval was a t-interval on its processes
    alone, with n - 1 degrees of freedom; a bootstrap one's was taken as normal (infinite); a
    ratio without an interval has none (NaN)."""
    if not {"method", "n"} <= set(columns):
        return rows
    return [{**row, "df": _freedom_before_3(row)} for row in rows]


def _freedom_before_3(row: dict) -> float:
    freedom = row.get("df")
    if isinstance(freedom, (int, float)) and freedom == freedom:  # already there, not NaN
        return freedom
    if not (isinstance(row.get("n"), (int, float)) and row["n"] >= 2):
        return float("nan")
    return row["n"] - 1 if row.get("method") == "paired" else float("inf")


# version -> how rows of the version before it read in that version: (rows, the file's current
# columns) -> rows. Each upgrade leaves a row that is already of its version as it is.
UPGRADES = {2: _own_process_to_2, 3: _interval_freedom_to_3}


def upgraded_rows(rows: list, columns: tuple, version: int) -> list:
    """A CSV file's rows (dicts of typed values; its current ``columns`` name what it holds) read
    from a folder of format ``version``, as the current format has them."""
    for step in range(version + 1, CURRENT + 1):
        rows = UPGRADES[step](rows, columns)
    return rows


def upgraded_env(env: dict) -> dict:
    """env.json of a folder of any format as the current one: no entry of it has changed since
    format 1, so only its version is raised."""
    return stamped(env, CURRENT)
