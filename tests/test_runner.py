"""The runner: run order, error summaries, records, containment of bad runs, interruption and resume.

The slow tests start real benchmarks (``python -m bench run``) in subprocesses with the tiny
recipes of ``tests/fake_recipes.py`` and the synthetic data; every worker still pays
TensorFlow's import, so they keep the number of runs small. Timing values are never asserted.
"""

import collections
import json
import os
import signal
import subprocess
import time
from datetime import UTC
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.__main__ import main
from bench.config import plan
from bench.config import settings as config
from bench.errors import summarize_exception
from bench.measure.worker import _time_blocks, floor_instances, visiting_order
from bench.results.folder import ResultsFolder
from bench.results.records import (
    BLOCK_COLUMNS,
    EPOCH_COLUMNS,
    RUN_COLUMNS,
    STATUSES,
    Epoch,
    ProcessSpec,
    RunRecord,
    RunResult,
    RunSpec,
    epoch_rows,
)
from bench.run import executors, runner
from tests.builders import (
    ROOT,
    bench_command,
    bench_environment,
    frame_of,
    only_folder,
    run_bench,
    tiny_config,
)


def read_runs(folder):
    return ResultsFolder(folder).read().runs


def read_epochs(folder):
    return ResultsFolder(folder).read().epochs


# --- run order ------------------------------------------------------------------------------


def plan_of(recipes, apis, repeats, seed=0, repeat_expected_failures=False):
    return plan.make_plan(
        config.from_dict(
            {
                "training": {"seed": seed},
                "matrix": {
                    "recipes": recipes,
                    "apis": apis,
                    "repeats": repeats,
                    "repeat_expected_failures": repeat_expected_failures,
                },
            }
        )
    )


def test_every_pair_runs_once_per_round_in_round_order():
    runs = plan_of(["plain_ae", "tensor_transfer", "gradient_tape"], ["keras2", "keras3"], 4)
    rounds = [
        [(run.recipe, run.api) for run in runs if run.repeat == repeat] for repeat in range(1, 5)
    ]
    assert [run.repeat for run in runs] == sorted(
        run.repeat for run in runs
    )  # round 1 first, then 2, ...
    for pairs in rounds:
        assert sorted(pairs) == sorted(rounds[0]) and len(set(pairs)) == 6
    assert len({tuple(pairs) for pairs in rounds}) > 1, "each round has its own shuffled order"
    assert len({run.run_id for run in runs}) == len(runs)
    for repeat in range(1, 5):
        assert len({run.seed for run in runs if run.repeat == repeat}) == 1  # one seed per round


def test_shuffled_order_is_reproducible_and_follows_the_seed():
    args = (["plain_ae", "tensor_transfer", "gradient_tape", "kl_layer"], ["keras2", "keras3"], 3)
    assert plan_of(*args) == plan_of(*args)
    assert [r.run_id for r in plan_of(*args)] != [r.run_id for r in plan_of(*args, seed=1)]


def test_runs_of_one_round_and_keras_package_share_a_process_and_a_kernel_run_has_its_own():
    runs = plan_of(
        ["plain_ae", "kl_layer", "notebook_kernel"], ["keras2", "keras3", "keras3-port"], 2
    )
    groups = {
        group[0].process_id: {(run.recipe, run.api) for run in group}
        for group in plan.processes(runs)
    }
    assert groups["keras2-r1"] == {("plain_ae", "keras2"), ("kl_layer", "keras2")}
    assert groups["keras3-r2"] == {
        ("plain_ae", "keras3"),
        ("kl_layer", "keras3-port"),
    }  # kl_layer keras3: round 1
    assert groups["notebook_kernel-keras2-r1"] == {("notebook_kernel", "keras2")}
    assert len(groups) == 2 * 4 + 1  # notebook_kernel keras3 fails as written: round 1 only
    assert sum(len(group) for group in plan.processes(runs)) == len(runs)


def test_pairs_that_fail_as_written_run_in_round_one_unless_asked():
    runs = plan_of(["plain_ae", "closure_loss"], ["keras3"], 3)
    assert collections.Counter(run.recipe for run in runs) == {"plain_ae": 3, "closure_loss": 1}
    runs = plan_of(["plain_ae", "closure_loss"], ["keras3"], 3, repeat_expected_failures=True)
    assert collections.Counter(run.recipe for run in runs) == {"plain_ae": 3, "closure_loss": 3}


def test_a_dead_worker_blames_the_run_it_was_training_and_leaves_the_later_ones_to_a_new_process():
    runs = plan_of(["plain_ae", "kl_layer", "gradient_tape"], ["keras2"], 1)
    spec = ProcessSpec(tuple(RunSpec(run, {}, {}, {}) for run in runs))
    first, second, third = (run.run_id for run in runs)
    cause = RunResult("killed", "killed by signal 9")
    assert executors._blamed(spec, {first: RunResult("ok")}, cause) == {second: cause}
    trained = {run_id: RunResult("ok") for run_id in (first, second, third)}
    lost = executors._blamed(spec, trained, cause)
    assert {result.reference_error for result in lost.values()} == {
        "paired timing lost: killed, killed by signal 9"
    }
    assert {result.status for result in lost.values()} == {"ok"}


# --- error summaries ------------------------------------------------------------------------


@pytest.mark.parametrize("others", [1, 2, 3, 4, 9, 12])
def test_the_floor_has_about_sqrt_m_instances_visited_among_the_m_others(others):
    instances = {(f"recipe_{index}", "keras2"): 1 for index in range(others)}
    instances["plain_ae", "keras2"] = floor_instances(others)
    order = visiting_order(instances)
    visits = [index for index, model in enumerate(order) if model == ("plain_ae", "keras2")]
    assert len(visits) == max(1, round(others**0.5))
    assert [model for model in order if model[0] != "plain_ae"] == list(instances)[:-1]
    assert all(later - earlier > 1 for earlier, later in zip(visits, visits[1:]))


def test_without_a_floor_every_model_is_visited_once_per_instance():
    instances = {("kl_layer", "keras2"): 1, ("vae_loss_layer", "keras2"): 2}
    assert (
        visiting_order(instances) == [("kl_layer", "keras2")] + [("vae_loss_layer", "keras2")] * 2
    )
    assert visiting_order({("plain_ae", "keras2"): 2}) == [("plain_ae", "keras2")] * 2


def test_blocks_visit_each_instance_once_reversed_every_other_block_numbering_a_models_steps():
    called = []
    models = [(f"recipe_{index}", "keras3-port") for index in range(4)]
    steppers = {model: [lambda model=model: called.append(model)] for model in models}
    steppers["plain_ae", "keras3"] = [
        lambda instance=instance: called.append(("plain_ae", instance)) for instance in range(2)
    ]
    timed = _time_blocks(steppers, blocks=2, steps=3)
    first = [called[index] for index in range(0, len(called) // 2, 3)]
    second = [called[index] for index in range(len(called) // 2, len(called), 3)]
    assert [model for model in first if model[0] == "plain_ae"] == [
        ("plain_ae", 0),
        ("plain_ae", 1),
    ]
    assert [model for model in second if model[0] == "plain_ae"] == [
        ("plain_ae", 0),
        ("plain_ae", 1),
    ]
    assert [model for model in second if model[0] != "plain_ae"] == models[::-1]
    floor_steps = [step.step for step in timed if step.block == 2 and step.model == "plain_ae"]
    assert floor_steps == list(range(1, 2 * 3 + 1))
    names = [name for name, _ in models] + ["plain_ae"]
    assert {(step.model, step.block) for step in timed} == {
        (name, block) for name in names for block in (1, 2)
    }


def test_keras3_wrapped_error_gives_its_first_meaningful_line():
    message = (
        "Exception encountered when calling KLLayer.call().\n\n"
        "\x1b[1mLayer.add_loss() got an unexpected keyword argument 'inputs'\x1b[0m\n\n"
        "Arguments received by KLLayer.call():\n  • inputs=['tf.Tensor(shape=(None, 2))']"
    )
    assert (
        summarize_exception(TypeError(message))
        == "TypeError: Layer.add_loss() got an unexpected keyword argument 'inputs'"
    )
    shape_error = "Could not automatically infer the output shape / dtype of 'vae' (of type Functional).\n\nboom"
    assert summarize_exception(ValueError(shape_error)) == "ValueError: boom"


def test_autograph_error_gives_the_original_message():
    message = (
        "in user code:\n\n"
        '    File "/x/training.py", line 1398, in train_function  *\n'
        "        return step_function(self, iterator)\n"
        '    File "/x/keras_tensor.py", line 290, in __array__\n'
        "        raise TypeError(\n\n"
        "    TypeError: You are passing KerasTensor(...), an intermediate symbolic input\n"
    )
    assert (
        summarize_exception(TypeError(message))
        == "TypeError: You are passing KerasTensor(...), an intermediate symbolic input"
    )


def test_error_without_message_names_where_it_was_raised():
    def fit_the_model():
        raise NotImplementedError

    assert (
        summarize_exception(raised_from(fit_the_model))
        == "NotImplementedError: (no message) in fit_the_model()"
    )
    assert summarize_exception(RuntimeError("\n  \n")) == "RuntimeError: (no message)"


def raised_from(function):
    try:
        function()
    except Exception as caught:
        return caught


# --- records --------------------------------------------------------------------------------


def test_two_benchmarks_started_together_get_their_own_folders(tmp_path):
    from datetime import datetime

    now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    first, second = (ResultsFolder.create(tmp_path, "tiny", now) for _ in range(2))
    assert first.name == "20300102T030405Z-tiny" and second.name == "20300102T030405Z-tiny-2"


def test_a_cut_off_last_row_and_an_unfinished_runs_epochs_are_dropped_on_resume(tmp_path):
    folder = ResultsFolder.create(tmp_path, "tiny")
    finished, unfinished = (
        plan.PlannedRun(f"{name}-keras3-r1", name, "keras3", 1, 1) for name in "ab"
    )
    result = RunResult("ok", "", (Epoch(1, 1.0, 2, 500.0, False, 1.0, 1.0, float("nan")),))
    folder.append(RunRecord.of(finished, result, "h", 3.0), epoch_rows(finished, result))
    folder.append(RunRecord.of(unfinished, result, "h", 3.0), epoch_rows(unfinished, result))
    text = (folder.path / "runs.csv").read_text()
    # a kill between b's epoch rows and its run row, then in the middle of writing that row
    (folder.path / "runs.csv").write_text(text[: text.rindex("b-keras3-r1") + 13])
    assert folder.drop_unfinished() == {"a-keras3-r1"}
    assert list(read_epochs(folder.path).run_id) == ["a-keras3-r1"]
    assert list(read_runs(folder.path).run_id) == ["a-keras3-r1"]


def test_summary_table_gives_medians_and_ratios_to_plain_ae():
    runs = pd.concat(
        [
            frame_of(
                {("plain_ae", "keras3"): [100.0, 300.0], ("kl_layer", "keras3-port"): [250.0]}
            ),
            frame_of({("kl_layer", "keras3"): [None]}, status="failed"),
            frame_of({("closure_loss", "keras3"): [None]}, status="timeout"),
        ]
    )
    table = runner.summary_table(runs)
    lines = {line.split()[0]: line.split()[1:] for line in table.splitlines()[2:-1]}
    assert lines["plain_ae"] == ["200.0", "(1.00x)", "n/a"]
    assert lines["kl_layer"] == ["failed", "250.0", "(1.25x)"]
    assert lines["closure_loss"] == ["timeout", "n/a"]


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
    out, err = resumed.communicate(timeout=60)
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
    assert "plain_ae" in done.stdout and "(1.00x)" in done.stdout and str(folder) in done.stdout
    check_csv_schema(folder)


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
    assert timed == {
        ("kl_layer", "keras3-port"): training.paired_blocks * training.paired_block_steps,
        ("plain_ae", "keras3"): training.paired_blocks * training.paired_block_steps,
    }
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
    steps = training.paired_blocks * training.paired_block_steps
    for api, floor_api in (("keras2", "keras2"), ("keras3-port", "keras3")):
        # three models beside the floor (the run, model_add_loss and notebook_globals): two floor visits a block
        assert timed.loc["notebook_numpy_fit", api][
            ["notebook_numpy_fit", "notebook_globals", "plain_ae"]
        ].tolist() == [steps, steps, 2 * steps]
        # in the kernel: beside its floor only
        assert (
            timed.loc["notebook_kernel", api][["notebook_kernel", "plain_ae"]].tolist()
            == [steps] * 2
        )
        assert timed.loc["notebook_kernel", api][
            ["model_add_loss", "notebook_numpy_fit"]
        ].tolist() == [0, 0]
    ratios = pd.read_csv(results.folder.path / "ratios.csv")
    across = (ratios.recipe == "notebook_kernel") & (ratios.compared_with != "plain_ae")
    assert set(ratios.recipe) == {"notebook_numpy_fit", "notebook_kernel"} and across.sum() == 2
    assert (ratios.method[~across] == "paired").all() and (
        ratios.method[across] == "bootstrap"
    ).all()
