"""The deliberate regression switch: parsed strictly, off by default, recorded, and really
inside the steps."""

import json
import subprocess

import pandas as pd
import pytest

from bench import recipes
from bench.config import injection
from bench.config.plan import PlannedRun
from bench.errors import UsageError
from bench.results.records import RunSpec
from tests.builders import (
    ROOT,
    bench_command,
    bench_environment,
    only_folder,
    tiny_config,
)


def parse(value):
    return injection.from_environment(recipes.known(), {injection.ENV_VAR: value})


def test_unset_means_no_injection():
    assert injection.from_environment(recipes.known(), {}) == {}
    assert parse(" ") == {}


def test_pairs_and_milliseconds_are_parsed():
    assert parse("kl_layer/keras2=80, plain_ae/keras3=12.5") == {
        "kl_layer/keras2": 80.0,
        "plain_ae/keras3": 12.5,
    }


def test_a_star_slows_every_recipe_of_its_api_and_a_named_pair_overrides_it():
    injected = parse("*/keras2=15, kl_layer/keras2=40")
    run = PlannedRun("kl_layer-keras2-r1", "kl_layer", "keras2", 1, 1)
    spec = RunSpec(run, {}, {}, {}, injected=injected)
    assert spec.injected_ms("plain_ae", "keras2") == 15.0  # the floor too
    assert spec.injected_ms("kl_layer", "keras2") == 40.0
    assert spec.injected_ms("plain_ae", "keras3") == 0.0


@pytest.mark.parametrize(
    "value, named",
    [
        ("kl_layr/keras2=80", "kl_layr/keras2=80"),
        ("kl_layer/keras4=80", "kl_layer/keras4=80"),
        ("kl_layer=80", "kl_layer=80"),
        ("kl_layer/keras2=fast", "positive number"),
        ("kl_layer/keras2=-5", "positive number"),
        ("kl_layer/keras2=inf", "positive number"),
        ("kl_layer/keras2", "positive number"),
    ],
)
def test_bad_values_are_refused_with_the_item_named(value, named):
    with pytest.raises(UsageError, match=injection.ENV_VAR) as error:
        parse(value)
    assert named in str(error.value)


def bench_with_injection(tmp_path, value):
    """A tiny benchmark of the fast fake recipe with ``KLBENCH_INJECT_SLOWDOWN=value``."""
    return subprocess.run(
        bench_command(
            "--config",
            # 4 blocks of 3 steps: 12 sleeps a model still make one idle stretch far past
            # stall.STALL_SECONDS, without the settings' default blocks of sleeps.
            tiny_config(tmp_path, ["fake_ok"], paired=(4, 3)),
            "--results-dir",
            tmp_path / "results",
        ),
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**bench_environment(), injection.ENV_VAR: value},
        timeout=400,
    )


@pytest.mark.slow
def test_injected_sleep_lands_inside_every_timed_step_and_is_recorded(tmp_path):
    done = bench_with_injection(tmp_path, "fake_ok/keras3=400")
    assert done.returncode == 0, done.stderr
    assert "injected slowdown (KLBENCH_INJECT_SLOWDOWN): fake_ok/keras3 +400 ms/step" in done.stdout
    folder = only_folder(tmp_path / "results")
    assert json.loads((folder / "env.json").read_text())["injected_slowdown"] == {
        "fake_ok/keras3": 400.0
    }
    # A lower bound a sleep guarantees, not a timing: a step of the tiny model alone takes ~1 ms.
    timed = pd.read_csv(folder / "epochs.csv").query("not warmup")
    assert (timed.ms_per_step >= 400).all()
    # The worker accounts for its wall time, phase by phase; the injected sleep is idle time by
    # design, which the stall watch records (bench/measure/stall.py).
    runs = pd.read_csv(folder / "runs.csv")
    phases = ["startup_seconds", "blocks_seconds", "teardown_seconds"]
    per_run = runs.build_seconds + runs.train_seconds
    assert (runs[phases] >= 0).all().all() and (per_run >= 0).all()
    assert (runs[phases].sum(axis=1) + per_run.sum() <= runs.wall_seconds).all()
    assert (runs.stalled_seconds > 0).all(), "400 ms sleeps in every timed step went unseen"


@pytest.mark.slow
def test_a_bad_injection_stops_the_benchmark_before_any_run(tmp_path):
    done = bench_with_injection(tmp_path, "nope/keras3=1")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "nope/keras3=1" in done.stderr
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())
