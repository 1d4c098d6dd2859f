"""Where the worker processes run: here, one at a time (``local``), or on the nodes of a Ray
cluster (``ray``).

Either way a process of the plan is the same worker (``run_worker``):
``python -m bench.measure.worker SPEC RESULT`` in its own process group under the process's time
limit, each of its runs ending ok, failed, diverged, killed or timed out. An executor hands back
each process's ``Outcome`` as it ends; the manager (``bench.run.runner``) records its runs. No
two workers ever share a machine: the local executor runs one at a time, and each Ray task
needs one ``kl_bench_slot``, a resource every node offers once.

Ray is an optional extra (``pip install -e ".[cluster]"``), imported only when asked for: the Ray
executor is ``bench.run.cluster``.
"""

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.processes import last_line, read_stall_notes, worker_environment
from bench.results.env import host_id
from bench.results.records import FAILED, KILLED, TIMEOUT, ProcessSpec, RunResult
from bench.run import environment

LOCAL, RAY = "local", "ray"
PAIRED_TIMING_LOST = "paired timing lost"  # how a run whose process died in its timing begins
EXECUTORS = (LOCAL, RAY)
CLUSTER_EXTRA = 'pip install -e ".[cluster]"'
NODE_NAME_ENV = (
    "KLBENCH_NODE_NAME"  # names a node instead of its hostname: two test nodes share one machine
)


@dataclass(frozen=True)
class Outcome:
    """How one worker process ended, as the machine that ran it saw it."""

    results: dict  # run_id -> RunResult of each of its runs
    wall_seconds: float
    started_at: float  # Unix time, on the node's clock
    load_average: float | None  # the node's 1-minute load average as the worker started
    node: dict  # node_facts() of that machine; {} for a run lost with its node

    @property
    def host(self) -> str:
        return host_id(self.node)


def node_facts() -> dict:
    """This machine's host facts and package versions, for records and env.json's "nodes"."""
    host = environment.host_facts()
    name = os.environ.get(NODE_NAME_ENV)
    return {
        "host": {**host, "hostname": name} if name else host,
        "versions": environment.package_versions(),
    }


def run_worker(spec: ProcessSpec, scratch: Path, worker_env: dict) -> Outcome:
    """One worker process, in its own process group so that a time limit kills all it started.

    A worker reports each run as it has trained. When it dies, the runs it reported keep their
    results, the run it was training gets the cause, and the runs after that one are left out of
    the outcome: the manager gives them a process of their own.
    """
    spec_path, result_path, log_path, stall_path = (
        scratch / f"{spec.process_id}.{suffix}"
        for suffix in ("spec.json", "result.json", "log", "stalls.json")
    )
    spec_path.write_text(json.dumps(spec.to_json()), encoding="utf-8")
    result_path.unlink(missing_ok=True)
    stall_path.unlink(missing_ok=True)
    started, started_at, load_average = time.perf_counter(), time.time(), os.getloadavg()[0]
    with open(log_path, "w", encoding="utf-8") as log:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.measure.worker",
                *map(str, (spec_path, result_path, stall_path)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=worker_env,
            process_group=0,
        )
    try:
        worker.wait(timeout=spec.timeout_seconds)
        cause = _cause(worker.returncode, log_path, spec)
    except subprocess.TimeoutExpired:
        _kill(worker)
        cause = RunResult(
            TIMEOUT, f"killed at the {spec.timeout_seconds} s time limit of its process"
        )
    except (
        BaseException
    ):  # Ctrl-C, SIGTERM, a cancelled Ray task: the worker must not outlive its run
        _kill(worker)
        raise
    answered, complete = _answered(result_path)
    if not complete:
        cause = with_stalls(cause, stall_path)
        answered = {**answered, **blame_unanswered(spec, answered, cause)}
    return Outcome(answered, time.perf_counter() - started, started_at, load_average, node_facts())


def with_stalls(cause: RunResult, stall_path: Path) -> RunResult:
    """A worker that died in the middle of a wait (a hung step stopped at its time limit) wrote
    no result: its run's cause gets the stalls the worker's watch noted so far."""
    if cause.status not in (TIMEOUT, KILLED):
        return cause
    return dataclasses.replace(cause, **read_stall_notes(stall_path))


def _cause(returncode: int, log_path: Path, spec: ProcessSpec) -> RunResult:
    """How a worker that ended by itself or by a signal ended, as a run's result."""
    if returncode == -signal.SIGALRM:  # the worker's own per-run time limit (bench.measure.worker)
        limit = spec.first.training.get("timeout_seconds")
        return RunResult(TIMEOUT, f"killed at the {limit} s time limit")
    if returncode < 0:
        return RunResult(KILLED, f"killed by signal {-returncode}")
    last = last_line(log_path.read_text(encoding="utf-8", errors="replace"))
    return RunResult(
        FAILED, f"worker exited with status {returncode}" + (f": {last}" if last else "")
    )


def _answered(result_path: Path) -> tuple:
    """(run_id -> RunResult the worker reported, whether it reported every run to the end)."""
    if not result_path.is_file():
        return {}, False
    answer = json.loads(result_path.read_text(encoding="utf-8"))
    return {
        run_id: RunResult.from_json(result) for run_id, result in answer["results"].items()
    }, answer["complete"]


def blame_unanswered(spec: ProcessSpec, answered: dict, cause: RunResult) -> dict:
    """The first run without an answer was running when the worker died: it gets the cause. With
    every run answered, the death came while timing them: their ratios are lost, and they say so."""
    missing = [run.run.run_id for run in spec.runs if run.run.run_id not in answered]
    if missing:
        return {missing[0]: cause}
    lost = f"{PAIRED_TIMING_LOST}: {cause.status}, {cause.error}"
    return {
        run_id: dataclasses.replace(result, reference_error=lost)
        for run_id, result in answered.items()
    }


def paired_sample_lost(record) -> bool:
    """Whether a run's process died while timing it in blocks (``blame_unanswered``): the run
    trained, but its ratio sample is lost, and ``--resume`` measures its process again."""
    return record.reference_error.startswith(PAIRED_TIMING_LOST)


def _kill(worker: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended by itself in the meantime
        os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()


def each_run(spec: ProcessSpec, result: RunResult) -> dict:
    """The same ``result`` for every run of a process that ended before its runs could answer."""
    return {run.run.run_id: result for run in spec.runs}


class LocalExecutor:
    """Every process here, one after another, in plan order."""

    parallel_runs = 1

    def outcomes(self, specs: list, scratch: Path):
        """(spec, Outcome) of each process as it ends."""
        for spec in specs:
            yield spec, run_worker(spec, scratch, worker_environment())

    def where(self, outcome: Outcome) -> str:
        return ""  # always this machine: the progress line need not say so
