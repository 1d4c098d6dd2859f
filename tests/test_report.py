"""bench.report.sections and ``python -m bench report`` on results folders built from synthetic
numbers."""

import dataclasses
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.__main__ import main
from bench.analysis import claims, findings
from bench.errors import UsageError
from bench.report.ratio_sections import OUTLIERS_SHOWN, precision_sentence
from bench.report.sections import write_report
from bench.results.folder import OUTLIERS_CSV
from bench.results.records import BlockStep, RunRecord, RunResult, block_rows, epoch_rows
from tests.builders import (
    append_result,
    folder_of_records,
    matrix_config,
    new_folder,
    ok_result,
    planned_run,
    record,
    write_artifact,
)

# ms/step of each recipe x API: notebook_globals is 1.4x model_add_loss, as post VII claims
SPEEDS = {
    ("plain_ae", "keras2"): 40.0,
    ("kl_layer", "keras2"): 45.0,
    ("tensor_transfer", "keras2"): 48.0,
    ("model_add_loss", "keras2"): 46.0,
    ("notebook_globals", "keras2"): 64.4,
    ("vae_loss_layer", "keras2"): 63.0,
    ("plain_ae", "keras3"): 42.0,
    ("kl_layer", "keras3-port"): 47.0,
}
PROBLEMS = [
    ("closure_loss", "keras2", "failed", "TypeError: Cannot convert a symbolic KerasTensor"),
    ("gradient_tape", "keras2", "timeout", ""),
]
PLOTS = ("claims.png", "gap.png", "epoch_times.png", "loss_curves.png", "compat.png")
PICTURES = ("latent.png", "reconstructions.png", "latent_grid.png")
ENV = {
    "python": "3.11.9",
    "tensorflow": "2.21.0",
    "cpu": {"model": "Test CPU"},
    "gpu": None,
    "device_settings": {"note": "no GPU present"},
    "config": {"name": "synthetic", "training": {"batch_size": 128}},
    "command": "python -m bench run --config synthetic",
}


def write_results_folder(
    results_dir: Path,
    name="synthetic",
    speeds: dict = SPEEDS,
    problems=(),
    repeats: int = 3,
    artifacts=("kl_layer", "plain_ae"),
    env: dict = ENV,
) -> Path:
    """A results folder as the runner writes it, from synthetic numbers (seeded), with a plan of
    every pair of its recipes and APIs; the first run of each recipe in ``artifacts`` gets an
    artifacts file (two recipes keep the picture plots quick)."""
    rng = np.random.default_rng(0)
    pairs = [*speeds, *((recipe, api) for recipe, api, _, _ in problems)]
    folder, planned = new_folder(results_dir, name, env, matrix_config(pairs, repeats, name))
    for (recipe, api), ms in speeds.items():
        for repeat in range(1, repeats + 1):
            run = planned_run(planned, recipe, api, repeat)
            picture = (
                write_artifact(folder.artifact_path(run.run_id), rng)
                if recipe in artifacts and repeat == 1
                else None
            )
            append_result(
                folder,
                run,
                ok_result(recipe, 150 * rng.normal(1, 0.005), ms, rng, artifacts=picture),
            )
    for recipe, api, status, error in problems:
        append_result(folder, planned_run(planned, recipe, api, 1), RunResult(status, error))
    return folder.path


def section(markdown: str, title: str) -> str:
    return markdown.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


# A claim's Keras 2 row in the report's claims section: its ratio, its CI and, where the verdict
# was decided on another interval, that one: "1.40x [a, b]; 95% two one-sided [c, d] |
# reproduced |"
VERDICT_ON_KERAS2 = re.compile(
    r"\| keras2 \| [^|]+ \| (?P<ratio>[0-9.]+)x \[(?P<ci_low>[0-9.]+), (?P<ci_high>[0-9.]+)\]"
    r"(?:; [0-9.]+% (?:two one-sided|simultaneous) \[(?P<low>[0-9.]+), (?P<high>[0-9.]+)\])? \| "
    r"(?P<verdict>[a-z ]+) \|"
)


def assert_reproduced(markdown: str, claim: claims.Claim) -> None:
    """The claim's Keras 2 verdict: reproduced in the answer, at SPEEDS' ratio, and in the
    report's claims section on an interval inside the claim's range widened by its margin."""
    name = f"{claim.recipe} / {claim.baseline} (post {claim.post})"
    (answer_row,) = [line for line in section(markdown, "Answer").splitlines() if name in line]
    expected = SPEEDS[(claim.recipe, "keras2")] / SPEEDS[(claim.baseline, "keras2")]
    assert f"| ✓ {expected:.2f}x |" in answer_row, answer_row
    rows = [line for line in section(markdown, "The posts' claims").splitlines() if name in line]
    found = [VERDICT_ON_KERAS2.search(line) for line in rows]
    (found,) = [match for match in found if match]
    assert found["verdict"] == "reproduced"
    ratio = float(found["ratio"])
    assert ratio == pytest.approx(expected, abs=0.01)
    low, high = float(found["low"] or found["ci_low"]), float(found["high"] or found["ci_high"])
    widened_low, widened_high = claim.equivalence_range
    assert widened_low <= low <= ratio <= high <= widened_high


def test_report_of_a_folder_with_failed_and_timed_out_runs(tmp_path):
    folder = write_results_folder(tmp_path, problems=PROBLEMS)
    csv_before = (folder / "runs.csv").read_bytes(), (folder / "epochs.csv").read_bytes()
    md_path, html_path = write_report(folder)
    markdown, page = md_path.read_text(), html_path.read_text()
    answer = section(markdown, "Answer")
    (notebook_claim,) = [claim for claim in claims.CLAIMS if claim.recipe == "notebook_globals"]
    assert_reproduced(markdown, notebook_claim)  # 64.4 / 46 ms/step = 1.40x, in 1.3-1.5x
    # 46 vs 45 ms/step
    assert "| model_add_loss / kl_layer (post VII) | 0.9-1.1x ±0.05 | ✓ " in answer
    assert "keras3-port" in section(markdown, "Speed") and " ms/step [" in section(
        markdown, "Speed"
    )
    went_wrong = section(markdown, "Runs that went wrong")
    assert "timeout" in went_wrong
    # in the matrix, absent from runs.csv; it fails as written, so only round 1 was due
    assert "| kl_layer | keras3 | 1 | not run |" in went_wrong
    assert page.count("data:image/png;base64,") == len(PLOTS) + len(PICTURES)
    assert "<table" in page and "reproduced" in page
    for name in PLOTS + PICTURES:
        assert (folder / name).stat().st_size > 1024, name
    assert ((folder / "runs.csv").read_bytes(), (folder / "epochs.csv").read_bytes()) == csv_before
    assert markdown.rstrip().endswith("python -m bench run --config synthetic\n```")


def test_report_without_artifacts_or_environment_says_so(tmp_path):
    folder = write_results_folder(tmp_path, "quick", artifacts=(), env={})
    md_path, html_path = write_report(folder)
    markdown = md_path.read_text()
    assert "plots skipped" in markdown
    assert html_path.read_text().count("data:image/png;base64,") == len(PLOTS)
    assert not any((folder / name).exists() for name in PICTURES)
    assert "Python: unknown" in markdown
    assert "python -m bench run --config quick" in markdown  # config name from the folder name


def test_a_run_with_an_injected_slowdown_says_so_first(tmp_path):
    folder = write_results_folder(
        tmp_path, "ci", env={"injected_slowdown": {"kl_layer/keras2": 80.0}}
    )
    answer = section(write_report(folder)[0].read_text(), "Answer")
    assert answer.lstrip().startswith(
        "DELIBERATE SLOWDOWN INJECTED (KLBENCH_INJECT_SLOWDOWN): kl_layer/keras2 +80 ms/step."
    )


def test_the_report_opens_with_the_answer_then_the_two_pictures_then_the_details(tmp_path):
    folder = write_results_folder(tmp_path, problems=PROBLEMS, artifacts=())
    markdown = write_report(folder)[0].read_text()
    headings = re.findall(r"^## (.+)$", markdown, flags=re.MULTILINE)
    assert headings[:2] == ["Answer", "Summary"]
    answer = section(markdown, "Answer")
    assert answer.index("| recipe | post | Keras 2 |") < answer.index("| claim | claimed |")
    pictures = answer.index("![The posts' claims"), answer.index("![Step time of each KL recipe")
    assert answer.index("(post IV) |") < pictures[0] < pictures[1]


def test_failures_the_registry_expects_are_the_answer_not_runs_gone_wrong(tmp_path):
    # closure_loss raises as written on Keras 2 with the registered error; gradient_tape timed out
    folder = write_results_folder(tmp_path, problems=PROBLEMS, artifacts=())
    markdown = write_report(folder)[0].read_text()
    summary, went_wrong = section(markdown, "Summary"), section(markdown, "Runs that went wrong")
    assert "did not finish" not in markdown
    assert (
        "1 run(s) failed as the registry expects" in summary and "closure_loss (keras2)" in summary
    )
    # the plan's other pairs never ran: they went wrong too, as missing runs
    outcomes = re.search(r"run\(s\) went wrong \((.*)\): see 'Runs that went wrong'", summary)
    assert "1 timeout" in outcomes[1] and "failed" not in outcomes[1]
    assert "closure_loss | keras2" not in went_wrong
    assert "| gradient_tape | keras2 | 1 | timeout |" in went_wrong
    answer = section(markdown, "Answer")
    (row,) = [line for line in answer.splitlines() if "| closure_loss |" in line]
    mark = re.search(r"\| III \| fails(\S+) \|", row)[1]  # Keras 2's cell: its error's mark
    assert f" {mark} TypeError: Cannot convert a symbolic KerasTensor" in answer


def test_a_folder_where_every_failure_is_registered_has_nothing_gone_wrong(tmp_path):
    speeds = {key: SPEEDS[key] for key in [("plain_ae", "keras2"), ("kl_layer", "keras2")]}
    problems = [("closure_loss", "keras2", "failed", "TypeError: symbolic KerasTensor")]
    folder = write_results_folder(
        tmp_path, speeds=speeds, problems=problems, repeats=2, artifacts=()
    )
    summary = section(write_report(folder)[0].read_text(), "Summary")
    assert "No run went wrong" in summary and "went wrong (" not in summary


def disturbed_folder(results_dir: Path, disturbed: list, calm: int = 12) -> Path:
    """kl_layer timed against plain_ae in its own worker process each round: ``calm`` processes
    at 1.2x, then one process at each ratio of ``disturbed``."""
    rng = np.random.default_rng(3)
    folder, _ = new_folder(results_dir, "disturbed", ENV)
    ratios = [1.2 * rng.normal(1, 0.001) for _ in range(calm)] + list(disturbed)
    for repeat, ratio in enumerate(ratios, start=1):
        run = planned_run([], "kl_layer", "keras2", repeat)
        steps = tuple(
            BlockStep(block, model, "keras2", step, 0.05 * factor)
            for block in (1, 2, 3)
            for model, factor in (("kl_layer", ratio), ("plain_ae", 1.0))
            for step in (1, 2)
        )
        result = dataclasses.replace(ok_result("kl_layer", 150.0, 60.0, rng), blocks=steps)
        record = RunRecord.of(run, result, "abc", 30.0)
        folder.append(record, epoch_rows(run, result), block_rows(run, result))
    return folder.path


def test_the_report_lists_the_worst_disturbed_runs_and_the_csv_holds_them_all(tmp_path):
    disturbed = [1.5, 2.2, 1.6, 2.1, 1.7, 2.0, 1.8, 1.9]
    folder = disturbed_folder(tmp_path, disturbed)
    section_text = section(write_report(folder)[0].read_text(), "Disturbed runs")
    shown = re.findall(r"^\| (kl_layer-keras2-r\d+) \|", section_text, flags=re.MULTILINE)
    written = pd.read_csv(folder / OUTLIERS_CSV)
    assert len(written) == len(disturbed) and list(written.mads) == sorted(written.mads)[::-1]
    assert shown == list(written.run_id[:OUTLIERS_SHOWN])  # the furthest out, furthest first
    worst = 12 + 1 + disturbed.index(max(disturbed))
    assert shown[0] == f"kl_layer-keras2-r{worst}"
    assert f"all {len(disturbed)}, furthest first, are in {OUTLIERS_CSV}" in section_text


def test_a_few_disturbed_runs_are_all_listed_and_the_csv_is_written_even_when_empty(tmp_path):
    few = disturbed_folder(tmp_path / "few", [1.9, 2.0])
    text = section(write_report(few)[0].read_text(), "Disturbed runs")
    assert text.count("| kl_layer-keras2-r") == 2 and f"also in {OUTLIERS_CSV}" in text
    calm = disturbed_folder(tmp_path / "calm", [])
    write_report(calm)
    assert pd.read_csv(calm / OUTLIERS_CSV).empty


def test_the_quality_guard_prints_losses_and_kl_terms_in_significant_figures(tmp_path):
    # a converged run's KL term is a few millionths: fixed decimals would print 0.00
    records = [
        dataclasses.replace(
            record(recipe, "keras2", repeat, ms_per_step=50.0), final_loss=loss, final_kl=kl
        )
        for recipe, losses, kls in (
            ("plain_ae", (0.6801, 0.6803), (None, None)),
            ("kl_layer", (0.6838, 0.6842), (3.67e-6, 3.69e-6)),
        )
        for repeat, loss, kl in zip((1, 2), losses, kls)
    ]
    folder = folder_of_records(tmp_path, "quality", records, ENV)
    quality = section(write_report(folder.path)[0].read_text(), "Quality guard")
    (kl_row,) = [line for line in quality.splitlines() if line.startswith("| kl_layer |")]
    assert "| 0.684 [0.684, 0.684] |" in kl_row and "| 3.68e-6 [3.67e-6, 3.68e-6] |" in kl_row


def test_the_summary_names_no_recipe_of_a_one_against_one_disagreement(tmp_path):
    losses = {"plain_ae": 0.6801, "kl_layer": 0.6838, "gradient_tape": 0.6842}
    records = [
        record(recipe, "keras2", 1, ms_per_step=50.0, final_loss=loss)
        for recipe, loss in losses.items()
    ]
    folder = folder_of_records(tmp_path, "one-against-one", records, ENV)
    summary = section(write_report(folder.path)[0].read_text(), "Summary")
    (guard,) = [line for line in summary.splitlines() if "Quality guard" in line]
    assert (
        "In round 1 (keras2), kl_layer 0.683800 and gradient_tape 0.684200 end at different "
        "losses (to 1e-05) and no two KL recipes agree: the guard cannot tell which trains "
        "something else."
    ) in guard
    assert "round 1.0" not in guard and "it trains something else" not in guard


def test_report_command_writes_both_files(tmp_path, capsys):
    speeds = {key: SPEEDS[key] for key in [("plain_ae", "keras2"), ("kl_layer", "keras2")]}
    folder = write_results_folder(tmp_path, speeds=speeds, repeats=2, artifacts=())
    assert main(["report", str(folder)]) == 0
    assert capsys.readouterr().out.count("wrote ") == 2


def test_report_command_on_a_missing_folder_fails_with_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "no-such-folder")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1


def test_folder_without_runs_csv_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no runs.csv"):
        write_report(tmp_path)


def test_precision_sentence_gives_the_widest_and_median_half_width_and_the_cost_of_the_target():
    # three ratios of 3 runs; a round of the matrix takes 40 s
    ratios = pd.DataFrame(
        {
            "recipe": ["vae_loss_layer", "kl_layer", "gradient_tape"],
            "api": ["keras2"] * 3,
            "compared_with": ["plain_ae"] * 3,
            "n": [3, 3, 3],
            "half_width": [0.10, 0.04, 0.03],
            "method": ["paired"] * 3,
        }
    )
    sentence = precision_sentence(findings.precision(ratios, round_seconds=40.0))
    assert sentence == (
        "Ratio CIs are at most ±10.0% wide (vae_loss_layer vs plain_ae, keras2, paired), "
        "±4.0% at the median, against the ±2% target: over. A half-width shrinks ~1/sqrt(runs) "
        "(faster while the t-quantile of few runs falls), so the median pair's 3 runs would have "
        "to become about 12: 9 more round(s) of this matrix, about 0.1 h."
    )
    within = findings.precision(ratios.assign(half_width=[0.03, 0.02, 0.01]))
    assert precision_sentence(within).endswith("against the ±2% target: the median within target.")
    assert precision_sentence(None) == "No ratio has a CI (it takes 2 or more ok runs)."


def test_runs_of_two_hosts_are_reported_apart_never_pooled(tmp_path):
    rng = np.random.default_rng(1)
    base = matrix_config([("plain_ae", "keras2"), ("kl_layer", "keras2")], 2, "cluster")
    folder, planned = new_folder(tmp_path, "cluster", ENV, base)
    # the same recipe, 1.1x and 1.5x the floor
    for host, kl_ms in (("node-a", 45.0), ("node-b", 60.0)):
        for recipe, ms in (("plain_ae", 40.0), ("kl_layer", kl_ms)):
            for repeat in (1, 2):
                run = planned_run(planned, recipe, "keras2", repeat)
                run = dataclasses.replace(run, run_id=f"{run.run_id}-{host}")
                record = RunRecord.of(run, ok_result(recipe, 0.6, ms, rng), "abc", 30.0, host=host)
                folder.append(record, epoch_rows(run, ok_result(recipe, 0.6, ms, rng)))
    markdown = write_report(folder.path)[0].read_text()
    hosts = section(markdown, "Hosts")
    (kl_row,) = [line for line in hosts.splitlines() if line.startswith("| kl_layer")]
    assert "| 1.12x [" in kl_row and "| 1.5" in kl_row  # node-a 45/40, node-b 60/40: not pooled
    ratios = pd.read_csv(folder.path / "ratios.csv")
    assert set(ratios.host) == {"node-a", "node-b"}


def test_a_quick_run_of_one_process_per_recipe_names_no_fastest_recipe(tmp_path):
    folder = write_results_folder(tmp_path, "quick", repeats=1, artifacts=())
    summary = section(write_report(folder)[0].read_text(), "Summary")
    assert "keras2: each KL recipe was measured in one process" in summary
    assert "decides nothing" in summary
    assert "fastest KL recipe is" not in summary and "tied for" not in summary


def test_the_summary_names_the_fastest_and_slowest_where_their_intervals_stand_apart(tmp_path):
    summary = section(write_report(write_results_folder(tmp_path))[0].read_text(), "Summary")
    (keras2,) = [line for line in summary.splitlines() if line.startswith("- keras2:")]
    # kl_layer 45 and model_add_loss 46 ms/step overlap with narrow CIs: tied; the two at
    # ~1.6x stand apart from them
    assert "tied for fastest" in keras2 and "kl_layer" in keras2 and "slowest" in keras2
