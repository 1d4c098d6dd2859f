"""The Ray executor: one worker process per Ray task, on the nodes of a Ray cluster.

Each task needs one ``kl_bench_slot``, a resource every node offers once, so no two workers share
a machine. The project's code reaches the nodes as the job's working directory; runs lost with
their node are tried once more elsewhere, then recorded ``killed`` (``--resume`` runs them again).
Ray is an optional extra (``pip install -e ".[cluster]"``), imported only when asked for.
"""

import contextlib
import dataclasses
import logging
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.errors import UsageError, summarize_exception
from bench.processes import PROJECT_ROOT, worker_environment
from bench.results.records import FAILED, KILLED, ProcessSpec, RunResult
from bench.run.executors import (
    CLUSTER_EXTRA,
    NODE_NAME_ENV,
    Outcome,
    each_run,
    run_worker,
)

SLOT = "kl_bench_slot"  # the custom resource each node offers once: one worker per machine
NODE_LOSS_RETRIES = (
    1  # Ray's max_retries: a process lost with its node is tried once more elsewhere
)
NOT_SHIPPED = [
    ".venv",
    ".git",
    "results",
    ".benchmarks",
    ".hypothesis",
    ".pytest_cache",
    "__pycache__",
    "*.egg-info",
]  # kept off the nodes: the code is all they need
WAIT_SECONDS = 1.0  # how often the manager looks up from waiting: signals, nodes that joined
CANCEL_SECONDS = 30  # how long an interrupted benchmark waits for its runs on the nodes to stop
CONNECT_SECONDS = 5  # how long the head's address may take to answer at all
ANSWER_SECONDS = 5.0  # ... and its GCS to answer as a gRPC server (HTTP/2) does
# A client's HTTP/2 preface and an empty SETTINGS frame: a gRPC server answers with its SETTINGS.
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
HTTP2_FRAME_HEADER, HTTP2_SETTINGS = 9, 4  # a frame header's bytes; its type byte, [3]
# How long ray.init may take, the project's code shipped to the cluster included: Ray retries a
# GCS that does not answer (say, something that is not Ray listens at the address) for minutes.
INIT_SECONDS = 60
# Ray's switch of a machine's cluster mode: off, its processes use the loopback address alone.
LOOPBACK_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


class RayExecutor:
    """One Ray task per worker process, dispatched in plan order while a node has its slot free."""

    def __init__(self, address: str):
        if _on_loopback(address):
            # Ray would put the machine's network address in place of the loopback one, and
            # look for the head where it does not listen: a cluster on this machine stays here.
            os.environ.setdefault(LOOPBACK_ONLY_ENV, "0")
        self.ray = _import_ray()
        if address != "auto":
            _check_listening(address)
        # NOT_SHIPPED names Ray's default exclusions too; with Ray's own off, it warns of none.
        os.environ.setdefault("RAY_OVERRIDE_RUNTIME_ENV_DEFAULT_EXCLUDES", "")
        try:
            _init_within_deadline(self.ray, address)
        except (ConnectionError, RuntimeError, ValueError) as error:
            why = summarize_exception(error)
            raise UsageError(f"cannot connect to the Ray cluster at {address}: {why}") from None
        if not self._slots():
            self.ray.shutdown()
            raise UsageError(
                f"no node of the Ray cluster at {address} offers a {SLOT}: start each node with "
                f"ray start ... --resources='{{\"{SLOT}\": 1}}'"
            )
        self.task = self.ray.remote(_run_on_node).options(
            resources={SLOT: 1}, max_retries=NODE_LOSS_RETRIES, retry_exceptions=False
        )

    @property
    def parallel_runs(self) -> int:
        """The cluster's slots now; at least one, so that a run waits for a node to (re)join."""
        return max(1, self._slots())

    def _slots(self) -> int:
        return int(self.ray.cluster_resources().get(SLOT, 0))

    def outcomes(self, specs: list, scratch: Path):
        """(spec, Outcome) of each process as it ends, in whatever order the nodes finish them."""
        waiting, running = (
            list(specs),
            {},
        )  # running: Ray's reference to a task's answer -> (spec, sent at)
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
        except (
            exceptions.RayTaskError
        ) as error:  # the task's own code raised: not the recipe's doing
            return _lost(
                spec, FAILED, f"the Ray task failed: {summarize_exception(error.cause)}", sent_at
            )
        except exceptions.RayError as error:  # its node or Ray worker died, on every try
            return _lost(
                spec,
                KILLED,
                f"lost with its Ray node or worker {1 + NODE_LOSS_RETRIES} times: "
                f"{summarize_exception(error)}",
                sent_at,
            )
        results = dict(outcome.results)
        for run in spec.runs:
            if run.run.run_id in pictures:
                _write_whole(Path(run.artifacts_path), pictures[run.run.run_id])
                results[run.run.run_id] = dataclasses.replace(
                    results[run.run.run_id], artifacts=run.artifacts_path
                )
        return dataclasses.replace(outcome, results=results)

    def _stop(self, references: list) -> None:
        """Cancel runs still on the nodes (their workers are killed) and wait until they have
        stopped."""
        for reference in references:
            self.ray.cancel(
                reference
            )  # a KeyboardInterrupt in the task: run_worker kills the worker
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


def _on_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0]
    return host == "localhost" or host.startswith("127.") or host == "[::1]"


def _check_listening(address: str) -> None:
    """Ray retries an address where nothing listens, or where something else does, for a minute
    or more, with its C++ client holding the interpreter (deaf to Ctrl-C and SIGTERM meanwhile):
    a quick look first. A Ray head's GCS is a gRPC server: it answers the HTTP/2 preface with its
    SETTINGS frame."""
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS) as head:
            head.settimeout(ANSWER_SECONDS)
            head.sendall(HTTP2_PREFACE)
            answer = _received(head, HTTP2_FRAME_HEADER)
    except TimeoutError:
        answer = b""
    except OSError as error:
        why = error.strerror or error
        raise UsageError(f"cannot connect to the Ray cluster at {address}: {why}") from None
    if len(answer) < HTTP2_FRAME_HEADER or answer[3] != HTTP2_SETTINGS:
        raise UsageError(
            f"cannot connect to the Ray cluster at {address}: what listens there does not answer "
            f"as a Ray head (no gRPC reply within {ANSWER_SECONDS:g} s); is it the GCS address "
            "that `ray start --head` printed?"
        )


def _received(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _init_within_deadline(ray, address: str) -> None:
    """``ray.init`` of the cluster at ``address``, given up after ``INIT_SECONDS`` with a
    UsageError. While Ray retries, its C++ client holds the thread it was called in, deaf to
    signals (and at times the interpreter: ``_check_listening`` keeps it from retrying at an
    address no Ray head answers); so it runs in a thread of its own, and this one waits with a
    deadline, in slices, stopped by Ctrl-C or SIGTERM as soon as the interpreter is free. A
    thread given up on is left to Ray: the process ends anyway."""
    failed = []

    def connect():
        try:
            ray.init(
                address=address,
                runtime_env=_runtime_env(),
                logging_level=logging.WARNING,
                log_to_driver=False,
            )
        except Exception as error:  # handed to the waiting thread, which raises it
            failed.append(error)

    thread = threading.Thread(target=connect, name="ray-init", daemon=True)
    with _quiet_about_signal_handlers(), RayLogOffStderr() as log:
        thread.start()
        ends = time.monotonic() + INIT_SECONDS
        while thread.is_alive() and time.monotonic() < ends:
            # In slices: a signal Ray's threads took is handled here at the next one.
            thread.join(WAIT_SECONDS)
        if thread.is_alive():
            raise UsageError(
                f"cannot connect to the Ray cluster at {address}: no Ray answer within "
                f"{INIT_SECONDS} s; is it the GCS address that `ray start --head` printed? "
                f"(Ray's log: {log.path})"
            )
        if failed:
            raise failed[0]
        log.connected()


class RayLogOffStderr:
    """Within: what Ray writes to stderr (file descriptor 2; its C++ client's retries included)
    goes to a log file, so that the command's own line is the only one on stderr. Once
    ``connected``, stderr is stderr again and the log is removed; otherwise Ray keeps the log to
    the end of the process (its threads may still write), and Python's stderr is the real one."""

    def __enter__(self) -> "RayLogOffStderr":
        fd, self.path = tempfile.mkstemp(prefix="kl-bench-ray-connect-", suffix=".log")
        sys.stderr.flush()
        self._real_stderr = os.dup(2)
        os.dup2(fd, 2)
        os.close(fd)
        return self

    def connected(self) -> None:
        os.dup2(self._real_stderr, 2)
        os.close(self._real_stderr)
        self._real_stderr = None
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    def __exit__(self, *exc_info) -> None:
        if self._real_stderr is not None:
            sys.stderr = open(  # noqa: SIM115 - the process's stderr from now on
                self._real_stderr, "w", encoding="utf-8", errors="replace"
            )


@contextlib.contextmanager
def _quiet_about_signal_handlers():
    """Within: no warning that a ray.init outside the main thread sets no SIGTERM handler. The
    command handles SIGTERM itself (``bench.errors.sigterm_raises``): the warning says nothing."""

    def not_that_warning(record: logging.LogRecord) -> bool:
        return "SIGTERM handler is not set" not in record.getMessage()

    logger = logging.getLogger("ray._private.worker")
    logger.addFilter(not_that_warning)
    try:
        yield
    finally:
        logger.removeFilter(not_that_warning)


def _runtime_env() -> dict:
    """The nodes get this project's code, and the manager's KLBENCH_ settings (extra recipes)."""
    settings = {
        name: value
        for name, value in os.environ.items()
        if name.startswith("KLBENCH_") and name != NODE_NAME_ENV
    }
    return {"working_dir": str(PROJECT_ROOT), "excludes": NOT_SHIPPED, "env_vars": settings}


def _lost(spec: ProcessSpec, status: str, error: str, sent_at: float) -> Outcome:
    return Outcome(
        each_run(spec, RunResult(status, error)), time.time() - sent_at, sent_at, None, {}
    )


def _write_whole(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.partial")
    partial.write_bytes(data)
    partial.replace(path)


# --- on a node ------------------------------------------------------------------------------


def _run_on_node(spec: ProcessSpec) -> tuple:
    """A Ray task: (Outcome, run_id -> the run's pictures as bytes). Scratch and pictures live on
    the node; the pictures travel back with the outcome, since the results folder is on the head.
    The head's compile cache is not the node's: a node's process compiles its own steps."""
    _normal_priority()
    with tempfile.TemporaryDirectory(prefix="klbench-") as scratch:
        on_node = dataclasses.replace(
            spec,
            runs=tuple(
                dataclasses.replace(
                    run,
                    artifacts_path=(
                        str(Path(scratch, f"{run.run.run_id}.npz")) if run.artifacts_path else None
                    ),
                    compile_cache=None,
                )
                for run in spec.runs
            ),
        )
        outcome = run_worker(on_node, Path(scratch), _node_worker_environment())
        return outcome, {
            run_id: Path(result.artifacts).read_bytes()
            for run_id, result in outcome.results.items()
            if result.artifacts
        }


def _normal_priority() -> None:
    """This task's process, and so the worker it starts, back at niceness 0 where the node lets it.

    Ray starts its task processes at niceness 15 (its ``worker_niceness``): a benchmark worker
    started from one got a sliver of a core beside any other work on its node, and timed that.
    Raising a priority needs root or CAP_SYS_NICE; a node without them runs its workers as Ray
    starts them unless it was started with ``RAY_worker_niceness=0`` (docs/cluster.md)."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, 0)


def _node_worker_environment() -> dict:
    """worker_environment() with OMP_NUM_THREADS as the node had it: inside its worker process Ray
    sets it to the task's one CPU, and a run must get the machine's threads, as it would locally."""
    env = worker_environment()
    env.pop("OMP_NUM_THREADS", None)
    node_setting = _started_with("OMP_NUM_THREADS")
    return env if node_setting is None else {**env, "OMP_NUM_THREADS": node_setting}


def _started_with(name: str) -> str | None:
    """A variable of this process's environment as the process started (Linux keeps that copy)."""
    entries = Path("/proc/self/environ").read_bytes().decode("utf-8", errors="replace").split("\0")
    return dict(entry.split("=", 1) for entry in entries if "=" in entry).get(name)
