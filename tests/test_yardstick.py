"""The yardstick: the same fixed computation on every installed backend, built from one set of
weights, its step run in a process of its own (TensorFlow unimportable where the backend needs
none), and the gate's check of the floor against it from a real benchmark's blocks."""

import os
import subprocess
import sys

import numpy as np
import pytest

from bench.analysis import step_ratios
from bench.measure import pressure, yardstick
from bench.results.folder import ResultsFolder
from bench.results.records import YARDSTICK
from tests.builders import ROOT, only_folder, run_bench, tiny_config
from vae_impls import keras_api

BACKENDS = sorted(
    {
        keras_api.backend_of(api)
        for api in keras_api.APIS
        if keras_api.installed(api) and keras_api.backend_of(api) != "tensorflow"
    }
)
STEP = """
import sys, time
from types import SimpleNamespace
from bench.measure.backends import named
backend = sys.argv[1]
tf = __import__("tensorflow") if backend == "tensorflow" else None
step = named(backend).yardstick(SimpleNamespace(tf=tf))
step()
began = time.perf_counter()
step()
print(time.perf_counter() - began)
"""


def test_the_weights_are_the_floors_network_and_fixed():
    encoder, (down, up), decoder = yardstick.weights()
    assert [kernel.shape[-1] for kernel in encoder] == [32, 64, 128]
    assert [kernel.shape[-1] for kernel in decoder] == [64, 32, 1]
    assert down.shape == (7 * 7 * 128, yardstick.BOTTLENECK) and up.shape == down.shape[::-1]
    again = yardstick.weights()
    assert all(np.array_equal(a, b) for a, b in zip(encoder + decoder, again[0] + again[2]))
    assert yardstick.images().shape == (128, 28, 28, 1)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", *BACKENDS])
def test_each_backends_yardstick_steps(tmp_path, backend):
    path = str(ROOT)
    if backend != "tensorflow":  # it must not need TensorFlow
        blocker = tmp_path / "no_tensorflow" / "tensorflow"
        blocker.mkdir(parents=True)
        (blocker / "__init__.py").write_text("raise ImportError('no TensorFlow here')\n")
        path = f"{blocker.parent}:{ROOT}"
    done = subprocess.run(
        [sys.executable, "-c", STEP, backend],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": path, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert float(done.stdout.split()[-1]) > 0


@pytest.mark.slow
def test_a_benchmark_with_the_yardstick_times_it_beside_the_floor(tmp_path):
    config = tiny_config(tmp_path, ["plain_ae"], apis=("keras2",))
    config.write_text(config.read_text().replace("[network]", "yardstick = true\n\n[network]"))
    done = run_bench("--config", config, "--results-dir", tmp_path / "results")
    assert done.returncode == 0, done.stderr[-3000:]
    results = ResultsFolder(only_folder(tmp_path / "results")).read()
    timed = results.blocks.groupby("model").size().to_dict()
    assert timed.keys() == {"plain_ae", YARDSTICK} and len(set(timed.values())) == 1
    if pressure.waited_seconds() is not None:  # where the kernel reports it, every step has it
        assert results.blocks.pressure_seconds.notna().all()
    (ratio,) = step_ratios.yardstick_ratios(results.runs, results.blocks).values()
    assert ratio["n"] == 1 and ratio["ratio"] > 0
