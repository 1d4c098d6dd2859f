"""bench.analysis.tables on results folders built from synthetic numbers: slices per variant and
per host, and ratios.csv, written by the analysis step before (and without) any report."""

import dataclasses
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from bench.analysis import step_ratios, tables
from bench.config import plan
from bench.errors import UsageError
from bench.results.folder import RATIOS_CSV
from bench.results.records import RunRecord, epoch_rows
from tests.builders import append_result, matrix_config, new_folder, ok_result, planned_run

# notebook_globals / model_add_loss is both a claim and a reading: ratios.csv holds it once
SPEEDS = {
    ("plain_ae", "keras2"): 40.0,
    ("kl_layer", "keras2"): 45.0,
    ("model_add_loss", "keras2"): 46.0,
    ("notebook_globals", "keras2"): 64.4,
}
VARIANTS = ["device.xla=off", "device.xla=autojit"]


def plain_folder(tmp_path):
    rng = np.random.default_rng(0)
    folder, planned = new_folder(tmp_path, "plain", {}, matrix_config(list(SPEEDS), 2, "plain"))
    for (recipe, api), ms in SPEEDS.items():
        for repeat in (1, 2):
            append_result(
                folder, planned_run(planned, recipe, api, repeat), ok_result(recipe, 150, ms, rng)
            )
    return folder


def two_host_folder(tmp_path):
    """kl_layer at 1.1x the floor on node-a and 1.5x on node-b."""
    rng = np.random.default_rng(1)
    pairs = [("plain_ae", "keras2"), ("kl_layer", "keras2")]
    folder, planned = new_folder(tmp_path, "cluster", {}, matrix_config(pairs, 2, "cluster"))
    for host, kl_ms in (("node-a", 45.0), ("node-b", 60.0)):
        for recipe, ms in (("plain_ae", 40.0), ("kl_layer", kl_ms)):
            for repeat in (1, 2):
                run = planned_run(planned, recipe, "keras2", repeat)
                run = dataclasses.replace(run, run_id=f"{run.run_id}-{host}")
                result = ok_result(recipe, 0.6, ms, rng)
                folder.append(
                    RunRecord.of(run, result, "abc", 30.0, host=host), epoch_rows(run, result)
                )
    return folder


def sweep_folder(tmp_path):
    """plain_ae and kl_layer in both variants; kl_layer at autojit only in round 1."""
    base = matrix_config([("plain_ae", "keras2"), ("kl_layer", "keras2")], 2, "sweep")
    folder, _ = new_folder(tmp_path, "sweep", {}, base)
    planned = plan.make_plan(base, VARIANTS)
    folder.save_plan(base, planned, VARIANTS)
    rng = np.random.default_rng(2)
    for run in planned:
        if run.recipe == "kl_layer" and run.variant == VARIANTS[1] and run.repeat == 2:
            continue
        append_result(folder, run, ok_result(run.recipe, 0.6, 50.0, rng))
    return folder


def test_analyse_writes_ratios_csv_and_no_report(tmp_path):
    folder = plain_folder(tmp_path)
    analysis = tables.analyse(folder.path)
    written = pd.read_csv(folder.path / RATIOS_CSV, keep_default_na=False)
    assert not (folder.path / "report.md").exists()
    assert list(written.columns) == [*step_ratios.RATIO_COLUMNS, "variant", "host"]
    assert len(written) == len(analysis.all_ratios())
    pairs = list(zip(written.recipe, written.compared_with))
    assert pairs.count(("notebook_globals", "model_add_loss")) == 1
    assert ("kl_layer", "plain_ae") in pairs
    assert set(written.variant) == {""} and set(written.host) == {""}


def test_analyse_of_a_folder_without_runs_or_where_ratios_csv_cannot_be_written(tmp_path):
    with pytest.raises(UsageError, match="no runs.csv"):
        tables.analyse(tmp_path)
    folder = plain_folder(tmp_path)
    (folder.path / RATIOS_CSV).mkdir()
    with pytest.raises(UsageError, match=f"cannot write {RATIOS_CSV} into"):
        tables.analyse(folder.path)


def test_the_runs_of_two_hosts_are_analysed_apart_never_pooled(tmp_path):
    analysis = tables.analysis_of(two_host_folder(tmp_path).read())
    assert analysis.hosts == ["node-a", "node-b"] and analysis.host == "node-a"
    assert set(analysis.main.runs.host) == {"node-a"} and analysis.main.planned is None
    by_host = {host: found.ratios.iloc[0].ratio for host, found in analysis.per_host.items()}
    assert by_host == {
        "node-a": pytest.approx(45 / 40, rel=0.03),
        "node-b": pytest.approx(60 / 40, rel=0.03),
    }
    written = analysis.all_ratios()
    assert sorted(written[written.recipe == "kl_layer"].host) == ["node-a", "node-b"]


def test_a_sweeps_variants_are_analysed_apart_each_with_its_own_plan(tmp_path):
    analysis = tables.analysis_of(sweep_folder(tmp_path).read())
    assert analysis.variants == VARIANTS and analysis.host is None and analysis.per_host == {}
    assert set(analysis.main.runs.variant) == {VARIANTS[0]}
    assert {run.variant for run in analysis.main.planned} == {VARIANTS[0]}
    autojit = analysis.per_variant[VARIANTS[1]]
    assert list(autojit.unfinished.recipe) == ["kl_layer"]  # its round 2 is missing
    assert list(analysis.all_ratios().variant) == VARIANTS


def test_tables_of_slices_stack_and_line_up_side_by_side():
    frame = pd.DataFrame({"recipe": ["vae_loss_layer", "kl_layer"], "api": ["keras2"] * 2})
    per_variant = {"off": SimpleNamespace(ratios=frame), "on": SimpleNamespace(ratios=frame[:1])}
    ratios = tables.stacked(per_variant, "ratios", "variant")
    assert list(ratios.variant) == ["off", "off", "on"]
    lined_up = tables.side_by_side(ratios, "variant")
    assert [(recipe, list(rows)) for recipe, _, rows in lined_up] == [
        ("kl_layer", ["off"]),
        ("vae_loss_layer", ["off", "on"]),
    ]
