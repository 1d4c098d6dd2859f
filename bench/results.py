"""The results model: what a worker is asked and answers, and the results folder that keeps it.

In the manner of pyperf's ``Run``: ``ProcessSpec`` and its ``RunSpec``s (manager -> worker)
and ``RunResult`` (worker -> manager) own their JSON, ``RunRecord`` owns a row of runs.csv and
``Epoch`` a row of epochs.csv. ``ResultsFolder`` alone reads and writes a results folder,
``results/<UTC timestamp>-<config name>/``:
  epochs.csv  one row per epoch of a run (``EPOCH_COLUMNS``),
  blocks.csv  one row per timed step of the paired measurement (``BLOCK_COLUMNS``),
  runs.csv    one row per finished run (``RUN_COLUMNS``); a run is finished once its row is here,
  plan.json   the config and the full run order, so ``--resume`` runs only what is missing,
  env.json    versions, hardware, applied device settings, config and command line,
  ratios.csv  the ratios with their CIs, as the report (the analysis step) computed them,
  artifacts/  latent-space pictures as .npz, when the config asks for them,
  profiles/   a profiler trace of each run's train step and its top ops, when the config asks.
A run's epoch and block rows are written before its run row, each append flushed and fsync'd, so a
benchmark killed at any moment keeps every finished run. Every read validates: a row cut off
by a kill (no newline at its end) is an unfinished run and left out; any other row that breaks
the schema is a ``UsageError`` naming the file, the line and the value.
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
import statistics
import typing
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

from bench import config as config_module
from bench.errors import UsageError
from bench.plan import PlannedRun

EPOCHS_CSV, RUNS_CSV, BLOCKS_CSV = "epochs.csv", "runs.csv", "blocks.csv"
PLAN_JSON, ENV_JSON, RATIOS_CSV = "plan.json", "env.json", "ratios.csv"
ARTIFACTS_DIR, PROFILES_DIR = "artifacts", "profiles"

OK, FAILED, TIMEOUT, DIVERGED, KILLED = "ok", "failed", "timeout", "diverged", "killed"
STATUSES = (OK, FAILED, TIMEOUT, DIVERGED, KILLED)
# Ends that say nothing of the recipe (a signal from outside, the time limit): resume runs them again.
RETRIED_ON_RESUME = (KILLED, TIMEOUT)
LOCK_FILE, SCRATCH_DIR = ".lock", ".scratch"
FOLDER_TIME_FORMAT = "%Y%m%dT%H%M%SZ"  # a results folder's name: this UTC time, "-", the config's name


@dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs to train one planned run."""
    run: PlannedRun
    device: dict
    training: dict
    network: dict
    artifacts_path: str | None = None
    profile_dir: str | None = None  # where to keep a profiler trace of the run's train step
    injected: dict = field(default_factory=dict)  # "recipe/api" -> ms added to each step (gate tests)

    def injected_ms(self, recipe: str, api: str) -> float:
        return self.injected.get(f"{recipe}/{api}", 0.0)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "RunSpec":
        return cls(**{**data, "run": PlannedRun(**data["run"])})


@dataclass(frozen=True)
class ProcessSpec:
    """One worker process: the runs it trains, one after another, then times against each other
    and against its references in alternating blocks. Its runs share a Keras package and settings."""
    runs: tuple                     # of RunSpec
    references: tuple = ()          # (recipe, api) models timed beside the runs' that no run trains
    timeout_seconds: int = 0        # for the whole process, start-up included

    @property
    def process_id(self) -> str:
        return self.runs[0].run.process_id

    @property
    def first(self) -> RunSpec:
        """The spec whose settings every run of the process shares."""
        return self.runs[0]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "ProcessSpec":
        return cls(runs=tuple(RunSpec.from_json(run) for run in data["runs"]),
                   references=tuple(tuple(pair) for pair in data.get("references", ())),
                   timeout_seconds=data.get("timeout_seconds", 0))


@dataclass(frozen=True)
class BlockStep:
    """One timed train step of one model in a block of the paired measurement (blocks.csv)."""
    block: int
    model: str                      # the recipe whose step this is: the run's own or a reference's
    model_api: str
    step: int
    seconds: float


@dataclass(frozen=True)
class Epoch:
    """One epoch of ``fit``, timed at its boundaries; warm-up epochs are left out of ms/step."""
    epoch: int
    seconds: float
    steps: int
    ms_per_step: float
    warmup: bool
    loss: float
    bce: float
    kl: float


# Op types counted in each traced train step, and their runs.csv columns: where a recipe's extra
# work shows (a second encoder pass adds convolutions and their gradients).
OP_COUNT_COLUMNS = {"Conv2D": "ops_conv2d", "Conv2DBackpropInput": "ops_conv2d_backprop_input",
                    "Conv2DBackpropFilter": "ops_conv2d_backprop_filter", "MatMul": "ops_matmul"}


@dataclass(frozen=True)
class RunResult:
    """What a worker reports; the run's summary numbers are derived from its epochs."""
    status: str = FAILED
    error: str = ""
    epochs: tuple = ()              # of Epoch
    blocks: tuple = ()              # of BlockStep: the paired measurement
    reference_error: str = ""       # why a reference could not be timed ("" when all were)
    trace_count: int | None = None
    graph_ops: int | None = None
    op_counts: dict = field(default_factory=dict)  # op type -> count in the traced train step
    dataset: str | None = None
    dataset_origin: str | None = None
    device_settings: dict | None = None
    artifacts: str | None = None    # path of the run's artifacts file, once saved

    @property
    def ms_per_step(self):
        """Median over the timed (not warm-up) epochs: the run's one timing."""
        timed = [epoch.ms_per_step for epoch in self.epochs if not epoch.warmup]
        return statistics.median(timed) if timed else None

    @property
    def first_epoch_seconds(self):
        return self.epochs[0].seconds if self.epochs else None

    def final(self, term: str):
        """The last epoch's ``loss``, ``bce`` or ``kl``."""
        return getattr(self.epochs[-1], term) if self.epochs else None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "RunResult":
        return cls(**{**data, "epochs": tuple(Epoch(**epoch) for epoch in data.get("epochs", ())),
                      "blocks": tuple(BlockStep(**step) for step in data.get("blocks", ()))})


@dataclass(frozen=True)
class RunRecord:
    """One row of runs.csv: a planned run, how it ended and its summary numbers."""
    run_id: str
    recipe: str
    api: str
    repeat: int
    status: str
    error: str = ""
    ms_per_step: float | None = None
    first_epoch_seconds: float | None = None
    trace_count: int | None = None
    graph_ops: int | None = None
    final_loss: float | None = None
    final_bce: float | None = None
    final_kl: float | None = None
    settings_hash: str = ""
    dataset: str = ""
    wall_seconds: float | None = None   # of the worker process the run was part of
    artifacts: str = ""             # relative to the results folder
    started_at: float | None = None     # Unix time the worker started
    ended_at: float | None = None
    load_average: float | None = None   # the machine's 1-minute load average as the worker started
    host: str = ""                      # environment.host_id of the machine the run ran on
    variant: str = ""                   # a sweep's settings for the run (bench.sweep); "" otherwise
    process: str = ""                   # the worker process it shared with the other runs of its round
    reference_error: str = ""
    ops_conv2d: int | None = None
    ops_conv2d_backprop_input: int | None = None
    ops_conv2d_backprop_filter: int | None = None
    ops_matmul: int | None = None

    @classmethod
    def of(cls, run: PlannedRun, result: RunResult, settings_hash: str, wall_seconds: float,
           artifacts: str = "", **timing) -> "RunRecord":
        """``timing``: started_at, ended_at, load_average and host, which only the runner sees."""
        return cls(run.run_id, run.recipe, run.api, run.repeat, result.status, result.error,
                   ms_per_step=result.ms_per_step, first_epoch_seconds=result.first_epoch_seconds,
                   trace_count=result.trace_count, graph_ops=result.graph_ops, final_loss=result.final("loss"),
                   final_bce=result.final("bce"), final_kl=result.final("kl"), settings_hash=settings_hash,
                   dataset=result.dataset or "", wall_seconds=wall_seconds, artifacts=artifacts,
                   reference_error=result.reference_error, variant=run.variant, process=run.process_id, **timing,
                   **{column: result.op_counts.get(op) for op, column in OP_COUNT_COLUMNS.items()
                      if result.op_counts})


RUN_COLUMNS = tuple(field.name for field in fields(RunRecord))
RUN_KEY = RUN_COLUMNS[:4]  # run_id, recipe, api, repeat: which planned run a row belongs to
EPOCH_COLUMNS = (*RUN_KEY, *(field.name for field in fields(Epoch)))
BLOCK_COLUMNS = (*RUN_KEY, "process", *(field.name for field in fields(BlockStep)))
DETAILS = {EPOCHS_CSV: EPOCH_COLUMNS, BLOCKS_CSV: BLOCK_COLUMNS}  # a run's rows besides its runs.csv row


def _base_type(annotation) -> type:
    """``float | None`` -> float."""
    return next(arg for arg in typing.get_args(annotation) if arg is not type(None)) if typing.get_args(
        annotation) else annotation


_TYPES = {field.name: _base_type(field.type) for cls in (RunRecord, Epoch, BlockStep) for field in fields(cls)}
_KIND_NAMES = {int: "an integer", float: "a number", bool: "True or False"}
# Numbers that are durations or sizes: a negative one is not a measurement.
_NON_NEGATIVE = {"seconds", "ms_per_step", "first_epoch_seconds", "wall_seconds", "trace_count",
                 "graph_ops", "steps"}
_POSITIVE = {"repeat", "epoch", "steps", "block", "step"}


def epoch_rows(run: PlannedRun, result: RunResult) -> list:
    return [{**_key(run), **asdict(epoch)} for epoch in result.epochs]


def block_rows(run: PlannedRun, result: RunResult) -> list:
    return [{**_key(run), "process": run.process_id, **asdict(step)} for step in result.blocks]


def _key(run: PlannedRun) -> dict:
    return dict(zip(RUN_KEY, (run.run_id, run.recipe, run.api, run.repeat)))


@dataclass(frozen=True)
class Results:
    """One read of a results folder: runs and epochs as frames, env.json, and the plan."""
    folder: "ResultsFolder"
    runs: object                    # pandas.DataFrame of RUN_COLUMNS
    epochs: object                  # ... of EPOCH_COLUMNS
    blocks: object                  # ... of BLOCK_COLUMNS: the paired measurement, empty for older folders
    env: dict
    planned: list | None            # PlannedRun of plan.json; None for a folder without one


class ResultsFolder:
    """A results folder on disk; the only code that knows its files."""

    def __init__(self, path):
        self.path = Path(path)
        self.name = self.path.name

    def __str__(self) -> str:
        return str(self.path)

    @staticmethod
    def check_results_dir(results_dir: Path) -> None:
        """A UsageError unless new results folders can be made in ``results_dir``."""
        existing = next((path for path in (results_dir, *results_dir.parents) if path.exists()), None)
        if existing is not None and not existing.is_dir():
            raise UsageError(f"cannot create results under {results_dir}: {existing} is not a folder")
        if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
            raise UsageError(f"cannot create results under {results_dir}: {existing} is not writable")

    @classmethod
    def create(cls, results_dir: Path, config_name: str, now: datetime | None = None) -> "ResultsFolder":
        """A new, empty results folder; never one another benchmark started at the same second uses."""
        cls.check_results_dir(results_dir)
        try:
            results_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UsageError(f"cannot create {results_dir}: {error.strerror}") from None
        stem = f"{(now or datetime.now(timezone.utc)):{FOLDER_TIME_FORMAT}}-{config_name}"
        for attempt in itertools.count(1):
            path = results_dir / (stem if attempt == 1 else f"{stem}-{attempt}")
            try:
                path.mkdir()  # atomic: of two benchmarks asking for one name, exactly one gets it
            except FileExistsError:
                continue
            folder = cls(path)
            for name, columns in DETAILS.items():
                _append(folder.path / name, [columns])
            _append(folder.path / RUNS_CSV, [RUN_COLUMNS])
            return folder

    @classmethod
    def existing(cls, path) -> "ResultsFolder":
        """A folder that holds results; a UsageError naming what is missing otherwise."""
        folder = cls(path)
        if not folder.path.is_dir():
            raise UsageError(f"results folder not found: {folder.path}")
        if not (folder.path / RUNS_CSV).is_file():
            raise UsageError(f"{folder.path} has no {RUNS_CSV}: not a results folder")
        return folder

    def started(self) -> datetime:
        """When the benchmark started: the UTC time the folder's name begins with, else (a renamed
        folder) when its plan.json, or runs.csv without one, was last written."""
        try:
            return datetime.strptime(self.name.split("-")[0], FOLDER_TIME_FORMAT).replace(tzinfo=timezone.utc)
        except ValueError:
            plan = self.path / PLAN_JSON
            written = plan if plan.is_file() else self.path / RUNS_CSV
            return datetime.fromtimestamp(written.stat().st_mtime, timezone.utc)

    # --- plan.json and env.json ---------------------------------------------------------------

    def save_plan(self, config, runs: list, variants: list = ("",)) -> None:
        """``variants``: a sweep's, in the order the sweep names them (the runs are shuffled)."""
        write_json(self.path / PLAN_JSON, {"settings_hash": config.settings_hash, "config": config.to_dict(),
                                           "variants": list(variants), "runs": [asdict(run) for run in runs]})

    def variants(self) -> list:
        """A sweep's variants in the order it named them; [""] for a plain benchmark."""
        if not (self.path / PLAN_JSON).is_file():
            return [""]
        stored, runs = self._stored_plan()
        return stored.get("variants") or list(dict.fromkeys(run.variant for run in runs)) or [""]

    def load_plan(self) -> tuple:
        """(config, planned runs); a UsageError if the folder has no readable plan."""
        stored, runs = self._stored_plan()
        try:
            return config_module.from_dict(stored["config"]), runs
        except (KeyError, TypeError) as error:
            raise UsageError(f"{self.path / PLAN_JSON} holds no config ({type(error).__name__}: {error})") from None

    def settings_hash(self, env: dict) -> str | None:
        """The hash of the settings every run shared: from plan.json's config, else from ``env``
        (the folder's env.json); None where neither can be read."""
        try:
            if (self.path / PLAN_JSON).is_file():
                return self.load_plan()[0].settings_hash
            config = env_value(env, "config")
            return config_module.from_dict(config).settings_hash if isinstance(config, dict) else None
        except UsageError:
            return None  # a config this version cannot read: its settings are unknown, which is no error

    def planned_runs(self) -> list | None:
        """The plan's runs, or None when the folder has no plan.json."""
        if not (self.path / PLAN_JSON).is_file():
            return None
        return self._stored_plan()[1]

    def _stored_plan(self) -> tuple:
        path = self.path / PLAN_JSON
        try:
            stored = read_json(path)
            return stored, [PlannedRun(**run) for run in stored["runs"]]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise UsageError(f"{self.path} has no readable {PLAN_JSON} ({type(error).__name__}: {error})") from None

    def read_env(self) -> dict:
        """env.json, or {} when it is missing or unreadable (every fact then reads "unknown")."""
        try:
            env = read_json(self.path / ENV_JSON)
        except (OSError, ValueError):
            return {}
        return env if isinstance(env, dict) else {}

    def write_env(self, env: dict) -> None:
        write_json(self.path / ENV_JSON, env)

    def update_env(self, **changes) -> None:
        self.write_env({**self.read_env(), **changes})

    # --- runs.csv, epochs.csv and blocks.csv ------------------------------------------------

    def artifact_path(self, run_id: str) -> Path:
        return self.path / ARTIFACTS_DIR / f"{run_id}.npz"

    def profile_dir(self, run_id: str) -> Path:
        return self.path / PROFILES_DIR / run_id

    def append(self, record: RunRecord, epochs: list, blocks: list = ()) -> None:
        """Epoch and block rows first, then the run row that marks the run finished, each on disk
        before returning."""
        for name, rows in ((EPOCHS_CSV, epochs), (BLOCKS_CSV, blocks)):
            _append(self.path / name, [[row.get(column) for column in DETAILS[name]] for row in rows])
        _append(self.path / RUNS_CSV, [[getattr(record, column) for column in RUN_COLUMNS]])

    def run_records(self) -> list:
        return [RunRecord(**row) for row in self._rows(RUNS_CSV, RUN_COLUMNS, RUN_KEY + ("status",))]

    def finished_ids(self) -> set:
        return {record.run_id for record in self.run_records()}

    def missing(self, planned: list) -> list:
        """The planned runs without a row in runs.csv, in plan order."""
        finished = self.finished_ids()
        return [run for run in planned if run.run_id not in finished]

    @contextlib.contextmanager
    def lock(self):
        """Held while a benchmark writes here; a second writer is refused, naming the holder's PID."""
        path = self.path / LOCK_FILE
        try:
            handle = open(path, "a+", encoding="utf-8")
        except OSError as error:
            raise UsageError(f"cannot write to {self.path}: {error.strerror}") from None
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                raise UsageError(f"{self.path} is being written by another benchmark (PID {holder}); "
                                 "wait for it to end or stop it first") from None
            handle.truncate(0)
            handle.write(str(os.getpid()))
            handle.flush()
            yield  # the kernel releases the lock when the holder dies, however it dies

    @contextlib.contextmanager
    def scratch(self):
        """A scratch folder for worker files, emptied first: a killed benchmark's leftovers go too."""
        path = self.path / SCRATCH_DIR
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir()
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def drop_unfinished(self) -> set:
        """Before resuming: keep only whole rows of runs that finished by themselves (not killed
        and not timed out); return their run ids."""
        runs = [record for record in self.run_records() if record.status not in RETRIED_ON_RESUME]
        finished = {record.run_id for record in runs}
        details = {name: [row for row in self._rows(name, columns, RUN_KEY) if row["run_id"] in finished]
                   for name, columns in DETAILS.items()}
        _rewrite(self.path / RUNS_CSV, RUN_COLUMNS, [asdict(record) for record in runs])
        for name, rows in details.items():
            _rewrite(self.path / name, DETAILS[name], rows)
        return finished

    def write_ratios(self, ratios) -> None:
        """ratios.csv: the statistics the report shows, for scripts (written by the analysis step)."""
        partial = self.path / f"{RATIOS_CSV}.partial"
        ratios.to_csv(partial, index=False)
        os.replace(partial, self.path / RATIOS_CSV)

    def read(self) -> Results:
        import pandas as pd  # only readers need it: workers start without it

        epochs, blocks = (_typed(pd.DataFrame(self._rows(name, columns, ()), columns=list(columns)))
                          for name, columns in DETAILS.items())
        return Results(self, runs_frame(self.run_records()), epochs, blocks, self.read_env(), self.planned_runs())

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
            raise UsageError(f"{path} lacks the column(s) {', '.join(lacking)}: not a kl-bench results file")
        known = [column for column in header if column in columns]
        return [_parsed(header, line, known, f"{path}:{number}")
                for number, line in enumerate(lines[1:], start=2) if line]


def _parsed(header: list, line: list, columns: list, where: str) -> dict:
    if len(line) != len(header):
        raise UsageError(f"{where}: {len(line)} values under {len(header)} columns")
    row = dict(zip(header, line))
    parsed = {column: _value(column, row[column], where) for column in columns}
    if "status" in parsed and parsed["status"] not in STATUSES:
        raise UsageError(f"{where}: status {parsed['status']!r} is not one of {', '.join(STATUSES)}")
    if parsed.get("status") == OK and parsed.get("ms_per_step") is None and "ms_per_step" in columns:
        raise UsageError(f"{where}: an ok run without ms_per_step")
    return parsed


def _value(column: str, text: str, where: str):
    kind = _TYPES[column]
    if kind is str:
        return text
    if text == "":
        return None
    try:
        value = {"True": True, "False": False}[text] if kind is bool else float(text)
    except (KeyError, ValueError):
        raise UsageError(f"{where}: {column} = {text!r} is not {_KIND_NAMES[kind]}") from None
    if kind is bool:
        return value
    if kind is int and not value.is_integer():
        raise UsageError(f"{where}: {column} = {text!r} is not {_KIND_NAMES[kind]}")
    if not math.isfinite(value) or (column in _NON_NEGATIVE and value < 0) or (column in _POSITIVE and value < 1):
        raise UsageError(f"{where}: {column} = {text!r} is out of range")
    return int(value) if kind is int else value


def pooled(reads: list) -> tuple:
    """(runs, blocks) of several ``Results``, each run and process id prefixed with its folder's
    name: ids repeat from folder to folder, and a process's blocks must stay its own."""
    import pandas as pd

    def tagged(results, frame):
        prefix = f"{results.folder.name}/"
        process = frame.process.astype(str)
        return frame.assign(run_id=prefix + frame.run_id.astype(str),
                            process=process.where(process == "", prefix + process))

    return (pd.concat([tagged(results, results.runs) for results in reads], ignore_index=True),
            pd.concat([tagged(results, results.blocks) for results in reads], ignore_index=True))


def runs_frame(records: list):
    """RunRecords as the frame every statistic reads: one row each, ``RUN_COLUMNS`` typed."""
    import pandas as pd

    return _typed(pd.DataFrame([asdict(record) for record in records], columns=list(RUN_COLUMNS)))


def _typed(frame):
    """Text columns as str ("" for missing), numbers as float (NaN for missing), flags as bool."""
    import pandas as pd

    for column in frame.columns:
        kind = _TYPES[column]
        if kind is bool:
            frame[column] = frame[column].fillna(False).astype(bool)
        elif kind is str:
            frame[column] = frame[column].fillna("").astype(str)
        else:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame


def env_value(env: dict, *keys):
    """env.json's value under ``keys`` (env["git"]["commit"]: "git", "commit"), or None where a
    folder does not record it."""
    value = env
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def write_json(path: Path, data: dict) -> None:
    """Written whole or not at all: a partial file is renamed into place."""
    partial = path.with_name(f"{path.name}.partial")
    partial.write_text(json.dumps(data, indent=2, default=str, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(partial, path)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _append(path: Path, rows: list) -> None:
    if not rows:
        return
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([[_cell(value) for value in row] for row in rows])
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
