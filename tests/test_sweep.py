"""``bench sweep``: variants of one config in the same rounds, their columns, and their report."""

import collections

import numpy as np
import pytest

from bench.__main__ import main
from bench.config import plan, sweep
from bench.config import settings as config
from bench.config.plan import PlannedRun
from bench.report import sections as report
from bench.results.folder import ResultsFolder
from tests.builders import (
    append_result,
    new_folder,
    ok_result,
    only_folder,
    run_bench,
    tiny_config,
)

AXES = [("training.batch_size", ("16", "32")), ("device.xla", ("off", "autojit"))]


def test_every_combination_is_a_variant_and_every_round_holds_them_all():
    variants = sweep.variants(AXES)
    assert variants == [
        "training.batch_size=16,device.xla=off",
        "training.batch_size=16,device.xla=autojit",
        "training.batch_size=32,device.xla=off",
        "training.batch_size=32,device.xla=autojit",
    ]
    base = config.from_dict(
        {"matrix": {"recipes": ["plain_ae", "kl_layer"], "apis": ["keras2"], "repeats": 2}}
    )
    runs = plan.make_plan(base, variants)
    for repeat in (1, 2):
        round_runs = [run for run in runs if run.repeat == repeat]
        assert collections.Counter(run.variant for run in round_runs) == {
            variant: 2 for variant in variants
        }
    assert [run.repeat for run in runs] == sorted(
        run.repeat for run in runs
    )  # rounds stay interleaved
    assert len({run.run_id for run in runs}) == len(runs)


def test_a_variant_trains_under_its_own_settings():
    base = config.load("default")
    swept = sweep.config_of(base, "training.batch_size=256,device.xla=autojit,network.fact=0.01")
    assert (swept.training.batch_size, swept.device.xla, swept.network["fact"]) == (
        256,
        "autojit",
        0.01,
    )
    assert swept.settings_hash != base.settings_hash and sweep.config_of(base, sweep.BASE) == base


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--vary", "training.batch_sise=16,32"], "[training] has no key 'batch_sise'"),
        (["--vary", "training.batch_size=16,big"], "[training] batch_size must be an integer"),
        (["--vary", "matrix.repeats=1,2"], "name a setting as TABLE.KEY"),
        (["--vary", "training.batch_size"], "write SETTING=VALUE,VALUE"),
        (["--vary", "training.batch_size=16,16"], "a value is given twice"),
        (["--vary", "training.epochs=2", "--vary", "training.epochs=3"], "names a setting twice"),
        (["--vary", "device.xla=off,sometimes"], "[device] xla = 'sometimes' is not valid"),
    ],
)
def test_bad_sweeps_are_refused_in_one_line_before_anything_runs(tmp_path, capsys, args, fragment):
    tiny = tiny_config(tmp_path, ["plain_ae"])
    assert (
        main(["sweep", "--config", str(tiny), "--results-dir", str(tmp_path / "results"), *args])
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err
    assert not (tmp_path / "results").exists()


def test_the_report_says_which_gap_survives_which_setting(tmp_path):
    base = config.from_dict(
        {
            "name": "sweep",
            "matrix": {
                "recipes": ["plain_ae", "vae_loss_layer", "kl_layer"],
                "apis": ["keras2"],
                "repeats": 3,
            },
        }
    )
    variants = sweep.variants([("device.xla", ("off", "autojit"))])
    folder, planned = new_folder(tmp_path, "sweep", {}, base)
    folder.save_plan(base, plan.make_plan(base, variants), variants)
    rng = np.random.default_rng(0)
    speeds = {
        ("off", "vae_loss_layer"): 75.0,
        ("autojit", "vae_loss_layer"): 50.0,
        ("off", "kl_layer"): 50.0,
        ("autojit", "kl_layer"): 50.0,
        ("off", "plain_ae"): 50.0,
        ("autojit", "plain_ae"): 50.0,
    }
    for (xla, recipe), ms in speeds.items():
        for repeat in (1, 2, 3):
            run = PlannedRun(
                plan.run_id(recipe, "keras2", repeat, f"device.xla={xla}"),
                recipe,
                "keras2",
                repeat,
                repeat,
                f"device.xla={xla}",
            )
            append_result(folder, run, ok_result(recipe, 0.6, ms, rng))
    markdown = report.write_report(folder.path)[0].read_text()
    sweep_section = markdown.split("## Sweep\n", 1)[1].split("\n## ", 1)[0]
    assert "the gap does not survive device.xla=autojit" in sweep_section  # vae_loss_layer
    assert (
        "| recipe | API | device.xla=off | device.xla=autojit |" in sweep_section
    )  # the sweep's order
    assert (
        "kl_layer (keras2):" in sweep_section
        and "no gap over 1.05x at any setting" in sweep_section
    )
    assert (folder.path / "sweep.png").stat().st_size > 1024
    assert set(ResultsFolder(folder.path).read().runs.variant) == {
        f"device.xla={xla}" for xla in ("off", "autojit")
    }


@pytest.mark.slow
def test_a_sweep_runs_every_variant_into_one_folder(tmp_path):
    done = run_bench(
        "--config",
        tiny_config(tmp_path, ["fake_ok"], repeats=2),
        "--vary",
        "training.batch_size=8,16",
        "--results-dir",
        tmp_path / "results",
        verb="sweep",
    )
    assert done.returncode == 0, done.stderr
    results = ResultsFolder(only_folder(tmp_path / "results")).read()
    assert collections.Counter(results.runs.variant) == {
        "training.batch_size=8": 2,
        "training.batch_size=16": 2,
    }
    assert results.runs.settings_hash.nunique() == 2 and (results.runs.status == "ok").all()
    assert "## Sweep" in (results.folder.path / "report.md").read_text()
