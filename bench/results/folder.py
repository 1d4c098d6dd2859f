"""The results folder, ``results/<UTC timestamp>-<config name>/``; ``ResultsFolder`` alone reads
and writes it:
  epochs.csv  one row per epoch of a run (``EPOCH_COLUMNS``),
  blocks.csv  one row per timed step of the paired measurement (``BLOCK_COLUMNS``),
  runs.csv    one row per finished run (``RUN_COLUMNS``); a run is finished once its row is here,
  plan.json   the config and the full run order, so ``--resume`` runs only what is missing,
  env.json    versions, hardware, applied device settings, config and command line, and the
              results format's version (``bench.results.format_version``),
  ratios.csv  the ratios with their CIs, as the analysis step computed them,
  outliers.csv  the disturbed process ratios, worst first (the analysis step),
  artifacts/  latent-space pictures as .npz, when the config asks for them,
  profiles/   a profiler trace of each run's train step and its top ops, when the config asks.
A run's epoch and block rows are written before its run row, each append flushed and fsync'd, so a
benchmark killed at any moment keeps every finished run. Every read validates: a row cut off
by a kill (no newline at its end) is an unfinished run and left out; any other row that breaks
the schema is a ``UsageError`` naming the file, the line and the value. A folder of an earlier
results format reads as the current one (``bench.results.format_version``).
"""

import contextlib
import csv
import fcntl
import io
import itertools
import json
import math
import os
import shutil
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

from bench.config import settings as config_module
from bench.config.plan import PlannedRun
from bench.errors import UsageError, quoted
from bench.results import format_version
from bench.results.env import as_written, env_value
from bench.results.records import (
    BLOCK_COLUMNS,
    EPOCH_COLUMNS,
    RETRIED_ON_RESUME,
    RUN_COLUMNS,
    RUN_KEY,
    STATUSES,
    RunRecord,
    parse_row,
    typed_frame,
)

EPOCHS_CSV, RUNS_CSV, BLOCKS_CSV = "epochs.csv", "runs.csv", "blocks.csv"
PLAN_JSON, ENV_JSON, RATIOS_CSV = "plan.json", "env.json", "ratios.csv"
OUTLIERS_CSV = "outliers.csv"  # every disturbed run, furthest first (written by the analysis step)
ARTIFACTS_DIR, PROFILES_DIR = "artifacts", "profiles"
TOP_OPS_FILE = "top_ops.json"  # a profiled run's {op type: ms per step}, in its profile folder
LOCK_FILE, SCRATCH_DIR = ".lock", ".scratch"
FOLDER_TIME_FORMAT = (
    "%Y%m%dT%H%M%SZ"  # a results folder's name: this UTC time, "-", the config's name
)
DETAILS = {
    EPOCHS_CSV: EPOCH_COLUMNS,
    BLOCKS_CSV: BLOCK_COLUMNS,
}  # a run's rows besides its runs.csv row
PLANNED_FIELDS = tuple(field.name for field in fields(PlannedRun))  # a run of plan.json
# A run that ended ok, failed or diverged measured its recipe (a recipe that raises as written is a
# result); one killed or timed out says nothing of it, which is why --resume runs it again.
MEASURED = tuple(status for status in STATUSES if status not in RETRIED_ON_RESUME)
# A benchmark is refused where the disk that holds its results has less free than this: its
# records, pictures and reports, its workers' scratch (compiled steps, traces) and room to spare.
# Refused up front, the disk is named; found mid-run, it stops the benchmark at the first write
# that fails, and a backend whose install ran out of space fails to import without naming it.
MIN_FREE_MB = 256


@dataclass(frozen=True)
class Results:
    """One read of a results folder: runs and epochs as frames, env.json, and the plan."""

    folder: "ResultsFolder"
    runs: object  # pandas.DataFrame of RUN_COLUMNS
    epochs: object  # ... of EPOCH_COLUMNS
    blocks: object  # ... of BLOCK_COLUMNS: the paired measurement, empty for a folder without it
    env: dict
    planned: list | None  # PlannedRun of plan.json; None for a folder without one

    @property
    def measured(self):
        """The runs (of the plan, where there is one) whose status says something of their recipe:
        ``MEASURED``. None of them: the folder measured nothing."""
        measured = self.runs[self.runs.status.isin(MEASURED)]
        if self.planned is None:
            return measured
        return measured[measured.run_id.isin({run.run_id for run in self.planned})]

    @property
    def ends(self) -> str:
        """How the folder's runs ended, counted: "1 killed, 3 timeout"; "" for none."""
        counts = self.runs.status.value_counts().to_dict()
        return ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))


class ResultsFolder:
    """A results folder on disk; the only code that knows its files."""

    def __init__(self, path):
        self.path = Path(path)
        self.name = self.path.name

    def __str__(self) -> str:
        return str(self.path)

    @staticmethod
    def is_folder(path) -> bool:
        """Whether ``path`` is a folder; False, not an OSError, for a name too long to look up."""
        try:
            return Path(path).is_dir()
        except OSError:
            return False

    @staticmethod
    def check_results_dir(results_dir: Path) -> None:
        """A UsageError unless new results folders can be made in ``results_dir``."""
        try:
            existing = next(
                (path for path in (results_dir, *results_dir.parents) if path.exists()), None
            )
        except OSError as error:  # a name too long, say
            raise UsageError(
                f"cannot create results under {results_dir}: {error.strerror or error}"
            ) from None
        if existing is not None and not existing.is_dir():
            raise UsageError(
                f"cannot create results under {results_dir}: {existing} is not a folder"
            )
        if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
            raise UsageError(
                f"cannot create results under {results_dir}: {existing} is not writable"
            )
        if existing is not None:
            ResultsFolder.check_free_space(existing, f"cannot create results under {results_dir}")

    @staticmethod
    def check_free_space(path: Path, refusal: str) -> None:
        """A UsageError starting with ``refusal`` where the disk holding ``path`` has less than
        ``MIN_FREE_MB`` free; nothing where the system cannot tell."""
        try:
            free_mb = shutil.disk_usage(path).free / 2**20
        except OSError:
            return
        if free_mb < MIN_FREE_MB:
            raise UsageError(
                f"{refusal}: the disk holding {path} has {free_mb:.0f} MB free, less than the "
                f"{MIN_FREE_MB} MB a benchmark needs; free some space"
            )

    @classmethod
    def create(
        cls, results_dir: Path, config_name: str, now: datetime | None = None
    ) -> "ResultsFolder":
        """A new, empty results folder; never one another benchmark started at the same second
        uses."""
        cls.check_results_dir(results_dir)
        try:
            results_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UsageError(f"cannot create {results_dir}: {error.strerror}") from None
        stem = f"{(now or datetime.now(UTC)):{FOLDER_TIME_FORMAT}}-{config_name}"
        for attempt in itertools.count(1):
            path = results_dir / (stem if attempt == 1 else f"{stem}-{attempt}")
            try:
                path.mkdir()  # atomic: of two benchmarks asking for one name, exactly one gets it
            except FileExistsError:
                continue
            folder = cls(path)
            write_json(folder.path / ENV_JSON, format_version.stamped({}, format_version.CURRENT))
            for name, columns in DETAILS.items():
                _append(folder.path / name, [columns])
            _append(folder.path / RUNS_CSV, [RUN_COLUMNS])
            return folder

    @classmethod
    def existing(cls, path) -> "ResultsFolder":
        """A folder that holds results; a UsageError naming what is missing otherwise."""
        folder = cls(path)
        if not cls.is_folder(folder.path):
            raise UsageError(f"results folder not found: {folder.path}")
        if not (folder.path / RUNS_CSV).is_file():
            raise UsageError(f"{folder.path} has no {RUNS_CSV}: not a results folder")
        return folder

    def started(self) -> datetime:
        """When the benchmark started: the UTC time the folder's name begins with, else (a renamed
        folder) when its plan.json, or runs.csv without one, was last written."""
        try:
            return datetime.strptime(self.name.split("-")[0], FOLDER_TIME_FORMAT).replace(
                tzinfo=UTC
            )
        except ValueError:
            plan = self.path / PLAN_JSON
            written = plan if plan.is_file() else self.path / RUNS_CSV
            return datetime.fromtimestamp(written.stat().st_mtime, UTC)

    # --- plan.json and env.json ---------------------------------------------------------------

    def save_plan(self, config, runs: list, variants: list = ("",)) -> None:
        """``variants``: a sweep's, in the order the sweep names them (the runs are shuffled)."""
        write_json(
            self.path / PLAN_JSON,
            {
                "settings_hash": config.settings_hash,
                "config": config.to_dict(),
                "variants": list(variants),
                "runs": [asdict(run) for run in runs],
            },
        )

    def variants(self) -> list:
        """A sweep's variants in the order it named them; [""] for a plain benchmark."""
        if not (self.path / PLAN_JSON).is_file():
            return [""]
        stored, runs = self._stored_plan()
        named = stored.get("variants")
        if not (isinstance(named, list) and all(isinstance(name, str) for name in named)):
            named = None  # a damaged list: the runs' own variants say the same
        return named or list(dict.fromkeys(run.variant for run in runs)) or [""]

    def load_plan(self) -> tuple:
        """(config, planned runs); a UsageError if the folder has no readable plan."""
        stored, runs = self._stored_plan()
        try:
            return config_module.from_dict(stored["config"]), runs
        except (KeyError, TypeError) as error:
            raise UsageError(
                f"{self.path / PLAN_JSON} holds no config ({type(error).__name__}: {error})"
            ) from None

    def settings_hash(self, env: dict) -> str | None:
        """The hash of the settings every run shared: from plan.json's config, else from ``env``
        (the folder's env.json); None where neither can be read."""
        try:
            if (self.path / PLAN_JSON).is_file():
                return self.load_plan()[0].settings_hash
            config = env_value(env, "config")
            return (
                config_module.from_dict(config).settings_hash if isinstance(config, dict) else None
            )
        except UsageError:
            return None  # a config this version cannot read: its settings are unknown, no error

    def planned_runs(self) -> list | None:
        """The plan's runs, or None when the folder has no plan.json."""
        if not (self.path / PLAN_JSON).is_file():
            return None
        return self._stored_plan()[1]

    def _stored_plan(self) -> tuple:
        path = self.path / PLAN_JSON
        try:
            stored = read_json(path)
            runs = [asdict(_planned_run(run)) for run in stored["runs"]]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise UsageError(
                f"{self.path} has no readable {PLAN_JSON} ({type(error).__name__}: {error})"
            ) from None
        upgraded = format_version.upgraded_rows(runs, PLANNED_FIELDS, self.results_format())
        return stored, [PlannedRun(**run) for run in upgraded]

    def read_env(self) -> dict:
        """env.json as the current results format has it (``format_version.upgraded_env``); a
        UsageError for a format newer than this harness reads."""
        env = self._written_env()
        format_version.version_of(env)  # refuses a newer format
        return format_version.upgraded_env(env)

    def _written_env(self) -> dict:
        """env.json as written, or {} when it is missing or unreadable (every fact then reads
        "unknown"); an entry of another type than the runner writes reads as missing too
        (``as_written``)."""
        try:
            env = read_json(self.path / ENV_JSON)
        except (OSError, ValueError):
            return {}
        return as_written(env) if isinstance(env, dict) else {}

    def results_format(self) -> int:
        """The results format the folder was created with (``format_version.version_of``)."""
        return format_version.version_of(self._written_env())

    def write_env(self, env: dict) -> None:
        """env.json, holding the folder's own results format whatever ``env`` says: a resumed
        folder keeps the format it was created with."""
        write_json(self.path / ENV_JSON, format_version.stamped(env, self.results_format()))

    def update_env(self, **changes) -> None:
        self.write_env({**self._written_env(), **changes})

    # --- runs.csv, epochs.csv and blocks.csv ------------------------------------------------

    def artifact_path(self, run_id: str) -> Path:
        return self.path / ARTIFACTS_DIR / f"{run_id}.npz"

    def profile_dir(self, run_id: str) -> Path:
        return self.path / PROFILES_DIR / run_id

    def append(self, record: RunRecord, epochs: list, blocks: list = ()) -> None:
        """Epoch and block rows first, then the run row that marks the run finished, each on disk
        before returning."""
        for name, rows in ((EPOCHS_CSV, epochs), (BLOCKS_CSV, blocks)):
            _append(
                self.path / name, [[row.get(column) for column in DETAILS[name]] for row in rows]
            )
        _append(self.path / RUNS_CSV, [[getattr(record, column) for column in RUN_COLUMNS]])

    def run_records(self) -> list:
        return [
            RunRecord(**row) for row in self._rows(RUNS_CSV, RUN_COLUMNS, RUN_KEY + ("status",))
        ]

    def finished_ids(self) -> set:
        return {record.run_id for record in self.run_records()}

    def missing(self, planned: list) -> list:
        """The planned runs without a row in runs.csv, in plan order."""
        finished = self.finished_ids()
        return [run for run in planned if run.run_id not in finished]

    @contextlib.contextmanager
    def lock(self):
        """Held while a benchmark writes here; a second writer is refused, naming the holder's
        PID. Taking it creates the lock file: check what may be refused before."""
        with self._lock_file() as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                raise UsageError(
                    f"{self.path} is being written by another benchmark (PID {holder}); "
                    "wait for it to end or stop it first"
                ) from None
            handle.truncate(0)
            handle.write(str(os.getpid()))
            handle.flush()
            yield  # the kernel releases the lock when the holder dies, however it dies

    def _lock_file(self):
        try:
            return open(self.path / LOCK_FILE, "a+", encoding="utf-8")
        except OSError as error:
            raise UsageError(f"cannot write to {self.path}: {error.strerror}") from None

    @contextlib.contextmanager
    def scratch(self):
        """A scratch folder for worker files, emptied first: a killed benchmark's leftovers go
        too."""
        path = self.path / SCRATCH_DIR
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir()
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def drop_unfinished(self, measured_again=lambda record: False) -> set:
        """Before resuming: keep only whole rows of runs that finished by themselves (not killed
        and not timed out) and that ``measured_again`` does not ask for; return their run ids."""
        runs = [
            record
            for record in self.run_records()
            if record.status not in RETRIED_ON_RESUME and not measured_again(record)
        ]
        finished = {record.run_id for record in runs}
        details = {
            name: [row for row in self._rows(name, columns, RUN_KEY) if row["run_id"] in finished]
            for name, columns in DETAILS.items()
        }
        _rewrite(self.path / RUNS_CSV, RUN_COLUMNS, [asdict(record) for record in runs])
        for name, rows in details.items():
            _rewrite(self.path / name, DETAILS[name], rows)
        return finished

    def write_ratios(self, ratios) -> None:
        """ratios.csv: the statistics the report shows, for scripts (written by the analysis
        step)."""
        _replace_csv(self.path / RATIOS_CSV, ratios)

    def write_outliers(self, outliers) -> None:
        """outliers.csv: every disturbed process ratio, worst first (the report shows the worst)."""
        _replace_csv(self.path / OUTLIERS_CSV, outliers)

    def read_ratios(self):
        """ratios.csv as the analysis step wrote it; a UsageError naming what to run where the
        folder has none, or what is wrong with it."""
        import pandas as pd

        path = self.path / RATIOS_CSV
        if not path.is_file():
            raise UsageError(
                f"{self.path} has no {RATIOS_CSV}: write it with 'python -m bench report {self}'"
            )
        try:
            ratios = pd.read_csv(path, dtype={"variant": str, "host": str, "method": str})
        except (OSError, ValueError, UnicodeDecodeError) as error:
            raise UsageError(f"cannot read {path}: {error}") from None
        ratios = ratios.fillna({"variant": "", "host": "", "method": ""})
        rows = ratios.to_dict("records")
        columns = tuple(ratios.columns)
        upgraded = format_version.upgraded_rows(rows, columns, self.results_format())
        added = upgraded[0] if upgraded else ()
        return pd.DataFrame(upgraded, columns=list(dict.fromkeys([*columns, *added])))

    def read_blocks(self):
        """blocks.csv alone, as ``read`` has it: for a reader that needs none of the rest."""
        import pandas as pd

        rows = self._rows(BLOCKS_CSV, BLOCK_COLUMNS, ())
        return typed_frame(pd.DataFrame(rows, columns=list(BLOCK_COLUMNS)))

    def read(self) -> Results:
        import pandas as pd  # only readers need it: workers start without it

        epochs, blocks = (
            typed_frame(pd.DataFrame(self._rows(name, columns, ()), columns=list(columns)))
            for name, columns in DETAILS.items()
        )
        return Results(
            self,
            runs_frame(self.run_records()),
            epochs,
            blocks,
            self.read_env(),
            self.planned_runs(),
        )

    def _rows(self, name: str, columns: tuple, required: tuple) -> list:
        """Validated rows of one CSV file as dicts of typed values; [] for a missing file."""
        path = self.path / name
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"cannot read {path}: {error}") from None
        if text and not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]  # a kill cut the last row: its run never finished
        lines = list(csv.reader(io.StringIO(text)))
        header = lines[0] if lines else []
        lacking = [column for column in required if column not in header]
        if lacking:
            raise UsageError(
                f"{path} lacks the column(s) {', '.join(lacking)}: not a kl-bench results file"
            )
        known = [column for column in header if column in columns]
        rows = [
            parse_row(header, line, known, f"{path}:{number}")
            for number, line in enumerate(lines[1:], start=2)
            if line
        ]
        return format_version.upgraded_rows(rows, columns, self.results_format())


def pooled(reads: list) -> tuple:
    """(runs, blocks) of several ``Results``, each run and process id prefixed with its folder's
    name: ids repeat from folder to folder, and a process's blocks must stay its own."""
    import pandas as pd

    def tagged(results, frame):
        prefix = f"{results.folder.name}/"
        return frame.assign(
            run_id=prefix + frame.run_id.astype(str), process=prefix + frame.process.astype(str)
        )

    return (
        pd.concat([tagged(results, results.runs) for results in reads], ignore_index=True),
        pd.concat([tagged(results, results.blocks) for results in reads], ignore_index=True),
    )


def runs_frame(records: list):
    """RunRecords as the frame every statistic reads: one row each, ``RUN_COLUMNS`` typed."""
    import pandas as pd

    return typed_frame(
        pd.DataFrame([asdict(record) for record in records], columns=list(RUN_COLUMNS))
    )


def write_json(path: Path, data: dict) -> None:
    """Written whole or not at all: a partial file is renamed into place. A path that cannot be
    written is a UsageError naming it; the partial file goes too."""
    partial = path.with_name(f"{path.name}.partial")
    text = json.dumps(data, indent=2, default=str, allow_nan=False) + "\n"
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from None


def _planned_run(stored) -> PlannedRun:
    """One run of plan.json, each field of the type ``PlannedRun`` declares; a TypeError names
    the first that is not."""
    run = PlannedRun(**stored)  # a TypeError for a missing or unknown field, or not a dict
    for field, kind in (("repeat", int), ("seed", int)):
        value = getattr(run, field)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise TypeError(f"a run's {field} is {quoted(value)}, not an integer")
    for field in ("run_id", "recipe", "api", "variant", "process"):
        if not isinstance(getattr(run, field), str):
            raise TypeError(f"a run's {field} is {quoted(getattr(run, field))}, not text")
    if not isinstance(run.timed_only, bool):
        raise TypeError(f"a run's timed_only is {quoted(run.timed_only)}, not true or false")
    return run


def read_json(path: Path) -> dict:
    """A JSON file's content; JSON nested too deeply to read is a ValueError, as any bad JSON."""
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _append(path: Path, rows: list) -> None:
    if not rows:
        return
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(
        [[_cell(value) for value in row] for row in rows]
    )
    # One write of whole lines: a kill can end the file only between runs, not inside a row.
    with open(path, "a", encoding="utf-8", newline="") as file:
        file.write(buffer.getvalue())
        file.flush()
        os.fsync(file.fileno())


def _cell(value) -> str:
    """Empty for a missing number, full precision for floats."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    # float(): numpy's floats are floats too, and their repr reads "np.float64(...)"
    return repr(float(value)) if isinstance(value, float) else str(value)


def _rewrite(path: Path, columns: tuple, rows: list) -> None:
    partial = path.with_name(f"{path.name}.partial")
    partial.unlink(missing_ok=True)
    _append(partial, [columns, *([row.get(column) for column in columns] for row in rows)])
    os.replace(partial, path)


def read_top_ops(folder: Path) -> dict:
    """{op type: ms per step} of a profiled run's folder; {} when it holds none."""
    try:
        return json.loads((folder / TOP_OPS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _replace_csv(path: Path, frame) -> None:
    """``frame`` as the CSV file ``path``, whole or not at all (renamed into place)."""
    partial = path.with_name(f"{path.name}.partial")
    frame.to_csv(partial, index=False)
    os.replace(partial, path)
