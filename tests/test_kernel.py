"""The kernel path: post VII's notebook run in a real IPython kernel, read back as a worker result.

The slow tests start kernels (each a fresh process that imports TensorFlow) and train the tiny
network for two capped epochs on the synthetic data; the others check the parameters cell, the
kernel's environment and which Python the kernel runs, without starting one.
"""

import json
import math
import os
import sys

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager

from bench.config.plan import PlannedRun
from bench.measure import kernel
from bench.results.records import (
    DIVERGED,
    FAILED,
    OK,
    TIMEOUT,
    Epoch,
    RunResult,
    RunSpec,
)
from tests.builders import ROOT
from vae_impls import registry

TINY_TRAINING = {
    "dataset": "synthetic",
    "batch_size": 16,
    "epochs": 2,
    "warmup_epochs": 1,
    "steps_per_epoch": 2,
    "timeout_seconds": 300,
}
TINY_NETWORK = {"encoder_filters": [4, 8, 8], "decoder_filters": [8, 4, 1]}


def tiny_spec(recipe="notebook_globals", api="keras2", training=(), network=()):
    return RunSpec(
        run=PlannedRun(f"{recipe}-{api}-r1", recipe, api, 1, 1),
        device={"device": "cpu"},
        training={**TINY_TRAINING, **dict(training)},
        network={**TINY_NETWORK, **dict(network)},
    )


def notebook_file(folder, *sources):
    """A notebook of a parameters cell and ``sources``, standing in for the real one."""
    cells = [
        nbformat.v4.new_code_cell("result_path = None", metadata={"tags": [kernel.PARAMETERS_TAG]}),
        *map(nbformat.v4.new_code_cell, sources),
    ]
    path = folder / "stand_in.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


# --- without a kernel -----------------------------------------------------------------------


def test_run_settings_are_assigned_right_after_the_parameters_cell(tmp_path):
    spec = tiny_spec(api="keras3-port")
    references = (("plain_ae", "keras3"), ("model_add_loss", "keras3-port"))
    notebook = kernel.parameterized_notebook(
        spec, tmp_path / "result.json", references, fit_verbose="auto"
    )
    tags = [cell.metadata.get("tags", []) for cell in notebook.cells]
    parameters = tags.index([kernel.PARAMETERS_TAG])
    assert tags[parameters + 1] == [kernel.INJECTED_TAG]
    namespace = {}
    exec(
        notebook.cells[parameters].source, namespace
    )  # the defaults, then the run's values over them
    exec(notebook.cells[parameters + 1].source, namespace)
    assert (namespace["recipe"], namespace["api"]) == ("notebook_globals", "keras3-port")
    assert namespace["seed"] == spec.run.seed
    assert (
        namespace["device_settings"] == spec.device
        and namespace["training_settings"] == spec.training
    )
    assert namespace["network_settings"] == spec.network and namespace["fit_verbose"] == "auto"
    assert namespace["result_path"] == str(tmp_path / "result.json")
    assert namespace["references"] == [["plain_ae", "keras3"], ["model_add_loss", "keras3-port"]]


def test_the_kernel_runs_this_python_whatever_kernelspec_is_installed(tmp_path, monkeypatch):
    elsewhere = tmp_path / "kernels" / kernel.KERNEL_NAME
    elsewhere.mkdir(parents=True)
    (elsewhere / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [
                    "/some/other/python",
                    "-m",
                    "ipykernel_launcher",
                    "-f",
                    "{connection_file}",
                ],
                "display_name": "another Python",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    assert KernelSpecManager().get_kernel_spec(kernel.KERNEL_NAME).argv[0] == "/some/other/python"
    assert kernel.kernel_manager().kernel_spec.argv[:3] == [
        sys.executable,
        "-m",
        "ipykernel_launcher",
    ]


def test_kernel_environment_is_the_workers(monkeypatch):
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "1")
    keras3 = kernel.kernel_environment(tiny_spec(api="keras3-port"))
    assert "TF_USE_LEGACY_KERAS" not in keras3
    assert keras3["CUDA_VISIBLE_DEVICES"] == "" and keras3["TF_CPP_MIN_LOG_LEVEL"] == "2"
    assert str(ROOT) in keras3["PYTHONPATH"].split(os.pathsep)
    assert kernel.kernel_environment(tiny_spec(api="keras2"))["TF_USE_LEGACY_KERAS"] == "1"


# --- in a kernel ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("api", ["keras2", "keras3-port"])
def test_notebook_run_reports_epochs_as_the_worker_does(api):
    result = kernel.run_in_kernel(tiny_spec(api=api))
    assert isinstance(result, RunResult) and (result.status, result.error) == (OK, "")
    assert [type(epoch) for epoch in result.epochs] == [Epoch, Epoch]
    assert [(epoch.epoch, epoch.steps, epoch.warmup) for epoch in result.epochs] == [
        (1, 2, True),
        (2, 2, False),
    ]
    for epoch in result.epochs:
        assert all(
            math.isfinite(value) for value in (epoch.seconds, epoch.loss, epoch.bce, epoch.kl)
        )
        assert epoch.kl > 0 and epoch.ms_per_step == pytest.approx(
            epoch.seconds / epoch.steps * 1000
        )
    assert result.trace_count >= 1 and result.graph_ops > 0
    assert (result.dataset, result.device_settings["device"]) == ("synthetic", "cpu")
    # The kernel's phases, as a worker records its process's: "other" is what none covers.
    assert result.train_seconds == pytest.approx(sum(epoch.seconds for epoch in result.epochs))
    assert result.startup_seconds > 0 and result.teardown_seconds > 0
    assert result.build_seconds >= 0 and result.blocks_seconds >= 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "recipe, api, error_type, message",
    [
        (
            "notebook_kernel",
            "keras3",
            "NotImplementedError",
            registry.get("notebook_kernel").expected_errors["keras3"],
        ),
        ("no_such_recipe", "keras2", "UnknownRecipe", "unknown recipe 'no_such_recipe'"),
    ],
)
def test_a_cell_that_raises_fails_the_run_with_its_error(recipe, api, error_type, message):
    result = kernel.run_in_kernel(tiny_spec(recipe, api))
    assert result.status == FAILED and result.epochs == ()
    assert result.error.startswith(f"{error_type}: ") and message in result.error


@pytest.mark.slow
def test_a_non_finite_loss_is_a_diverged_run():
    result = kernel.run_in_kernel(tiny_spec(network={"learning_rate": 1e30}))
    assert result.status == DIVERGED and not math.isfinite(result.final("loss"))


@pytest.mark.slow
def test_a_run_past_its_time_limit_is_a_timeout_and_its_kernel_is_gone(tmp_path, monkeypatch):
    pid_file = tmp_path / "kernel.pid"
    monkeypatch.setattr(
        kernel,
        "NOTEBOOK",
        notebook_file(
            tmp_path,
            "import os, time\n"
            f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
            "time.sleep(600)",
        ),
    )
    result = kernel.run_in_kernel(tiny_spec(training={"timeout_seconds": 10}))
    assert (result.status, result.error) == (TIMEOUT, "killed at the 10 s time limit")
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


@pytest.mark.slow
def test_a_kernel_that_dies_fails_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(kernel, "NOTEBOOK", notebook_file(tmp_path, "import os\nos._exit(1)"))
    result = kernel.run_in_kernel(tiny_spec())
    assert (result.status, result.error) == (FAILED, "DeadKernelError: Kernel died")


@pytest.mark.slow
def test_a_notebook_that_writes_no_result_fails_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(kernel, "NOTEBOOK", notebook_file(tmp_path, "finished = True"))
    result = kernel.run_in_kernel(tiny_spec())
    assert (result.status, result.error) == (
        FAILED,
        "the notebook ran to its end but wrote no result",
    )
