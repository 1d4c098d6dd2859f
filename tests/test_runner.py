"""The runner: its summary table, containment of bad runs, interruption and resume.

The slow tests start real benchmarks (``python -m bench run``) in subprocesses with the tiny
recipes of ``tests/fake_recipes.py`` and the synthetic data; every worker still pays
TensorFlow's import, so they keep the number of runs small. Timing values are never asserted.
"""

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.__main__ import main
from bench.analysis import claims
from bench.config import plan
from bench.config import settings as config
from bench.results.folder import ResultsFolder
from bench.results.records import (
    BLOCK_COLUMNS,
    EPOCH_COLUMNS,
    RUN_COLUMNS,
    STATUSES,
)
from tests.builders import (
    HANG_GUARD_SECONDS,
    ROOT,
    bench_command,
    bench_environment,
    only_folder,
    run_bench,
    tiny_config,
)


def read_runs(folder):
    return ResultsFolder(folder).read().runs


def read_epochs(folder):
    return ResultsFolder(folder).read().epochs


def test_resume_with_other_settings_is_refused_in_one_line(tmp_path, capsys):
    tiny = config.load(str(tiny_config(tmp_path, ["plain_ae"])))
    folder = ResultsFolder.create(tmp_path / "results", tiny.name)
    folder.save_plan(tiny, plan.make_plan(tiny))
    other = tiny_config(tmp_path, ["plain_ae"], epochs=3, name="other")
    assert main(["run", "--resume", str(folder), "--config", str(other)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and tiny.settings_hash in err and "resume without --config" in err


# --- real benchmarks in subprocesses (slow) -------------------------------------------------


@pytest.mark.slow
def test_bad_runs_are_contained_and_the_matrix_goes_on(tmp_path):
    recipes = ["fake_ok", "fake_error", "fake_nan", "fake_crash", "fake_hang"]
    done = run_bench(
        "--config",
        tiny_config(tmp_path, recipes, timeout=30),
        "--results-dir",
        tmp_path / "results",
    )
    assert done.returncode == 0, done.stderr
    folder = only_folder(tmp_path / "results")
    runs = read_runs(folder).set_index("recipe")
    assert runs.status.to_dict() == {
        "fake_ok": "ok",
        "fake_error": "failed",
        "fake_nan": "diverged",
        "fake_crash": "failed",
        "fake_hang": "timeout",
    }
    assert runs.error["fake_error"] == "ValueError: fake_error: this recipe fails on its first step"
    assert (
        runs.error["fake_crash"] == "worker exited with status 3: fake_crash: the worker dies here"
    )
    assert "30 s time limit" in runs.error["fake_hang"]
    assert len(done.stdout.splitlines()) > 5 and "[5/5]" in done.stdout
    check_csv_schema(folder)


def check_csv_schema(folder):
    runs, epochs = read_runs(folder), read_epochs(folder)
    assert tuple(runs.columns) == RUN_COLUMNS and tuple(epochs.columns) == EPOCH_COLUMNS
    for column in ("repeat", "wall_seconds"):
        assert pd.api.types.is_numeric_dtype(runs[column])
    for column in ("ms_per_step", "first_epoch_seconds", "final_loss", "final_bce", "final_kl"):
        assert pd.api.types.is_float_dtype(runs[column])
    for column in ("epoch", "steps", "seconds", "ms_per_step", "loss", "bce", "kl"):
        assert pd.api.types.is_numeric_dtype(epochs[column])
    assert epochs.warmup.dtype == bool and epochs.groupby("run_id").warmup.sum().eq(1).all()
    assert set(runs.status) <= set(STATUSES) and runs.settings_hash.nunique() == 1
    env = json.loads((folder / "env.json").read_text())
    assert {
        "python",
        "tensorflow",
        "keras",
        "tf_keras",
        "numpy",
        "cpu",
        "gpu",
        "git",
        "config",
        "command",
        "device_settings",
    } <= set(env)
    assert env["device_settings"]["device"] == "cpu" and "notes" in env["device_settings"]


def wait_for_runs(results: Path, count: int, process, timeout=300):
    """The results folder, once ``count`` runs are recorded in it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs_csvs = list(results.glob("*/runs.csv"))
        if runs_csvs and runs_csvs[0].read_text().count("\n") - 1 >= count:
            return runs_csvs[0].parent
        assert process.poll() is None, "the benchmark ended before it was interrupted"
        time.sleep(0.2)
    raise AssertionError(f"no {count} finished runs within {timeout} s")


@pytest.mark.slow
def test_killed_and_interrupted_benchmarks_keep_their_runs_and_resume(tmp_path):
    results = tmp_path / "results"
    command = bench_command(
        "--config", tiny_config(tmp_path, ["fake_ok"], repeats=3), "--results-dir", results
    )
    benchmark = subprocess.Popen(
        command,
        cwd=ROOT,
        env=bench_environment(),
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    folder = wait_for_runs(results, 1, benchmark)
    os.killpg(benchmark.pid, signal.SIGKILL)  # like `kill -9` on the whole benchmark
    benchmark.communicate()
    assert len(read_runs(folder)) == 1 and set(read_epochs(folder).run_id) == set(
        read_runs(folder).run_id
    )

    # Ctrl-C: the runner stops the current worker, keeps the finished rows and says how to resume.
    resumed = subprocess.Popen(
        bench_command("--resume", folder),
        cwd=ROOT,
        env=bench_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_runs(results, 2, resumed)
    resumed.send_signal(signal.SIGINT)
    out, err = resumed.communicate(timeout=HANG_GUARD_SECONDS)
    assert resumed.returncode == 130, err
    assert f"resume with: python -m bench run --resume {folder}" in out
    assert len(read_runs(folder)) == 2

    done = run_bench("--resume", folder)
    assert done.returncode == 0, done.stderr
    runs, epochs = read_runs(folder), read_epochs(folder)
    assert sorted(runs.run_id) == [f"fake_ok-keras3-r{repeat}" for repeat in (1, 2, 3)]
    assert (runs.status == "ok").all()
    assert epochs.groupby("run_id").size().to_dict() == {run_id: 2 for run_id in runs.run_id}
    assert len(json.loads((folder / "env.json").read_text())["resumed_by"]) == 2
    assert not (folder / ".scratch").exists()  # the killed benchmark's worker files are gone too


@pytest.mark.slow
def test_end_to_end_with_two_real_recipes(tmp_path):
    done = run_bench(
        "--config",
        tiny_config(tmp_path, ["plain_ae", "kl_layer"], artifacts=True),
        "--results-dir",
        tmp_path / "results",
    )
    assert done.returncode == 0, done.stderr
    folder = only_folder(tmp_path / "results")
    runs = read_runs(folder).set_index("recipe")
    assert runs.status.to_dict() == {
        "plain_ae": "ok",
        "kl_layer": "failed",
    }  # kl_layer fails as written on Keras 3
    assert "unexpected keyword argument 'inputs'" in runs.error["kl_layer"]
    plain = runs.loc["plain_ae"]
    assert (
        plain.trace_count >= 1
        and plain.graph_ops > 0
        and np.isnan(plain.final_kl)
        and plain.dataset == "synthetic"
    )
    with np.load(folder / plain.artifacts) as pictures:
        assert pictures["latent_mu"].shape[1] == 2 and pictures["originals"].shape == (10, 28, 28)
        assert pictures["reconstructions"].shape == (10, 28, 28) and pictures[
            "grid_images"
        ].shape == (225, 28, 28)
        assert len(pictures["grid_extent"]) == 4 and len(pictures["latent_labels"]) == len(
            pictures["latent_mu"]
        )
    assert len(read_epochs(folder)) == 2
    assert re.search(r"\| plain_ae \| II \| [0-9.]+ ms/step \|", done.stdout)
    assert str(folder) in done.stdout
    check_csv_schema(folder)
    # A real worker stands idle no more than a moment (bench/measure/stall.py): a wait such as
    # a tf.data iterator's lost wake-up would show here.
    assert (runs.stalled_seconds < 5).all(), runs.stall.tolist()


def timed_blocks(blocks, training) -> int:
    """The blocks a process timed: those planned, and one more for each a neighbour came or went
    in (bench/results/contention.py), which a loaded test machine may see."""
    count = blocks.block.nunique()
    assert training.paired_blocks <= count <= 2 * training.paired_blocks
    return count


@pytest.mark.slow
def test_a_round_a_budget_adds_times_its_runs_without_training_them(tmp_path):
    path = tiny_config(tmp_path, ["plain_ae", "kl_layer"], apis=["keras3-port"])
    path.write_text(path.read_text() + "train_later_rounds = false\n")
    done = run_bench("--config", path, "--results-dir", tmp_path / "results")
    assert done.returncode == 0, done.stderr
    folder = ResultsFolder(only_folder(tmp_path / "results"))
    # Round 2 as a budget adds it (bench/run/budget.py), then run by --resume: the plan lacks it.
    settings, planned = folder.load_plan()
    added = plan.round_runs(settings, 2, [("", ("kl_layer", "keras3-port"))], added=True)
    folder.save_plan(settings, [*planned, *added])
    done = run_bench("--resume", folder.path)
    assert done.returncode == 0, done.stderr
    results = folder.read()
    runs = results.runs.set_index("run_id")
    (later,) = runs[runs.repeat == 2].itertuples()
    assert later.status == "ok" and later.timed_only, later
    assert np.isnan([later.ms_per_step, later.final_loss, later.first_epoch_seconds]).all()
    assert later.train_seconds == 0 and later.trace_count >= 1
    assert not runs[runs.repeat == 1].timed_only.any()
    assert set(results.epochs.run_id) == set(runs.index[runs.repeat == 1])
    # Timed in its process's blocks beside the floor, as round 1's were: the ratio has both.
    assert set(results.blocks[results.blocks.repeat == 2].model) == {"kl_layer", "plain_ae"}
    ratios = pd.read_csv(folder.path / "ratios.csv").set_index("recipe")
    assert ratios.loc["kl_layer", ["method", "n"]].tolist() == ["paired", 2]
    assert re.search(r"kl_layer keras3-port rep 2: ok, timed only: [0-9.]+ ms/step", done.stdout)


@pytest.mark.slow
def test_a_paired_run_times_the_recipe_and_its_floor_alike(tmp_path):
    done = run_bench(
        "--config",
        tiny_config(tmp_path, ["kl_layer"], apis=["keras3-port"]),
        "--results-dir",
        tmp_path / "results",
    )
    assert done.returncode == 0, done.stderr
    results = ResultsFolder(only_folder(tmp_path / "results")).read()
    assert tuple(results.blocks.columns) == BLOCK_COLUMNS
    timed = results.blocks.groupby(["model", "model_api"]).size().to_dict()
    training = config.load(str(tiny_config(tmp_path, ["kl_layer"]))).training
    steps = timed_blocks(results.blocks, training) * training.paired_block_steps
    assert timed == {("kl_layer", "keras3-port"): steps, ("plain_ae", "keras3"): steps}
    assert (results.blocks.seconds > 0).all()
    (run,) = results.runs.itertuples()
    assert run.status == "ok" and run.reference_error == "" and run.started_at < run.ended_at
    assert run.ops_conv2d > 0 and run.load_average >= 0
    ratios = pd.read_csv(results.folder.path / "ratios.csv")
    assert ratios.loc[0, ["compared_with", "compared_api", "method"]].tolist() == [
        "plain_ae",
        "keras3",
        "paired",
    ]


@pytest.mark.slow
def test_a_fit_on_arrays_and_a_kernel_run_are_paired_with_their_floor_on_both_keras(tmp_path):
    done = run_bench(
        "--config",
        tiny_config(
            tmp_path, ["notebook_numpy_fit", "notebook_kernel"], apis=["keras2", "keras3-port"]
        ),
        "--results-dir",
        tmp_path / "results",
    )
    assert done.returncode == 0, done.stderr
    results = ResultsFolder(only_folder(tmp_path / "results")).read()
    assert (results.runs.status == "ok").all() and (results.runs.reference_error == "").all()
    training = config.load(str(tiny_config(tmp_path, ["plain_ae"]))).training
    timed = results.blocks.groupby(["recipe", "api", "model"]).size().unstack(fill_value=0)
    for api in ("keras2", "keras3-port"):
        # three models beside the floor (the run, model_add_loss and notebook_globals): two
        # floor visits a block
        of_run = results.blocks[(results.blocks.recipe == "notebook_numpy_fit")]
        steps = timed_blocks(of_run[of_run.api == api], training) * training.paired_block_steps
        assert timed.loc["notebook_numpy_fit", api][
            ["notebook_numpy_fit", "notebook_globals", "plain_ae"]
        ].tolist() == [steps, steps, 2 * steps]
        # in the kernel: beside its floor, and in the same blocks, by the worker that started
        # the kernel, the claim's baseline and the reading's variant: three models beside the
        # floor, two floor visits a block
        of_run = results.blocks[(results.blocks.recipe == "notebook_kernel")]
        steps = timed_blocks(of_run[of_run.api == api], training) * training.paired_block_steps
        assert timed.loc["notebook_kernel", api][
            ["notebook_kernel", "plain_ae", "model_add_loss", "notebook_numpy_fit"]
        ].tolist() == [steps, 2 * steps, steps, steps]
    ratios = pd.read_csv(results.folder.path / "ratios.csv")
    assert set(ratios.recipe) == {"notebook_numpy_fit", "notebook_kernel"}
    assert (ratios.method == "paired").all()
    runs = results.runs.set_index(["recipe", "api"])
    # the post's claim on the kernel: paired across the kernel and its worker
    claims_table = claims.claim_table(results.runs, results.blocks)
    kernel_claim = claims_table[[claim.recipe == "notebook_kernel" for claim in claims_table.claim]]
    assert set(kernel_claim.api) == {"keras2", "keras3-port"}
    assert (kernel_claim.method == "paired").all() and (kernel_claim.n == 1).all()
    assert runs.loc[("notebook_kernel", "keras2"), "reference_error"] == ""
