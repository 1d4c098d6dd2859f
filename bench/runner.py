"""The benchmark manager: config -> run plan -> one worker process per run -> records.

The manager never imports TensorFlow. It checks the config (preflight), creates the results
folder, then starts ``python -m bench.worker`` for each planned run, one at a time, in its own
process group with a time limit, and appends the run's rows as soon as it ends. A run that
fails, diverges, crashes or times out is recorded as such and the matrix goes on. Ctrl-C stops
the current worker, keeps every finished run and prints how to resume.
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import datasets, environment, injection, plan, records, report
from bench.errors import UsageError
from vae_impls.keras_api import APIS
from vae_impls.registry import FLOOR

INTERRUPTED = 130  # the shell's status for a process ended by Ctrl-C
ERROR_WIDTH = 100  # characters of an error shown in a progress line


@dataclass(frozen=True)
class Outcome:
    status: str
    error: str
    result: dict        # the worker's result; empty when the worker left none
    wall_seconds: float


def create(config, results_dir: Path, command: str, out=sys.stdout) -> tuple:
    """Check ``config``, then make its results folder and plan: (folder, planned runs)."""
    _check_data(config.training)
    injected = injection.from_environment(plan.known_recipes())
    facts = environment.preflight(config)
    runs = plan.make_plan(config)
    folder = records.create_folder(results_dir, config.name)
    records.save_plan(folder, config, runs)
    records.write_json(folder / records.ENV_JSON, {**environment.machine_facts(config, command), **facts,
                                                   "injected_slowdown": injected})
    print(f"{config.name}: {len(runs)} runs in {config.matrix.repeats} rounds into {folder}", file=out, flush=True)
    if injected:
        print(f"injected slowdown ({injection.ENV_VAR}): {injection.describe(injected)}", file=out, flush=True)
    return folder, runs


def start(config, results_dir: Path, command: str, out=sys.stdout) -> int:
    """Run the whole plan of ``config`` into a new folder under ``results_dir``."""
    folder, runs = create(config, results_dir, command, out)
    return execute(folder, config, runs, set(), out)


def resume(folder: Path, given_config, command: str, out=sys.stdout) -> int:
    """Run what is missing from ``folder``'s plan, under the settings the folder was started with."""
    if not folder.is_dir():
        raise UsageError(f"cannot resume {folder}: no such folder")
    config, runs = records.load_plan(folder)
    if given_config is not None and given_config.settings_hash != config.settings_hash:
        raise UsageError(f"cannot resume {folder}: its settings hash is {config.settings_hash} but the given "
                         f"config's is {given_config.settings_hash}; resume without --config/--quick")
    finished = records.drop_unfinished(folder)
    env = records.read_json(folder / records.ENV_JSON)
    records.write_json(folder / records.ENV_JSON, {**env, "resumed_by": [*env.get("resumed_by", []), command]})
    print(f"resuming {folder}: {len(finished)} of {len(runs)} runs already recorded", file=out, flush=True)
    return execute(folder, config, runs, finished, out)


def _check_data(training) -> None:
    try:
        datasets.load(training.dataset, mnist_path=training.mnist_path or None)
    except datasets.DataError as error:
        raise UsageError(str(error)) from None


def execute(folder: Path, config, runs: list, finished: set, out) -> int:
    started = time.perf_counter()
    try:
        _run_pending(folder, config, runs, finished, out)
    except KeyboardInterrupt:
        print(f"\ninterrupted: {len(records.finished_run_ids(folder))} of {len(runs)} runs are recorded in {folder}\n"
              f"resume with: python -m bench run --resume {folder}", file=out, flush=True)
        return INTERRUPTED
    print(f"\nresults: {folder}\n\n{summary_table(records.read_runs(folder))}\n\n"
          f"total wall time {duration(time.perf_counter() - started)}", file=out, flush=True)
    _write_report(folder, out)
    return 0


def _run_pending(folder: Path, config, runs: list, finished: set, out) -> None:
    pending = [run for run in runs if run.run_id not in finished]
    injected = records.read_json(folder / records.ENV_JSON).get("injected_slowdown", {})
    walls = {}  # (recipe, api) -> wall seconds of its runs so far
    with tempfile.TemporaryDirectory(prefix="klbench-") as scratch:
        for index, run in enumerate(pending):
            outcome = _run_worker(_spec(config, run, folder, injected), config.training.timeout_seconds, Path(scratch))
            _record(folder, config, run, outcome)
            walls.setdefault((run.recipe, run.api), []).append(outcome.wall_seconds)
            print(f"[{len(runs) - len(pending) + index + 1}/{len(runs)}] {run.recipe} {run.api} rep {run.repeat}: "
                  f"{_verdict(outcome)} (ETA {duration(_eta(pending[index + 1:], walls))})", file=out, flush=True)


def _eta(remaining: list, walls: dict) -> float:
    """Each remaining run takes as long as its recipe x API did so far, or as the average run."""
    average = statistics.mean(wall for pair_walls in walls.values() for wall in pair_walls)
    return sum(statistics.mean(walls.get((run.recipe, run.api), [average])) for run in remaining)


def _spec(config, run, folder: Path, injected: dict) -> dict:
    settings = config.to_dict()
    wants_pictures = config.matrix.save_artifacts and run.repeat == 1
    artifacts = folder / records.ARTIFACTS_DIR / f"{run.run_id}.npz" if wants_pictures else None
    return {**asdict(run), "device": settings["device"], "training": settings["training"],
            "network": settings["network"], "artifacts_path": str(artifacts) if artifacts else None,
            "inject_ms_per_step": injected.get(f"{run.recipe}/{run.api}", 0)}


def _run_worker(spec: dict, timeout_seconds: int, scratch: Path) -> Outcome:
    """One worker process, in its own process group so that a time limit kills all it started."""
    spec_path, result_path, log_path = (scratch / f"{spec['run_id']}.{suffix}"
                                        for suffix in ("spec.json", "result.json", "log"))
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    result_path.unlink(missing_ok=True)
    started = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        worker = subprocess.Popen([sys.executable, "-m", "bench.worker", str(spec_path), str(result_path)],
                                  stdout=subprocess.DEVNULL, stderr=log, env=environment.worker_environment(),
                                  process_group=0)
    try:
        worker.wait(timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        _kill(worker)
        return Outcome("timeout", f"killed at the {timeout_seconds} s time limit", {}, time.perf_counter() - started)
    except KeyboardInterrupt:
        _kill(worker)
        raise
    wall_seconds = time.perf_counter() - started
    if result_path.is_file():
        result = json.loads(result_path.read_text(encoding="utf-8"))
        return Outcome(result["status"], result["error"], result, wall_seconds)
    last = environment.last_line(log_path.read_text(encoding="utf-8", errors="replace"))
    return Outcome("failed", f"worker exited with status {worker.returncode}" + (f": {last}" if last else ""), {},
                   wall_seconds)


def _kill(worker: subprocess.Popen) -> None:
    try:
        os.killpg(worker.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # it ended by itself in the meantime
    worker.wait()


def _record(folder: Path, config, run, outcome: Outcome) -> None:
    result = outcome.result
    artifacts = Path(result["artifacts"]).relative_to(folder).as_posix() if result.get("artifacts") else ""
    records.append_run(folder, records.run_row(run, outcome.status, outcome.error, result, config.settings_hash,
                                               outcome.wall_seconds, artifacts),
                       records.epoch_rows(run, result.get("epochs", [])))
    _note_worker_facts(folder, result)


def _note_worker_facts(folder: Path, result: dict) -> None:
    """env.json gets the applied device settings and the data's origin from the first worker
    that reports them."""
    env_path = folder / records.ENV_JSON
    env = records.read_json(env_path)
    if env.get("device_settings") is None and result.get("device_settings"):
        records.write_json(env_path, {**env, "device_settings": result["device_settings"],
                                      "dataset": result.get("dataset_origin")})


def _verdict(outcome: Outcome) -> str:
    if outcome.status == "ok":
        return f"ok {outcome.result['ms_per_step']:.1f} ms/step"
    error = outcome.error if len(outcome.error) <= ERROR_WIDTH else outcome.error[: ERROR_WIDTH - 3] + "..."
    return f"{outcome.status} {error}".rstrip()


def duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def floor_api(api: str) -> str:
    """The API whose plain_ae a recipe is compared with: a Keras 3 port runs on Keras 3."""
    return "keras3" if api == "keras3-port" else api


def summary_table(rows: list) -> str:
    """Median ms/step per recipe x API over its ok runs, and the ratio to plain_ae of the same Keras."""
    medians, statuses = {}, {}
    for row in rows:
        key = (row["recipe"], row["api"])
        statuses.setdefault(key, []).append(row["status"])
        if row["status"] == "ok" and row["ms_per_step"]:
            medians.setdefault(key, []).append(float(row["ms_per_step"]))
    medians = {key: statistics.median(values) for key, values in medians.items()}
    order = list(plan.known_recipes())
    recipes = sorted({recipe for recipe, _ in statuses}, key=order.index)
    apis = [api for api in APIS if any(api == key_api for _, key_api in statuses)]

    def cell(recipe, api):
        if (recipe, api) in medians:
            floor = medians.get((FLOOR, floor_api(api)))
            ratio = f" ({medians[recipe, api] / floor:.2f}x)" if floor else ""
            return f"{medians[recipe, api]:.1f}{ratio}"
        seen = statuses.get((recipe, api))
        return "/".join(sorted(set(seen))) if seen else "-"

    table = [["recipe", *apis], *([recipe, *(cell(recipe, api) for api in apis)] for recipe in recipes)]
    widths = [max(len(line[column]) for line in table) for column in range(len(table[0]))]
    lines = ["  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip() for line in table]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:],
                      f"median ms/step over ok runs (ratio to {FLOOR} of the same Keras; keras3-port vs keras3)"])


def _write_report(folder: Path, out) -> None:
    try:
        markdown, _ = report.write_report(folder)
    except Exception as error:  # the runs are on disk either way; say so and exit normally
        print(f"report not written ({type(error).__name__}: {error}); retry with: python -m bench report {folder}",
              file=out, flush=True)
        return
    print(f"report: {markdown}", file=out, flush=True)
