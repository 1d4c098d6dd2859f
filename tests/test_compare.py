"""``python -m bench compare`` and ``history`` on synthetic results folders with known answers,
and the host facts of env.json."""

import math
import os
from datetime import timedelta

import numpy as np
import pytest

from bench.__main__ import main
from bench.analysis import comparison
from bench.config import settings as config
from bench.results.env import host_id
from bench.results.folder import PLAN_JSON, ResultsFolder
from bench.run import environment
from tests.builders import (
    FIXED_TIME,
    folder_of_records,
    matrix_config,
    new_folder,
    record,
)

REPEATS = 8
NOISE = 0.01
BASE = {
    ("plain_ae", "keras2"): 70.0,
    ("kl_layer", "keras2"): 77.0,
    ("gradient_tape", "keras2"): 74.0,
}
SLOWED = {**BASE, ("kl_layer", "keras2"): 77.0 * 1.3}
CI_SETTINGS = config.load("ci").to_dict()


def host(name: str) -> dict:
    return {
        "hostname": name,
        "cpu_model": "Test CPU",
        "logical_cpus": 2,
        "load_average": [0.5, 0.4, 0.3],
    }


def env_of(hostname="lab-1", commit="a" * 40, tensorflow="2.21.0", batch_size=128) -> dict:
    settings = {**CI_SETTINGS, "training": {**CI_SETTINGS["training"], "batch_size": batch_size}}
    return {
        "python": "3.11.9",
        "tensorflow": tensorflow,
        "keras": "3.12.0",
        "tf_keras": "2.21.0",
        "numpy": "2.1.0",
        "cpu": {"model": "Test CPU", "cores": 2},
        "host": host(hostname) if hostname else None,
        "git": {"commit": commit, "dirty": False},
        "config": settings,
    }


def records(ms_by_pair: dict, seed: int, speed: float = 1.0) -> list:
    """REPEATS runs per pair, ms/step = value x ``speed`` (the machine) x (1 +- 1% noise)."""
    rng = np.random.default_rng(seed)
    return [
        record(recipe, api, repeat, ms_per_step=ms * speed * rng.normal(1, NOISE))
        for (recipe, api), ms in ms_by_pair.items()
        for repeat in range(1, REPEATS + 1)
    ]


def folder(tmp_path, name, ms_by_pair, seed, speed=1.0, **env):
    return folder_of_records(tmp_path, name, records(ms_by_pair, seed, speed), env_of(**env)).path


def dated_folder(tmp_path, name, when, ms_by_pair, seed, **env):
    """A folder as the runner names one that started at ``when``."""
    written = ResultsFolder.create(tmp_path, name, when)
    written.write_env(env_of(**env))
    for run_record in records(ms_by_pair, seed):
        written.append(run_record, [])
    return written.path


def read(path):
    return ResultsFolder.existing(path).read()


def verdicts(result) -> dict:
    return {(change.recipe, change.api): change.verdict for change in result.changes}


def table_line(output: str, *cells) -> str:
    (line,) = [line for line in output.splitlines() if line.split()[: len(cells)] == list(cells)]
    return line


# --- compare ------------------------------------------------------------------------------------


def test_same_host_compares_ms_per_step_and_finds_a_30_percent_slowdown(tmp_path, capsys):
    before, after = folder(tmp_path, "a", BASE, seed=1), folder(tmp_path, "b", SLOWED, seed=2)
    result = comparison.compare(read(before), read(after))
    assert result.basis == comparison.ABSOLUTE
    assert verdicts(result) == {
        ("kl_layer", "keras2"): "slower",
        ("gradient_tape", "keras2"): "no significant change",
        ("plain_ae", "keras2"): "no significant change",
    }
    slowed = result.changes[0]
    assert (
        slowed.change == pytest.approx(1.3, rel=0.02)
        and slowed.ci_low > 1.2
        and slowed.p_value < 0.01
    )

    assert main(["compare", str(before), str(after), "--fail-slower", "10"]) == 1
    output = capsys.readouterr().out
    assert "Same host (lab-1 (Test CPU, 2 CPUs)): comparing ms/step." in output
    assert "slower (+" in table_line(output, "kl_layer", "keras2")
    assert output.splitlines()[-1].startswith(
        "significantly slower by more than 10%: kl_layer keras2 (+"
    )
    assert "gradient_tape" not in output.splitlines()[-1]


def test_no_change_is_no_significant_change_and_passes(tmp_path, capsys):
    before, after = folder(tmp_path, "a", BASE, seed=3), folder(tmp_path, "b", BASE, seed=4)
    assert main(["compare", str(before), str(after), "--fail-slower", "10"]) == 0
    output = capsys.readouterr().out
    for recipe, api in BASE:
        assert table_line(output, recipe, api).endswith("no significant change")
    assert output.splitlines()[-1] == "none significantly slower by more than 10%"


def test_a_slowdown_under_the_limit_passes(tmp_path):
    before, after = folder(tmp_path, "a", BASE, seed=1), folder(tmp_path, "b", SLOWED, seed=2)
    assert main(["compare", str(before), str(after), "--fail-slower", "40%"]) == 0


def test_different_hosts_compare_ratios_to_the_floor(tmp_path, capsys):
    """B's machine is 1.6x slower throughout: only kl_layer's own 30% shows."""
    before = folder(tmp_path, "a", BASE, seed=5, hostname="lab-1")
    after = folder(tmp_path, "b", SLOWED, seed=6, speed=1.6, hostname="lab-2")
    result = comparison.compare(read(before), read(after))
    assert result.basis == comparison.FLOOR_RATIO
    assert verdicts(result) == {
        ("kl_layer", "keras2"): "slower",
        ("gradient_tape", "keras2"): "no significant change",
        ("plain_ae", "keras2"): comparison.REFERENCE,
    }
    assert result.changes[0].change == pytest.approx(1.3, rel=0.02)
    assert math.isnan(result.changes[0].p_value)

    assert main(["compare", str(before), str(after)]) == 0
    output = capsys.readouterr().out
    assert (
        "Different hosts (lab-1 (Test CPU, 2 CPUs) vs lab-2 (Test CPU, 2 CPUs)): "
        "comparing each recipe's ratio to plain_ae"
    ) in output
    assert table_line(output, "host").endswith("*")


def test_a_folder_without_host_facts_is_compared_by_ratios(tmp_path):
    before, after = (
        folder(tmp_path, "a", BASE, seed=1, hostname=None),
        folder(tmp_path, "b", BASE, seed=2),
    )
    assert comparison.compare(read(before), read(after)).basis == comparison.FLOOR_RATIO


def test_versions_and_settings_are_listed_with_differences_marked(tmp_path, capsys):
    before = folder(tmp_path, "a", BASE, seed=1)
    after = folder(tmp_path, "b", BASE, seed=2, tensorflow="2.22.0", batch_size=64)
    assert main(["compare", str(before), str(after)]) == 0
    output = capsys.readouterr().out
    assert table_line(output, "tensorflow").split() == ["tensorflow", "2.21.0", "2.22.0", "*"]
    assert table_line(output, "keras").split() == ["keras", "3.12.0", "3.12.0"]
    assert table_line(output, "training.batch_size").split() == [
        "training.batch_size",
        "128",
        "64",
        "*",
    ]
    assert table_line(output, "settings", "hash").endswith("*")
    assert "training.epochs" not in output  # equal settings are covered by the hash


def test_pairs_in_one_folder_only_are_listed(tmp_path, capsys):
    before = folder(tmp_path, "a", {**BASE, ("kl_layer", "keras3-port"): 80.0}, seed=1)
    after = folder(tmp_path, "b", {**BASE, ("tensor_transfer", "keras2"): 75.0}, seed=2)
    assert main(["compare", str(before), str(after)]) == 0
    output = capsys.readouterr().out
    assert (
        "only in A: kl_layer keras3-port" in output
        and "only in B: tensor_transfer keras2" in output
    )


def test_a_recipe_failing_in_b_has_no_ms_per_step_there(tmp_path):
    before = folder(tmp_path, "a", BASE, seed=1)
    works = [run for run in records(BASE, seed=2) if run.recipe != "kl_layer"]
    failed = record("kl_layer", "keras2", status="failed")
    after = folder_of_records(tmp_path, "b", [*works, failed], env_of()).path
    assert (
        verdicts(comparison.compare(read(before), read(after)))["kl_layer", "keras2"]
        == "no ms/step in B"
    )


@pytest.mark.parametrize("percent", ["-5", "abc", "nan", "inf", ""])
def test_a_bad_fail_slower_percentage_is_one_line(tmp_path, capsys, percent):
    before, after = folder(tmp_path, "a", BASE, seed=1), folder(tmp_path, "b", BASE, seed=2)
    assert main(["compare", str(before), str(after), "--fail-slower", percent]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--fail-slower" in error


def test_compare_refuses_a_missing_folder_and_folders_with_nothing_in_common(tmp_path, capsys):
    before = folder(tmp_path, "a", BASE, seed=1)
    assert main(["compare", str(before), str(tmp_path / "missing")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "results folder not found" in error

    other = folder(tmp_path, "b", {("tensor_transfer", "keras3"): 75.0}, seed=2)
    assert main(["compare", str(before), str(other)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no recipe x API in common" in error


def test_change_of_ratios_is_the_ratio_of_ratios_with_a_ci_wider_than_either():
    class Ratio:
        def __init__(self, ratio, low, high):
            self.ratio, self.ci_low, self.ci_high = ratio, low, high

    change, low, high = comparison.change_of_ratios(Ratio(1.1, 1.05, 1.15), Ratio(1.43, 1.37, 1.50))
    assert change == pytest.approx(1.3)
    assert low < 1.37 / 1.15 * 1.05 and high > 1.50 / 1.05 * 0.95  # wider than either CI alone
    assert low < change < high
    single_run = Ratio(1.1, math.nan, math.nan)
    assert all(map(math.isnan, comparison.change_of_ratios(single_run, Ratio(1.2, 1.1, 1.3))[1:]))


# --- history ------------------------------------------------------------------------------------


def test_history_orders_folders_by_start_time_and_labels_them(tmp_path, capsys):
    day = timedelta(days=1)
    newest = dated_folder(tmp_path, "ci", FIXED_TIME + 2 * day, SLOWED, seed=3, commit="c" * 40)
    oldest = dated_folder(tmp_path, "ci", FIXED_TIME, BASE, seed=1, commit="a" * 40)
    middle = dated_folder(
        tmp_path, "ci", FIXED_TIME + day, BASE, seed=2, commit="b" * 40, tensorflow="2.22.0"
    )
    plot = tmp_path / "trend.png"
    assert main(["history", str(newest), str(oldest), str(middle), "--plot", str(plot)]) == 0
    output = capsys.readouterr().out
    assert [table_line(output, str(position)).split()[1] for position in (1, 2, 3)] == [
        oldest.name,
        middle.name,
        newest.name,
    ]
    assert table_line(output, "2").split()[2:7] == [
        "2025-01-02",
        "00:00:00",
        "b" * 8,
        "2.22.0",
        "3.12.0",
    ]
    ratios = table_line(output, "kl_layer", "keras2")
    assert ratios.count("1.10x") == 2 and "1.43x" in ratios
    assert "warning" not in output
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_history_warns_of_other_settings_and_dates_a_renamed_folder_by_its_plan(tmp_path, capsys):
    first = dated_folder(tmp_path, "ci", FIXED_TIME, BASE, seed=1)
    pairs = list(BASE)
    renamed, planned = new_folder(
        tmp_path, "x", env_of(batch_size=64), matrix_config(pairs, REPEATS)
    )
    for run_record in records(BASE, seed=2):
        renamed.append(run_record, [])
    planned_time = (FIXED_TIME - timedelta(days=1)).timestamp()
    os.utime(renamed.path / PLAN_JSON, (planned_time, planned_time))
    renamed_path = renamed.path.rename(tmp_path / "before-the-fix")

    assert main(["history", str(first), str(renamed_path), "--plot", str(tmp_path / "h.png")]) == 0
    output = capsys.readouterr().out
    assert table_line(output, "1").split()[1:4] == ["before-the-fix", "2024-12-31", "00:00:00"]
    (warning,) = [line for line in output.splitlines() if line.startswith("warning:")]
    assert first.name in warning and "not comparable" in warning


def test_history_refuses_a_missing_folder_and_an_unwritable_plot(tmp_path, capsys):
    assert main(["history", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    existing = folder(tmp_path, "a", BASE, seed=1)
    assert (
        main(["history", str(existing), "--plot", str(tmp_path / "no" / "such" / "dir.png")]) == 2
    )
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "cannot write the plot" in error


# --- host facts ---------------------------------------------------------------------------------


def test_machine_facts_add_the_host_and_keep_the_existing_keys():
    facts = environment.machine_facts(config.load("ci"), "python -m bench run")
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
    } <= set(facts)
    assert facts["cpu"] == {"model": facts["host"]["cpu_model"], "cores": os.cpu_count()}
    assert set(facts["host"]) == {
        "hostname",
        "os",
        "kernel",
        "cpu_model",
        "logical_cpus",
        "physical_cpus",
        "ram_total_mb",
        "cpu_mhz",
        "cpu_governor",
        "load_average",
    }


def test_host_facts_that_cannot_be_read_are_none(tmp_path, monkeypatch):
    for name in ("CPUINFO", "MEMINFO", "CPUFREQ"):
        monkeypatch.setattr(environment, name, tmp_path / "absent")

    def no_load_average():
        raise OSError("no load average here")

    monkeypatch.setattr(environment.os, "getloadavg", no_load_average)
    monkeypatch.setattr(environment.platform, "node", lambda: "")
    facts = environment.host_facts()
    for key in (
        "hostname",
        "physical_cpus",
        "ram_total_mb",
        "cpu_mhz",
        "cpu_governor",
        "load_average",
    ):
        assert facts[key] is None, key
    assert host_id({"host": facts}) == ""


def test_host_id_names_the_hardware_not_its_load():
    busy = {"host": {**host("lab-1"), "load_average": [1.9, 1.5, 1.2]}}
    idle = {"host": host("lab-1")}
    assert host_id(busy) == host_id(idle) == "lab-1 (Test CPU, 2 CPUs)"
    assert host_id({"host": host("lab-2")}) != host_id(busy)
    assert host_id({}) == host_id({"host": None}) == ""
