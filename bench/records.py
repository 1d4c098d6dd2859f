"""The results folder of one benchmark: tidy CSV rows, plan.json and env.json.

``results/<UTC timestamp>-<config name>/`` holds
  epochs.csv  one row per timed epoch (``EPOCH_COLUMNS``),
  runs.csv    one row per finished run (``RUN_COLUMNS``); a run is finished once its row is here,
  plan.json   the config and the full run order, so ``--resume`` runs only what is missing,
  env.json    versions, hardware, applied device settings, config and command line,
  artifacts/  latent-space pictures as .npz, when the config asks for them.
A run's epoch rows are written before its run row, each append flushed and fsync'd, so a
benchmark killed at any moment keeps every finished run; rows of an unfinished run are dropped
when the folder is resumed.
"""
import csv
import io
import itertools
import json
import math
import os
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from bench import config as config_module
from bench.errors import UsageError
from bench.plan import PlannedRun

EPOCH_COLUMNS = ("run_id", "recipe", "api", "repeat", "epoch", "seconds", "steps", "ms_per_step", "warmup",
                 "loss", "bce", "kl")
RUN_COLUMNS = ("run_id", "recipe", "api", "repeat", "status", "error", "ms_per_step", "first_epoch_seconds",
               "trace_count", "graph_ops", "final_loss", "final_bce", "final_kl", "settings_hash", "dataset",
               "wall_seconds", "artifacts")
STATUSES = ("ok", "failed", "timeout", "diverged")

EPOCHS_CSV, RUNS_CSV, PLAN_JSON, ENV_JSON = "epochs.csv", "runs.csv", "plan.json", "env.json"
ARTIFACTS_DIR = "artifacts"


def create_folder(results_dir: Path, config_name: str, now: datetime | None = None) -> Path:
    """A new, empty results folder; never one another benchmark started at the same second uses."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{(now or datetime.now(timezone.utc)):%Y%m%dT%H%M%SZ}-{config_name}"
    for attempt in itertools.count(1):
        folder = results_dir / (stem if attempt == 1 else f"{stem}-{attempt}")
        try:
            folder.mkdir()  # atomic: of two benchmarks asking for one name, exactly one gets it
        except FileExistsError:
            continue
        _append(folder / EPOCHS_CSV, [EPOCH_COLUMNS])
        _append(folder / RUNS_CSV, [RUN_COLUMNS])
        return folder


def write_json(path: Path, data: dict) -> None:
    partial = path.with_name(f"{path.name}.partial")
    partial.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(partial, path)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def save_plan(folder: Path, config, runs: list) -> None:
    write_json(folder / PLAN_JSON, {"settings_hash": config.settings_hash, "config": config.to_dict(),
                                    "runs": [asdict(run) for run in runs]})


def load_plan(folder: Path) -> tuple:
    """(config, runs) stored in a results folder; a UsageError if it is not one."""
    path = folder / PLAN_JSON
    try:
        stored = read_json(path)
        runs = [PlannedRun(**run) for run in stored["runs"]]
        config = config_module.from_dict(stored["config"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UsageError(f"cannot resume {folder}: no readable {PLAN_JSON} ({type(error).__name__}: {error})") from None
    return config, runs


def run_row(run: PlannedRun, status: str, error: str, result: dict, settings_hash: str, wall_seconds: float,
            artifacts: str) -> dict:
    return {**asdict(run), "status": status, "error": error, "settings_hash": settings_hash,
            "wall_seconds": wall_seconds, "artifacts": artifacts,
            **{key: result.get(key) for key in ("ms_per_step", "first_epoch_seconds", "trace_count", "graph_ops",
                                                  "final_loss", "final_bce", "final_kl", "dataset")}}


def epoch_rows(run: PlannedRun, epochs: list) -> list:
    return [{**asdict(run), **epoch} for epoch in epochs]


def append_run(folder: Path, run: dict, epochs: list) -> None:
    """Epoch rows first, then the run row that marks the run finished, each on disk before returning."""
    _append(folder / EPOCHS_CSV, [[row.get(column) for column in EPOCH_COLUMNS] for row in epochs])
    _append(folder / RUNS_CSV, [[run.get(column) for column in RUN_COLUMNS]])


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
    """Empty for a missing number (pandas reads NaN), full precision for floats."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def read_runs(folder: Path) -> list:
    return _read_rows(folder / RUNS_CSV, RUN_COLUMNS)


def finished_run_ids(folder: Path) -> set:
    return {row["run_id"] for row in read_runs(folder) if row["status"] in STATUSES}


def drop_unfinished(folder: Path) -> set:
    """Before resuming: keep only whole rows of finished runs; return the finished run ids."""
    runs = [row for row in read_runs(folder) if row["status"] in STATUSES]
    finished = {row["run_id"] for row in runs}
    epochs = [row for row in _read_rows(folder / EPOCHS_CSV, EPOCH_COLUMNS) if row["run_id"] in finished]
    _rewrite(folder / RUNS_CSV, RUN_COLUMNS, runs)
    _rewrite(folder / EPOCHS_CSV, EPOCH_COLUMNS, epochs)
    return finished


def _read_rows(path: Path, columns: tuple) -> list:
    """Complete rows only: a last line without its newline was cut off by a kill."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or tuple(rows[0]) != columns:
        raise UsageError(f"{path} does not have the columns {', '.join(columns)}")
    return [dict(zip(columns, row)) for row in rows[1:] if len(row) == len(columns)]


def _rewrite(path: Path, columns: tuple, rows: list) -> None:
    partial = path.with_name(f"{path.name}.partial")
    partial.unlink(missing_ok=True)
    _append(partial, [columns, *([row[column] for column in columns] for row in rows)])
    os.replace(partial, path)
