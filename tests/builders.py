"""Builders the tests share: tiny configs, benchmarks in subprocesses, and results folders and
records built through the real writer (``bench.results.folder``), never by writing CSV by hand."""

import json
import math
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import recipes
from bench.config import plan
from bench.config import settings as config
from bench.results.folder import ResultsFolder, runs_frame
from bench.results.records import (
    BLOCK_COLUMNS,
    OK,
    BlockStep,
    Epoch,
    RunRecord,
    RunResult,
    block_rows,
    epoch_rows,
    typed_frame,
)

ROOT = Path(__file__).resolve().parent.parent
FIXED_TIME = datetime(2025, 1, 1, tzinfo=UTC)

TINY = """
name = "{name}"

[device]
device = "cpu"

[training]
dataset = "synthetic"
batch_size = 16
epochs = {epochs}
warmup_epochs = 1
steps_per_epoch = 2
timeout_seconds = {timeout}
{paired}
[network]
encoder_filters = [4, 8, 8]
decoder_filters = [8, 4, 1]

[matrix]
recipes = {recipes}
apis = {apis}
repeats = {repeats}
save_artifacts = {artifacts}
"""

# How long a test waits for a state (a run recorded, a process ended) before calling it a hang:
# far past what the state takes on the slowest, busiest machine the suite runs on, never a
# measure of speed. A deadline near what the state takes quietly fails a loaded machine.
HANG_GUARD_SECONDS = 900


def tiny_config(
    tmp_path,
    recipe_names,
    repeats=1,
    epochs=2,
    timeout=120,
    artifacts=False,
    name="tiny",
    apis=("keras3",),
    paired=None,
):
    """A tiny benchmark's config; ``paired``: (blocks, steps a visit) of its paired timing, where
    the settings' default would be slow (a test that injects sleeps into the steps)."""
    paired_lines = (
        f"paired_blocks = {paired[0]}\npaired_block_steps = {paired[1]}\n" if paired else ""
    )
    text = TINY.format(
        paired=paired_lines,
        name=name,
        recipes=json.dumps(recipe_names),
        repeats=repeats,
        epochs=epochs,
        timeout=timeout,
        artifacts=str(artifacts).lower(),
        apis=json.dumps(list(apis)),
    )
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def bench_command(*args, verb="run"):
    return [sys.executable, "-m", "bench", verb, *map(str, args)]


def bench_environment():
    """The environment of a benchmark subprocess, with the fake recipes."""
    return {**os.environ, "PYTHONPATH": str(ROOT), recipes.EXTRA_RECIPES_ENV: "tests.fake_recipes"}


def run_bench(*args, timeout=400, verb="run", env=None):
    return subprocess.run(
        bench_command(*args, verb=verb),
        cwd=ROOT,
        env={**bench_environment(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def only_folder(results_dir: Path) -> Path:
    (folder,) = results_dir.iterdir()
    return folder


def record(
    recipe, api, repeat=1, status=OK, ms_per_step=None, final_loss=150.0, **values
) -> RunRecord:
    """A runs.csv row with plausible defaults: ``final_bce`` 90%, ``final_kl`` 10% of the loss;
    the run its own worker process unless ``process`` says otherwise; a run ``timed_only`` has no
    numbers of a fit."""
    ok = status == OK
    fitted = ok and not values.get("timed_only")
    run_id = values.pop("run_id", f"{recipe}-{api}-r{repeat}")
    first_epoch_seconds = values.pop("first_epoch_seconds", 3.0)
    values.setdefault("process", run_id)
    return RunRecord(
        run_id,
        recipe,
        api,
        repeat,
        status,
        ms_per_step=ms_per_step if fitted else None,
        first_epoch_seconds=first_epoch_seconds if fitted else None,
        trace_count=2 if ok else None,
        graph_ops=400 if ok else None,
        final_loss=final_loss if fitted else None,
        final_bce=0.9 * final_loss if fitted else None,
        final_kl=0.1 * final_loss if fitted and recipes.includes_kl(recipe) else None,
        **values,
    )


def frame_of(samples: dict, status=OK, final_losses: dict = None):
    """A runs frame, a row per sample: {(recipe, api): [ms/step of each run]}; final losses
    likewise."""
    rows = []
    for (recipe, api), values in samples.items():
        losses = (final_losses or {}).get((recipe, api)) or [150.0] * len(values)
        rows += [
            record(recipe, api, repeat, status, ms, loss)
            for repeat, (ms, loss) in enumerate(zip(values, losses), start=1)
        ]
    return runs_frame(rows)


def blocks_frame(steps: dict):
    """A blocks frame as a results folder reads it: {(process, recipe): [seconds of each timed
    step]}, the recipe's own keras2 steps, all in block 1."""
    import pandas as pd

    rows = []
    for (process, recipe), seconds in steps.items():
        run = plan.PlannedRun(f"{recipe}-keras2-{process}", recipe, "keras2", 1, 1, process=process)
        timed = (
            BlockStep(1, recipe, "keras2", step, value)
            for step, value in enumerate(seconds, start=1)
        )
        rows += block_rows(run, RunResult(OK, blocks=tuple(timed)))
    return typed_frame(pd.DataFrame(rows, columns=list(BLOCK_COLUMNS)))


def blocks_as_read(rows: list):
    """A blocks frame of ``rows`` (dicts of blocks.csv's columns) as a results folder reads it:
    every column of blocks.csv, a missing one empty."""
    import pandas as pd

    return typed_frame(pd.DataFrame(rows, columns=list(BLOCK_COLUMNS)))


def paired_blocks_frame(per_run: dict, blocks=4, steps=5, seed=0, noise=0.002):
    """Block steps of paired runs, each run its own process: {(recipe, api, repeat): {(model,
    model_api): seconds per step}}, each step with ``noise`` (relative SD); a blocks frame as a
    results folder reads it."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = [
        {
            "run_id": f"{recipe}-{api}-r{repeat}",
            "process": f"{recipe}-{api}-r{repeat}",
            "recipe": recipe,
            "api": api,
            "repeat": repeat,
            "block": block,
            "model": model,
            "model_api": model_api,
            "step": step,
            "seconds": seconds * rng.normal(1, noise),
        }
        for (recipe, api, repeat), models in per_run.items()
        for block in range(1, blocks + 1)
        for (model, model_api), seconds in models.items()
        for step in range(1, steps + 1)
    ]
    return typed_frame(pd.DataFrame(rows, columns=list(BLOCK_COLUMNS)))


def matrix_config(pairs, repeats, name="synthetic"):
    """A config whose [matrix] covers ``pairs`` (and every other pair of their recipes and APIs)."""
    return config.from_dict(
        {
            "name": name,
            "matrix": {
                "recipes": sorted({recipe for recipe, _ in pairs}, key=recipes.order_key),
                "apis": sorted(
                    {api for _, api in pairs}, key=lambda api: recipes.order_key("", api)
                ),
                "repeats": repeats,
            },
        }
    )


def new_folder(results_dir: Path, name: str, env: dict = None, plan_config=None) -> tuple:
    """(folder, planned runs) as the runner starts one: with ``plan_config``, its plan is stored."""
    folder = ResultsFolder.create(results_dir, name, FIXED_TIME)
    planned = plan.make_plan(plan_config) if plan_config else []
    if plan_config:
        folder.save_plan(plan_config, planned)
    if env is not None:
        folder.write_env(env)
    return folder, planned


def planned_run(planned: list, recipe: str, api: str, repeat: int) -> plan.PlannedRun:
    """The plan's run of that recipe x API x repeat, or one made up for a folder without a plan."""
    found = [run for run in planned if (run.recipe, run.api, run.repeat) == (recipe, api, repeat)]
    return (
        found[0]
        if found
        else plan.PlannedRun(f"{recipe}-{api}-r{repeat}", recipe, api, repeat, repeat)
    )


def append_result(folder: ResultsFolder, run: plan.PlannedRun, result: RunResult) -> None:
    artifacts = (
        Path(result.artifacts).relative_to(folder.path).as_posix() if result.artifacts else ""
    )
    folder.append(RunRecord.of(run, result, "abc123", 30.0, artifacts), epoch_rows(run, result))


def folder_of_records(
    results_dir: Path, name: str, records: list, env: dict = None
) -> ResultsFolder:
    folder, _ = new_folder(results_dir, name, env)
    for run_record in records:
        folder.append(run_record, [])
    return folder


def epochs_falling_to(
    final_loss: float, ms_per_step: float, rng, with_kl=True, epochs=4, warmup=1, steps=40
) -> tuple:
    """Epochs whose loss falls linearly to ``final_loss``; warm-up epochs are 3x slower."""
    rows = []
    for epoch in range(1, epochs + 1):
        loss = final_loss * (1 + 0.3 * (epochs - epoch) / epochs)
        ms = ms_per_step * (3.0 if epoch <= warmup else rng.normal(1, 0.01))
        rows.append(
            Epoch(
                epoch,
                ms * steps / 1000,
                steps,
                ms,
                epoch <= warmup,
                loss,
                0.9 * loss,
                0.1 * loss if with_kl else math.nan,
            )
        )
    return tuple(rows)


def ok_result(recipe: str, final_loss: float, ms_per_step: float, rng, **values) -> RunResult:
    epochs = epochs_falling_to(final_loss, ms_per_step, rng, with_kl=recipes.includes_kl(recipe))
    return RunResult(OK, "", epochs, trace_count=2, graph_ops=500, dataset="synthetic", **values)


def write_artifact(path: Path, rng, samples: int = 300) -> str:
    """The arrays a z_dim = 2 run saves, as random numbers: enough for the latent-space pictures."""
    import numpy as np

    path.parent.mkdir(exist_ok=True)
    np.savez(
        path,
        latent_mu=rng.normal(size=(samples, 2)),
        latent_labels=rng.integers(0, 10, samples),
        originals=rng.random((8, 28, 28)),
        reconstructions=rng.random((8, 28, 28)),
        grid_images=rng.random((25, 28, 28)),
        grid_extent=np.array([-3.0, 3.0, -3.0, 3.0]),
    )
    return str(path)
