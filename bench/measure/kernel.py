"""One benchmark run inside a real Jupyter kernel, headless: ``run_in_kernel(spec) -> RunResult``.

Post VII found its class-free notebook VAE 1.3-1.5x slower than its class version and suspected
the data handling "between the Jupyter notebook and the graphics card". The worker builds the
notebook readings in a namespace dict of a plain process; this path runs the notebook
``bench/measure/notebook_kernel.ipynb`` in a local IPython kernel driven by nbclient (no Jupyter
server), so that what a kernel adds (its namespace, its ZeroMQ channels and their threads,
output capture) is part of the measurement. The notebook opens the worker's session, builds the
recipe with the worker's builder (a reading's cells run in the kernel's globals), trains the
post's way, ``fit`` on numpy arrays, and measures each epoch as the worker does; then it times
the VAE's train step against the run's references (its floor) in alternating blocks, as the
worker does, so that those ratios are paired inside the kernel, and against the variants its
reading differs from, which this process builds and times in turns with the kernel
(``bench.measure.beside``), so that those ratios are paired across the two processes.

The kernel's Python is this interpreter, ``sys.executable`` (the project's venv): the name
"python3" is resolved by a kernel spec manager that searches no kernel folders, so it falls back
to the spec ipykernel ships, ``sys.executable -m ipykernel_launcher``. A kernelspec installed for
the user or the system (``jupyter kernelspec list``) is never used, and a fresh clone needs no
``ipykernel install``. The kernel starts in its own session, as jupyter_client starts every
kernel; ipykernel exits by itself within a second once its parent, this process, is gone.

The run's settings reach the notebook as a cell of assignments inserted after its cell tagged
``parameters``, as papermill does. Its last cell writes the epochs, trace count, graph op count,
data set, device settings and the paired blocks as JSON, read back here into a ``RunResult``; a
cell that raises or a kernel that dies is a ``failed`` result, a run past ``[training]
timeout_seconds`` (kernel start-up included) a ``timeout`` one. The kernel path saves no
latent-space artifacts.

Its phases are the worker's (``bench.measure.phases``): the notebook records the kernel's
start-up (its start, imports and session), building, training and paired timing; the kernel's
shutdown is this side's teardown. The worker adds its own start-up, before the kernel's.
"""

import asyncio
import importlib.resources
import json
import math
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from bench.config.settings import TrainingSettings
from bench.errors import summarize_exception
from bench.measure import phases
from bench.measure.beside import Address, Beside, serving
from bench.measure.session import LEGACY_KERAS, backend_environment
from bench.processes import PROJECT_ROOT, worker_environment
from bench.results.records import (
    DIVERGED,
    FAILED,
    OK,
    TIMEOUT,
    BlockStep,
    Epoch,
    RunResult,
    RunSpec,
)

NOTEBOOK = importlib.resources.files("bench.measure") / "notebook_kernel.ipynb"
KERNEL_NAME = "python3"  # ipykernel's own spec: this interpreter
PARAMETERS_TAG, INJECTED_TAG = "parameters", "injected-parameters"
RESULT_FILE = "result.json"


def run_in_kernel(
    spec: RunSpec,
    references=(),
    *,
    beside: Beside = None,
    chains=(),
    fit_verbose: int | str = 0,
) -> RunResult:
    """Train ``spec``'s run in a fresh kernel, then time its train step against ``references``
    ((recipe, api) pairs) there and against ``beside``'s models here (``beside.prepare``), in
    turns, a block visiting ``chains`` first (``timing.visiting_order``); never raises for a
    problem of the recipe or kernel.

    ``fit_verbose`` is ``fit``'s ``verbose``: 0, as the worker fits, by default; the post's call
    leaves Keras' default ``"auto"``, a progress bar streamed through the kernel's output channel.
    """
    beside = beside or Beside()
    timeout_seconds = TrainingSettings(**spec.training).timeout_seconds
    with (
        tempfile.TemporaryDirectory(prefix="klbench-kernel-") as scratch,
        serving(beside, Path(scratch)) as address,
    ):
        result_path = Path(scratch) / RESULT_FILE
        notebook = parameterized_notebook(
            spec, result_path, references, fit_verbose, address, chains
        )
        shutdown = {}
        try:
            asyncio.run(_execute(notebook, kernel_environment(spec), timeout_seconds, shutdown))
        except TimeoutError:
            return RunResult(TIMEOUT, f"killed at the {timeout_seconds} s time limit")
        except CellExecutionError as error:
            return RunResult(FAILED, summarize_exception(_kernel_exception(error)))
        except Exception as error:  # the kernel would not start or died
            return RunResult(FAILED, summarize_exception(error))
        result = replace(_read_result(result_path), teardown_seconds=shutdown.get("seconds"))
    errors = filter(None, (result.reference_error, beside.error))
    return replace(result, reference_error="; ".join(errors))


def parameterized_notebook(
    spec: RunSpec,
    result_path: Path,
    references=(),
    fit_verbose: int | str = 0,
    beside_address: Address = None,
    chains=(),
):
    """The notebook with a cell setting the run's values inserted after its parameters cell."""
    notebook = nbformat.reads(NOTEBOOK.read_text(encoding="utf-8"), as_version=4)
    values = {
        "recipe": spec.run.recipe,
        "api": spec.run.api,
        "seed": spec.run.seed,
        "device_settings": spec.device,
        "training_settings": spec.training,
        "network_settings": spec.network,
        "references": [list(pair) for pair in references],
        "fit_verbose": fit_verbose,
        "result_path": str(result_path),
        "beside_address": beside_address.to_json() if beside_address else None,
        "chains": [[list(model) for model in chain] for chain in chains],
    }
    # The spec's values came from JSON, so their reprs are Python literals.
    source = "\n".join(f"{name} = {value!r}" for name, value in values.items())
    injected = nbformat.v4.new_code_cell(source, metadata={"tags": [INJECTED_TAG]})
    notebook.cells.insert(_parameters_cell_index(notebook) + 1, injected)
    return notebook


def _parameters_cell_index(notebook) -> int:
    """Where the run's values go: after the one cell tagged ``parameters``, as papermill does."""
    tagged = [
        index
        for index, cell in enumerate(notebook.cells)
        if PARAMETERS_TAG in cell.get("metadata", {}).get("tags", ())
    ]
    if len(tagged) != 1:
        raise ValueError(
            f"{NOTEBOOK} needs exactly one cell tagged {PARAMETERS_TAG!r}, has {len(tagged)}"
        )
    return tagged[0]


def kernel_environment(spec: RunSpec) -> dict:
    """The environment a worker's session sets before TensorFlow is imported, given to the kernel
    at its start, before the notebook imports TensorFlow: the project importable, TensorFlow's
    C++ logs quiet, legacy Keras for keras2, no GPU for cpu."""
    env = worker_environment()
    env.pop(LEGACY_KERAS, None)  # a keras3 kernel started from a keras2 process
    return {**env, **backend_environment(spec)}


def kernel_manager() -> AsyncKernelManager:
    """A manager whose "python3" is ipykernel in this interpreter, whatever kernelspecs exist."""
    return AsyncKernelManager(
        kernel_name=KERNEL_NAME, kernel_spec_manager=KernelSpecManager(kernel_dirs=[])
    )


async def _execute(notebook, env: dict, timeout_seconds: float, shutdown: dict) -> None:
    """Run every cell in a new kernel, killed once it is done or the time limit has passed;
    ``shutdown["seconds"]``: how long ending the kernel took."""
    kernel = kernel_manager()
    # timeout=None: the time limit covers the whole run, kernel start-up included, not each cell.
    client = NotebookClient(
        notebook, km=kernel, timeout=None, startup_timeout=math.ceil(timeout_seconds)
    )
    execution = asyncio.ensure_future(client.async_execute(env=env, cwd=str(PROJECT_ROOT)))
    try:
        finished, _ = await asyncio.wait([execution], timeout=timeout_seconds)
        if not finished:
            execution.cancel()
            # nbclient reports being cancelled mid-cell as a dead kernel: not the story here.
            await asyncio.gather(execution, return_exceptions=True)
            raise TimeoutError(f"past the {timeout_seconds} s time limit")
        execution.result()  # a cell's error, or the kernel's death
    finally:
        ending = time.perf_counter()
        if client.kc is not None:
            client.kc.stop_channels()
        if kernel.has_kernel:
            # Killed, not asked to shut down: TensorFlow's teardown takes seconds and the
            # measurements are already written.
            await kernel.shutdown_kernel(now=True)
        shutdown["seconds"] = time.perf_counter() - ending


def _kernel_exception(error: CellExecutionError) -> Exception:
    """The exception a cell raised, rebuilt under its type's name from the kernel's report, so
    that ``summarize_exception`` reads it as the worker reads a recipe's error."""
    return type(error.ename, (Exception,), {})(error.evalue)


def _read_result(path: Path) -> RunResult:
    """The ``RunResult`` of what the notebook's last cell wrote; a notebook that wrote nothing
    failed without saying why."""
    if not path.is_file():
        return RunResult(FAILED, "the notebook ran to its end but wrote no result")
    measured = json.loads(path.read_text(encoding="utf-8"))
    epochs = tuple(Epoch(**epoch) for epoch in measured.pop("epochs"))
    blocks = tuple(BlockStep(**step) for step in measured.pop("blocks", ()))
    trained_seconds = measured.pop("trained_seconds", None)
    # The notebook's epoch timer, as the worker's, stops training at the first non-finite loss.
    status = DIVERGED if any(not math.isfinite(epoch.loss) for epoch in epochs) else OK
    result = RunResult(status=status, epochs=epochs, blocks=blocks, **measured)
    return result if trained_seconds is None else phases.of_run(result, trained_seconds)
