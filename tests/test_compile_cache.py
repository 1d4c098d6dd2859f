"""The compile cache of a benchmark's later rounds: who gets it, where it lives, and that the
backend keeps its compiled steps there. A trained run's first epoch (its trace and compile) is a
figure the report shows, so no process that trains may load a step compiled elsewhere."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.config import plan
from bench.config import settings as config
from bench.measure import backends
from bench.measure.session import backend_environment
from bench.processes import worker_environment
from bench.results.folder import ResultsFolder
from bench.run import runner
from tests.builders import tiny_config


def planned(recipe, api, repeat, timed_only):
    return plan.PlannedRun(
        f"{recipe}-{api}-r{repeat}",
        recipe,
        api,
        repeat,
        repeat,
        process=f"{api}-r{repeat}",
        timed_only=timed_only,
    )


def specs(tmp_path, runs, cache="/somewhere/compiled"):
    settings = config.load(str(tiny_config(tmp_path, ["kl_layer"], apis=["keras3-jax-port"])))
    spec = runner._process_spec(settings, runs, ResultsFolder(tmp_path / "folder"), {}, cache)
    return spec.runs


def test_only_a_process_that_trains_none_of_its_runs_gets_the_cache(tmp_path):
    later = [planned(name, "keras3-jax-port", 2, True) for name in ("kl_layer", "model_add_loss")]
    assert {run.compile_cache for run in specs(tmp_path, later)} == {"/somewhere/compiled"}
    trained = [planned("kl_layer", "keras3-jax-port", 1, False)]
    assert specs(tmp_path, trained)[0].compile_cache is None
    mixed = [*later, *trained]  # e.g. a resumed plan: one run trains, so none loads a step
    assert {run.compile_cache for run in specs(tmp_path, mixed)} == {None}
    assert {run.compile_cache for run in specs(tmp_path, later, cache=None)} == {None}


def test_the_cache_lives_outside_the_results_folder_for_as_long_as_the_job(tmp_path):
    folder = ResultsFolder(tmp_path / "folder")
    job = runner.Job(folder, config=None, runs=[])
    with runner.compile_cache(job) as path:
        assert job.compile_cache == path and Path(path).is_dir()
        assert not Path(path).is_relative_to(folder.path)
        Path(path, "step").write_bytes(b"compiled")
    assert job.compile_cache is None and not Path(path).exists()


@pytest.mark.parametrize("api", ["keras2", "keras3-port", "keras3-jax-port"])
def test_a_process_gets_its_backends_cache_settings_only_with_a_cache(tmp_path, api):
    (with_cache,) = specs(tmp_path, [planned("kl_layer", api, 2, True)])
    (without,) = specs(tmp_path, [planned("kl_layer", api, 2, True)], cache=None)
    cache_env = backends.of(api).compile_cache_environment("/somewhere/compiled")
    assert cache_env.items() <= backend_environment(with_cache).items()
    assert not cache_env.keys() & backend_environment(without).keys()
    assert bool(cache_env) == (api == "keras3-jax-port")  # only JAX keeps compiled steps


def test_jax_keeps_its_compiled_steps_in_the_folder_its_environment_names(tmp_path):
    cache = tmp_path / "compiled"
    env = {**worker_environment(), "JAX_PLATFORMS": "cpu"}
    env.update(backends.named("jax").compile_cache_environment(str(cache)))
    code = "import jax, jax.numpy as jnp; print(jax.jit(lambda x: x * 2 + 1)(jnp.ones(3)).sum())"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) == 9.0
    assert any(path.is_file() for path in cache.rglob("*")), os.listdir(tmp_path)
