"""Where the worker processes run: here, one at a time (``local``), or on the nodes of a Ray cluster (``ray``).

Either way a process of the plan is the same worker (``run_worker``): ``python -m bench.worker
SPEC RESULT`` in its own process group under the process's time limit, each of its runs ending
ok, failed, diverged, killed or timed out. An executor hands back each process's ``Outcome`` as
it ends; the manager (``bench/runner.py``) records its runs. No two workers ever share a
machine: the local executor runs one at a time, and each Ray task needs one ``kl_bench_slot``,
a resource every node offers once.

Ray is an optional extra (``pip install -e ".[cluster]"``), imported only when asked for. The
project's code reaches the nodes as the job's working directory; runs lost with their node are
tried once more elsewhere, then recorded ``killed`` (``--resume`` runs them again).
"""
import dataclasses
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import environment
from bench.errors import UsageError
from bench.results import FAILED, KILLED, TIMEOUT, ProcessSpec, RunResult

LOCAL, RAY = "local", "ray"
EXECUTORS = (LOCAL, RAY)
CLUSTER_EXTRA = 'pip install -e ".[cluster]"'
SLOT = "kl_bench_slot"  # the custom resource each node offers once: one worker per machine
NODE_NAME_ENV = "KLBENCH_NODE_NAME"  # names a node instead of its hostname: two test nodes share one machine
NODE_LOSS_RETRIES = 1  # Ray's max_retries: a process lost with its node is tried once more elsewhere
NOT_SHIPPED = [".venv", ".git", "results", ".benchmarks", ".hypothesis", ".pytest_cache", "__pycache__",
               "*.egg-info"]  # kept off the nodes: the code is all they need
WAIT_SECONDS = 1.0  # how often the manager looks up from waiting: signals, nodes that joined
CANCEL_SECONDS = 30  # how long an interrupted benchmark waits for its runs on the nodes to stop
CONNECT_SECONDS = 5  # how long the head's address may take to answer at all


@dataclass(frozen=True)
class Outcome:
    """How one worker process ended, as the machine that ran it saw it."""
    results: dict                   # run_id -> RunResult of each of its runs
    wall_seconds: float
    started_at: float               # Unix time, on the node's clock
    load_average: float | None      # the node's 1-minute load average as the worker started
    node: dict                      # node_facts() of that machine; {} for a run lost with its node

    @property
    def host(self) -> str:
        return environment.host_id(self.node)


def node_facts() -> dict:
    """This machine's host facts and package versions, for records and env.json's "nodes"."""
    host = environment.host_facts()
    name = os.environ.get(NODE_NAME_ENV)
    return {"host": {**host, "hostname": name} if name else host,
            "versions": environment.package_versions()}


def _each_run(spec: ProcessSpec, result: RunResult) -> dict:
    """The same ``result`` for every run of a process that ended before its runs could answer."""
    return {run.run.run_id: result for run in spec.runs}


def run_worker(spec: ProcessSpec, scratch: Path, worker_env: dict) -> Outcome:
    """One worker process, in its own process group so that a time limit kills all it started.

    A worker reports each run as it has trained. When it dies, the runs it reported keep their
    results, the run it was training gets the cause, and the runs after that one are left out of
    the outcome: the manager gives them a process of their own.
    """
    spec_path, result_path, log_path = (scratch / f"{spec.process_id}.{suffix}"
                                        for suffix in ("spec.json", "result.json", "log"))
    spec_path.write_text(json.dumps(spec.to_json()), encoding="utf-8")
    result_path.unlink(missing_ok=True)
    started, started_at, load_average = time.perf_counter(), time.time(), os.getloadavg()[0]
    with open(log_path, "w", encoding="utf-8") as log:
        worker = subprocess.Popen([sys.executable, "-m", "bench.worker", str(spec_path), str(result_path)],
                                  stdout=subprocess.DEVNULL, stderr=log, env=worker_env, process_group=0)
    try:
        worker.wait(timeout=spec.timeout_seconds)
        cause = _cause(worker.returncode, log_path, spec)
    except subprocess.TimeoutExpired:
        _kill(worker)
        cause = RunResult(TIMEOUT, f"killed at the {spec.timeout_seconds} s time limit of its process")
    except BaseException:  # Ctrl-C, SIGTERM, a cancelled Ray task: the worker must not outlive its run
        _kill(worker)
        raise
    answered, complete = _answered(result_path)
    if not complete:
        answered = {**answered, **_blamed(spec, answered, cause)}
    return Outcome(answered, time.perf_counter() - started, started_at, load_average, node_facts())


def _cause(returncode: int, log_path: Path, spec: ProcessSpec) -> RunResult:
    """How a worker that ended by itself or by a signal ended, as a run's result."""
    if returncode == -signal.SIGALRM:  # the worker's own per-run time limit (bench.worker)
        limit = spec.first.training.get("timeout_seconds")
        return RunResult(TIMEOUT, f"killed at the {limit} s time limit")
    if returncode < 0:
        return RunResult(KILLED, f"killed by signal {-returncode}")
    last = environment.last_line(log_path.read_text(encoding="utf-8", errors="replace"))
    return RunResult(FAILED, f"worker exited with status {returncode}" + (f": {last}" if last else ""))


def _answered(result_path: Path) -> tuple:
    """(run_id -> RunResult the worker reported, whether it reported every run to the end)."""
    if not result_path.is_file():
        return {}, False
    answer = json.loads(result_path.read_text(encoding="utf-8"))
    return {run_id: RunResult.from_json(result) for run_id, result in answer["results"].items()}, answer["complete"]


def _blamed(spec: ProcessSpec, answered: dict, cause: RunResult) -> dict:
    """The first run without an answer was running when the worker died: it gets the cause. With
    every run answered, the death came while timing them: their ratios are lost, and they say so."""
    missing = [run.run.run_id for run in spec.runs if run.run.run_id not in answered]
    if missing:
        return {missing[0]: cause}
    lost = f"paired timing lost: {cause.status}, {cause.error}"
    return {run_id: dataclasses.replace(result, reference_error=lost) for run_id, result in answered.items()}


def _kill(worker: subprocess.Popen) -> None:
    try:
        os.killpg(worker.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # it ended by itself in the meantime
    worker.wait()


# --- choosing an executor on the command line -----------------------------------------------

def add_arguments(parser) -> None:
    """--executor and --address, for every command that runs a benchmark."""
    parser.add_argument("--executor", choices=EXECUTORS, default=LOCAL,
                        help="local: here, one run at a time (default); ray: one run at a time on each node "
                             f"of a Ray cluster ({CLUSTER_EXTRA})")
    parser.add_argument("--address", metavar="auto|HOST:PORT",
                        help="the Ray cluster's head (with --executor ray; default: auto, the cluster this "
                             "machine belongs to)")


def requested(args) -> bool:
    """Whether the command line asks for anything but the default executor."""
    return args.executor != LOCAL or args.address is not None


def from_arguments(args):
    """The executor the command line asks for; a Ray one is connected before anything is written."""
    if args.executor == LOCAL:
        if args.address is not None:
            raise UsageError("--address names a Ray cluster: give it with --executor ray")
        return LocalExecutor()
    return RayExecutor(_checked_address(args.address or "auto"))


def _checked_address(address: str) -> str:
    host_port = re.fullmatch(r"[^\s:/]+:(\d{1,5})", address)
    if address != "auto" and not (host_port and 0 < int(host_port.group(1)) < 65536):
        raise UsageError(f"--address {address!r} is neither auto nor HOST:PORT")
    return address


# --- the executors --------------------------------------------------------------------------

class LocalExecutor:
    """Every process here, one after another, in plan order."""
    parallel_runs = 1

    def outcomes(self, specs: list, scratch: Path):
        """(spec, Outcome) of each process as it ends."""
        for spec in specs:
            yield spec, run_worker(spec, scratch, environment.worker_environment())

    def where(self, outcome: Outcome) -> str:
        return ""  # always this machine: the progress line need not say so


class RayExecutor:
    """One Ray task per worker process, dispatched in plan order while a node has its slot free."""

    def __init__(self, address: str):
        self.ray = _import_ray()
        if address != "auto":
            _check_listening(address)
        # NOT_SHIPPED names Ray's default exclusions too; with Ray's own off, it warns of none of them.
        os.environ.setdefault("RAY_OVERRIDE_RUNTIME_ENV_DEFAULT_EXCLUDES", "")
        try:
            self.ray.init(address=address, runtime_env=_runtime_env(), logging_level=logging.WARNING,
                          log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as error:
            why = _first_line(error)
            raise UsageError(f"cannot connect to the Ray cluster at {address}: {why}") from None
        if not self._slots():
            self.ray.shutdown()
            raise UsageError(f"no node of the Ray cluster at {address} offers a {SLOT}: start each node with "
                             f"ray start ... --resources='{{\"{SLOT}\": 1}}'")
        self.task = self.ray.remote(_run_on_node).options(resources={SLOT: 1}, max_retries=NODE_LOSS_RETRIES,
                                                          retry_exceptions=False)

    @property
    def parallel_runs(self) -> int:
        """The cluster's slots now; at least one, so that a run waits for a node to (re)join."""
        return max(1, self._slots())

    def _slots(self) -> int:
        return int(self.ray.cluster_resources().get(SLOT, 0))

    def outcomes(self, specs: list, scratch: Path):
        """(spec, Outcome) of each process as it ends, in whatever order the nodes finish them."""
        waiting, running = list(specs), {}  # running: Ray's reference to a task's answer -> (spec, sent at)
        try:
            while waiting or running:
                while waiting and len(running) < self.parallel_runs:
                    spec = waiting.pop(0)
                    running[self.task.remote(spec)] = (spec, time.time())
                ended, _ = self.ray.wait(list(running), num_returns=1, timeout=WAIT_SECONDS)
                for reference in ended:
                    spec, sent_at = running.pop(reference)
                    yield spec, self._outcome(reference, spec, sent_at)
        finally:
            self._stop(list(running))

    def _outcome(self, reference, spec: ProcessSpec, sent_at: float) -> Outcome:
        exceptions = self.ray.exceptions
        try:
            outcome, pictures = self.ray.get(reference)
        except exceptions.RayTaskError as error:  # the task's own code raised: not the recipe's doing
            return _lost(spec, FAILED, f"the Ray task failed: {_first_line(error.cause)}", sent_at)
        except exceptions.RayError as error:  # its node or Ray worker died, on every try
            return _lost(spec, KILLED, f"lost with its Ray node or worker {1 + NODE_LOSS_RETRIES} times: "
                                       f"{type(error).__name__}: {_first_line(error)}", sent_at)
        results = dict(outcome.results)
        for run in spec.runs:
            if run.run.run_id in pictures:
                _write_whole(Path(run.artifacts_path), pictures[run.run.run_id])
                results[run.run.run_id] = dataclasses.replace(results[run.run.run_id], artifacts=run.artifacts_path)
        return dataclasses.replace(outcome, results=results)

    def _stop(self, references: list) -> None:
        """Cancel runs still on the nodes (their workers are killed) and wait until they have stopped."""
        for reference in references:
            self.ray.cancel(reference)  # a KeyboardInterrupt in the task: run_worker kills the worker
        if references:
            self.ray.wait(references, num_returns=len(references), timeout=CANCEL_SECONDS)

    def where(self, outcome: Outcome) -> str:
        return f" on {outcome.node['host']['hostname']}" if outcome.node else ""


def _import_ray():
    try:
        import ray
    except ImportError:
        raise UsageError(f"--executor ray needs Ray: {CLUSTER_EXTRA}") from None
    return ray


def _check_listening(address: str) -> None:
    """Ray retries an address where nothing listens for minutes: a quick look first."""
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as error:
        why = error.strerror or error
        raise UsageError(f"cannot connect to the Ray cluster at {address}: {why}") from None


def _runtime_env() -> dict:
    """The nodes get this project's code, and the manager's KLBENCH_ settings (extra recipes...)."""
    settings = {name: value for name, value in os.environ.items()
                if name.startswith("KLBENCH_") and name != NODE_NAME_ENV}
    return {"working_dir": str(environment.PROJECT_ROOT), "excludes": NOT_SHIPPED, "env_vars": settings}


def _lost(spec: ProcessSpec, status: str, error: str, sent_at: float) -> Outcome:
    return Outcome(_each_run(spec, RunResult(status, error)), time.time() - sent_at, sent_at, None, {})


def _first_line(error) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _write_whole(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.partial")
    partial.write_bytes(data)
    partial.replace(path)


# --- on a node ------------------------------------------------------------------------------

def _run_on_node(spec: ProcessSpec) -> tuple:
    """A Ray task: (Outcome, run_id -> the run's pictures as bytes). Scratch and pictures live on
    the node; the pictures travel back with the outcome, since the results folder is on the head."""
    with tempfile.TemporaryDirectory(prefix="klbench-") as scratch:
        on_node = dataclasses.replace(spec, runs=tuple(
            dataclasses.replace(run, artifacts_path=str(Path(scratch, f"{run.run.run_id}.npz")))
            if run.artifacts_path else run for run in spec.runs))
        outcome = run_worker(on_node, Path(scratch), _node_worker_environment())
        return outcome, {run_id: Path(result.artifacts).read_bytes() for run_id, result in outcome.results.items()
                         if result.artifacts}


def _node_worker_environment() -> dict:
    """worker_environment() with OMP_NUM_THREADS as the node had it: inside its worker process Ray
    sets it to the task's one CPU, and a run must get the machine's threads, as it would locally."""
    env = environment.worker_environment()
    env.pop("OMP_NUM_THREADS", None)
    node_setting = _started_with("OMP_NUM_THREADS")
    return env if node_setting is None else {**env, "OMP_NUM_THREADS": node_setting}


def _started_with(name: str) -> str | None:
    """A variable of this process's environment as the process started (Linux keeps that copy)."""
    entries = Path("/proc/self/environ").read_bytes().decode("utf-8", errors="replace").split("\0")
    return dict(entry.split("=", 1) for entry in entries if "=" in entry).get(name)
