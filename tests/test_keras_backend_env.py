"""A shell's ``KERAS_BACKEND`` never decides a worker's backend: each API group's worker sets
the one its API computes with before Keras is imported."""

import os
from types import SimpleNamespace

import pytest

from bench.measure import worker
from bench.results.folder import ResultsFolder
from tests.builders import only_folder, run_bench, tiny_config


@pytest.mark.parametrize(
    "api, backend", [("keras2", "tensorflow"), ("keras3", "tensorflow"), ("keras3-jax", "jax")]
)
def test_the_worker_sets_its_groups_backend_whatever_the_environment_says(
    monkeypatch, api, backend
):
    monkeypatch.setenv("KERAS_BACKEND", "torch" if backend != "torch" else "jax")
    worker.own_keras_backend(SimpleNamespace(first=SimpleNamespace(run=SimpleNamespace(api=api))))
    assert os.environ["KERAS_BACKEND"] == backend


@pytest.mark.slow
def test_keras3_runs_with_keras_backend_jax_in_the_environment(tmp_path):
    config = tiny_config(tmp_path, ["plain_ae"], apis=("keras3",))
    done = run_bench(
        "--config", config, "--results-dir", tmp_path / "r", env={"KERAS_BACKEND": "jax"}
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    runs = ResultsFolder(only_folder(tmp_path / "r")).read().runs
    assert set(runs.status) == {"ok"}, runs[["recipe", "api", "status", "error"]]
