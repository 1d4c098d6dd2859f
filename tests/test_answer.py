"""bench.analysis.answer_data and ``python -m bench report --answer`` on results folders built from
synthetic numbers: one row per recipe, read from runs.csv, ratios.csv and env.json alone."""

import dataclasses
import io
import re
import shutil

import numpy as np
import pytest

from bench.__main__ import main
from bench.analysis import answer_data, claims, tables
from bench.report import answer_table
from bench.report.answer import answer_markdown, claims_table, machine_text, source_sentence
from bench.report.provenance import commit_text
from bench.results.folder import ENV_JSON, RATIOS_CSV, RUNS_CSV, ResultsFolder
from bench.results.records import FAILED, TIMEOUT, RunResult
from bench.run import runner
from tests.builders import (
    ROOT,
    append_result,
    folder_of_records,
    matrix_config,
    new_folder,
    ok_result,
    planned_run,
    record,
)

FLOOR_OPS = {"Conv2D": 6, "Conv2DBackpropInput": 6, "Conv2DBackpropFilter": 6, "MatMul": 6}
KL_OPS = {**FLOOR_OPS, "MatMul": 9}
ENCODER_TWICE = {"Conv2D": 9, "Conv2DBackpropInput": 9, "Conv2DBackpropFilter": 9, "MatMul": 15}
# (recipe, api): (ms/step, op counts)
OK_PAIRS = {
    ("plain_ae", "keras2"): (40.0, FLOOR_OPS),
    ("plain_ae", "keras3"): (42.0, FLOOR_OPS),
    ("kl_layer", "keras2"): (41.0, KL_OPS),
    ("kl_layer", "keras3-port"): (43.0, KL_OPS),
    ("tensor_transfer", "keras2"): (41.0, KL_OPS),
    ("vae_loss_layer", "keras2"): (60.0, ENCODER_TWICE),
}
KERAS3_INPUTS = "TypeError: Layer.add_loss() got an unexpected keyword argument 'inputs'"
# (recipe, api, status, error): a registered failure, a timeout, a failure the registry does not
# expect
PROBLEMS = [
    ("kl_layer", "keras3", FAILED, KERAS3_INPUTS),
    ("tensor_transfer", "keras3", TIMEOUT, ""),
    ("gradient_tape", "keras3", FAILED, "ValueError: out of memory"),
]
# closure_loss and vae_loss_layer on keras3 are planned but not run
PLANNED_ONLY = [("closure_loss", "keras2"), ("vae_loss_layer", "keras3")]
PAIRS = [*OK_PAIRS, *((recipe, api) for recipe, api, _, _ in PROBLEMS), *PLANNED_ONLY]
ENV = {
    "cpu": {"model": "Test CPU", "cores": 8},
    "gpu": None,
    "git": {"commit": "0123456789abcdef", "dirty": False},
    "config": matrix_config(PAIRS, 3, "answer").to_dict(),  # the network's 3 encoder layers too
}
HEADER = "| recipe | post | Keras 2 | Keras 3 TF | why |"
GPU_REFERENCE = ROOT / "docs" / "reference-gpu"


def answer_folder(results_dir, env: dict = ENV) -> ResultsFolder:
    """A folder as the runner writes it, three rounds of each ok pair, analysed (ratios.csv)."""
    rng = np.random.default_rng(0)
    folder, planned = new_folder(results_dir, "answer", env, matrix_config(PAIRS, 3, "answer"))
    for (recipe, api), (ms, ops) in OK_PAIRS.items():
        for repeat in (1, 2, 3):
            result = ok_result(recipe, 0.684, ms, rng, op_counts=ops)
            append_result(folder, planned_run(planned, recipe, api, repeat), result)
    for recipe, api, status, error in PROBLEMS:
        append_result(folder, planned_run(planned, recipe, api, 1), RunResult(status, error))
    tables.analyse(folder.path)
    return folder


def rows_of(found: answer_data.Answer) -> dict:
    return {row["recipe"]: row for row in answer_table.answer_table(found).to_dict("records")}


def notes_of(found: answer_data.Answer) -> dict:
    """Mark -> the text of its note below the table."""
    return dict(line.split(" ", 1) for line in answer_table.error_notes(found))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> ResultsFolder:
    return answer_folder(tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="module")
def gpu_answer() -> answer_data.Answer:
    return answer_data.read_answer(GPU_REFERENCE)


def test_a_row_per_recipe_and_a_column_per_backend_the_run_ran(folder):
    found = answer_data.read_answer(folder.path)
    table = answer_table.answer_table(found)
    assert list(table.columns) == ["recipe", "post", "Keras 2", "Keras 3 TF", "why"]
    assert list(table.recipe) == [
        "kl_layer",
        "tensor_transfer",
        "vae_loss_layer",
        "gradient_tape",
        "closure_loss",
        "plain_ae",
    ]  # registry order
    rows, notes = rows_of(found), notes_of(found)
    kl_layer = rows["kl_layer"]
    assert kl_layer["post"] == "V"
    assert re.fullmatch(r"1\.0\dx ±[0-9.]+%", kl_layer["Keras 2"])  # 41/40
    # as written it fails on Keras 3: the port's ratio (43/42), marked, the run's own error below
    port = re.fullmatch(r"1\.0\dx ±[0-9.]+% port(.)", kl_layer["Keras 3 TF"])
    assert port and notes[port[1]] == KERAS3_INPUTS
    assert rows["tensor_transfer"]["Keras 3 TF"] == "went wrong" + answer_table.mark(2)
    assert notes[answer_table.mark(2)] == "went wrong: timeout"
    gradient_tape = rows["gradient_tape"]
    assert gradient_tape["Keras 2"] == "not run"
    assert notes[gradient_tape["Keras 3 TF"].removeprefix("went wrong")] == (
        "went wrong: failed: ValueError: out of memory"
    )
    # registered to fail and not run: the registry's error, saying so
    assert rows["vae_loss_layer"]["Keras 3 TF"].endswith("; port not run")
    closure = notes[rows["closure_loss"]["Keras 2"].removeprefix("fails")]
    assert closure == "KerasTensor (as the registry expects; not run here)"
    assert re.fullmatch(r"40\.\d ms/step", rows["plain_ae"]["Keras 2"])


def test_each_distinct_error_is_written_once_below_the_table(folder):
    found = answer_data.read_answer(folder.path)
    notes = answer_table.error_notes(found)
    texts = [line.split(" ", 1)[1] for line in notes]
    assert len(texts) == len(set(texts)) == 6
    markdown = answer_markdown(found)
    assert all(markdown.count(text) == 1 for text in texts)
    # a mark is given once per text, in order of first use
    marks = answer_table.Notes()
    assert [marks.mark(text) for text in ("a", "b", "a", "c")] == ["¹", "²", "¹", "³"]
    assert marks.lines() == ["¹ a", "² b", "³ c"]


def test_why_is_one_short_clause_and_the_report_keeps_it_in_full(folder):
    found = answer_data.read_answer(folder.path)
    rows = rows_of(found)
    assert rows["vae_loss_layer"]["why"] == answer_table.ENCODER_TWICE
    assert rows["kl_layer"]["why"] == answer_table.NO_COST  # a gap within the cost model's noise
    assert rows["closure_loss"]["why"] == answer_table.FAILS_AS_WRITTEN
    assert rows["plain_ae"]["why"] == answer_table.FLOOR_WHY
    assert rows["gradient_tape"]["why"] == ""  # it went wrong where it ran: nothing to explain
    full = answer_table.why_table(found)
    (loss_layer,) = full[full.recipe == "vae_loss_layer"].why
    assert loss_layer == (
        "encoder in the graph twice: +3 Conv2D, +3 Conv2DBackpropInput, "
        "+3 Conv2DBackpropFilter, +9 MatMul; "
        "+9 convolutions per step at ~2.30 ms each (R² 0.99): this step is bound by arithmetic"
    )
    assert "plain_ae" not in set(full.recipe)


def test_a_gpu_run_without_tensorflow_has_only_its_backends_columns(gpu_answer):
    table = answer_table.answer_table(gpu_answer)
    assert list(table.columns) == ["recipe", "post", "Keras 3 JAX", "Keras 3 PyTorch", "why"]
    why = dict(zip(table.recipe, table.why))
    # PyTorch on the H100 pays for the KL term's operators; JAX, unnamed, pays nothing
    assert why["kl_layer"] == "+70 ops, launch-bound (PyTorch)"
    twice = why["vae_loss_layer"]
    assert re.fullmatch(r"encoder twice; \+\d+ ops, launch-bound \(PyTorch\)", twice)
    assert all(len(reason) <= 50 for reason in why.values()), why


def test_on_the_cpu_reference_the_why_names_the_backends_that_pay():
    table = answer_table.answer_table(answer_data.read_answer(ROOT / "docs" / "reference"))
    why = dict(zip(table.recipe, table.why))
    # the encoder twice costs every backend on a CPU (JAX least), so the clause names none
    assert why["vae_loss_layer"] == "encoder twice"
    assert why["kl_layer"] == answer_table.NO_COST
    assert list(table.columns) == [
        "recipe",
        "post",
        "Keras 2",
        "Keras 3 TF",
        "Keras 3 JAX",
        "Keras 3 PyTorch",
        "why",
    ]


def test_the_machine_is_named_in_words(gpu_answer):
    sentence = source_sentence(gpu_answer.source)
    assert sentence.startswith("On one NVIDIA H100 80GB HBM3 beside Intel(R) Xeon(R) Processor")
    assert "{" not in sentence and "'names'" not in sentence
    source = gpu_answer.source
    two = dataclasses.replace(source, gpus=("A100", "A100"))
    assert machine_text(two).startswith("2 x A100 beside ")
    mixed = dataclasses.replace(source, gpus=("A100", "H100"))
    assert machine_text(mixed).startswith("2 GPUs (A100, H100) beside ")
    assert answer_data.gpu_names({"count": 1, "names": ["H100"]}) == ("H100",)
    assert answer_data.gpu_names(None) == answer_data.gpu_names({}) == ()
    assert answer_data.gpu_names("Tesla T4") == ("Tesla T4",)


def test_the_claims_are_one_small_table_of_claim_by_backend(gpu_answer):
    table = claims_table(gpu_answer.verdicts, gpu_answer.groups)
    ports = ["Keras 3 JAX port", "Keras 3 PyTorch port"]  # every claim's ratio there a port's
    assert list(table.columns) == ["claim", "claimed", *ports]
    assert len(table) == len(claims.CLAIMS)
    (row,) = table[table.claim == "model_add_loss / kl_layer (post VII)"].to_dict("records")
    assert row["Keras 3 PyTorch port"] == "✓ 0.99x"


def test_encoder_twice_only_where_the_extra_convolutions_are_the_encoders_layers(folder):
    results = answer_data._runs_only(folder)
    two_layers = {**ENV, "config": {**ENV["config"], "network": {"encoder_filters": [16, 32]}}}
    found = answer_data.answer_of(
        dataclasses.replace(results, env=two_layers), answer_data.read_ratios(folder)
    )
    full = answer_table.why_table(found)
    (why,) = full[(full.recipe == "vae_loss_layer")].why
    assert why.startswith("more convolutions than the floor: +3 Conv2D,")
    assert rows_of(found)["vae_loss_layer"]["why"] != answer_table.ENCODER_TWICE


def test_the_source_names_the_machine_the_run_and_the_floors_speed(folder):
    source = answer_data.read_answer(folder.path).source
    assert (source.cpu, source.cores, source.gpus, source.rounds) == ("Test CPU", "8", (), 3)
    assert (source.config, commit_text(source.git), source.folder) == (
        "answer",
        "0123456",
        folder.name,
    )
    assert set(source.floor_ms) == {"keras2", "keras3"}
    assert source.floor_ms["keras2"] == pytest.approx(40.0, rel=0.05)


def test_the_claims_verdicts_come_from_ratios_csv(folder):
    verdicts = answer_data.read_answer(folder.path).verdicts
    (loss_layer,) = [found for found in verdicts if found.claim.recipe == "vae_loss_layer"]
    assert loss_layer.api == "keras2" and loss_layer.verdict in (
        "reproduced",
        "inconclusive",
        "not reproduced",
    )
    assert loss_layer.ratio.ratio == pytest.approx(60 / 41, rel=0.05)
    unevaluated = [found for found in verdicts if found.claim.recipe == "notebook_globals"]
    assert [found.verdict for found in unevaluated] == ["not evaluated"]


def test_a_folder_of_runs_csv_ratios_csv_and_env_json_alone_gives_the_same_answer(folder, tmp_path):
    reference = tmp_path / "reference"
    reference.mkdir()
    for name in (RUNS_CSV, RATIOS_CSV, ENV_JSON):
        shutil.copy(folder.path / name, reference / name)
    whole, kept = answer_data.read_answer(folder.path), answer_data.read_answer(reference)
    assert answer_table.answer_table(kept).equals(answer_table.answer_table(whole))
    assert kept.verdicts == whole.verdicts
    assert dataclasses.replace(kept.source, folder=folder.name) == whole.source


def test_report_answer_prints_the_table_and_writes_nothing(folder, capsys):
    before = {path.name: path.read_bytes() for path in folder.path.iterdir() if path.is_file()}
    assert main(["report", "--answer", str(folder.path)]) == 0
    printed = capsys.readouterr().out
    assert HEADER in printed
    assert printed.startswith(
        "## Answer\n\nOn Test CPU, 8 cores, no GPU, other work on it unmeasured ("
    )
    assert "| vae_loss_layer / kl_layer (post IV) | 1.36-1.5x ±0.05 | " in printed
    assert "| vae_loss_layer | III/IV |" in printed
    after = {path.name: path.read_bytes() for path in folder.path.iterdir() if path.is_file()}
    assert after == before


def test_report_answer_of_a_missing_folder_or_one_without_ratios_csv_is_one_line(tmp_path, capsys):
    assert main(["report", "--answer", str(tmp_path / "no-such-folder")]) == 2
    missing = capsys.readouterr()
    assert missing.out == "" and missing.err.count("\n") == 1 and "not found" in missing.err
    unanalysed = folder_of_records(tmp_path, "bare", [record("plain_ae", "keras2", ms_per_step=5)])
    assert main(["report", "--answer", str(unanalysed.path)]) == 2
    bare = capsys.readouterr()
    assert bare.out == "" and bare.err.count("\n") == 1 and f"has no {RATIOS_CSV}" in bare.err
    assert not (unanalysed.path / RATIOS_CSV).exists()


def test_the_report_opens_with_the_same_table_report_answer_prints(folder, tmp_path, capsys):
    copy = tmp_path / folder.name
    shutil.copytree(folder.path, copy)
    markdown = runner.report.write_report(copy)[0].read_text()
    assert main(["report", "--answer", str(copy)]) == 0
    printed = capsys.readouterr().out
    # the same blocks; printed for a terminal, its paragraphs are wrapped
    assert " ".join(printed.split()) in " ".join(markdown.split())
    assert all(line in markdown.splitlines() for line in printed.splitlines() if "|" in line)


def test_a_benchmark_closes_with_the_answer_not_the_medians(folder, tmp_path):
    copy = tmp_path / folder.name
    shutil.copytree(folder.path, copy)
    results = ResultsFolder(copy).read()
    assert results.ends == "2 failed, 18 ok, 1 timeout"
    out = io.StringIO()
    runner._write_report(ResultsFolder(copy), out)
    printed = out.getvalue()
    assert HEADER in printed and "| 1.0" in printed and "±" in printed
    assert printed.rstrip().endswith(f"report: {copy / 'report.md'}")


@pytest.mark.parametrize(
    "error, short",
    [
        (KERAS3_INPUTS, KERAS3_INPUTS),
        (
            "ValueError: A KerasTensor cannot be used as input to a TensorFlow function. A "
            "KerasTensor is a symbolic placeholder for a shape and dtype.",
            "ValueError: A KerasTensor cannot be used as input to a TensorFlow function",
        ),
        (
            "TypeError: You are passing KerasTensor(type_spec=TensorSpec(shape=(), "
            "dtype=tf.float32, name=None), name='Placeholder:0', description=\"created by layer "
            "'tf.cast_2'\"), an intermediate TF-Keras symbolic input/output, to a TF API that "
            "does not allow registering custom dispatchers, such as `tf.cond`.",
            "TypeError: You are passing KerasTensor, an intermediate TF-Keras symbolic…",
        ),
        ("Traceback line one\nline two", "Traceback line one"),
        ("", ""),
    ],
)
def test_an_error_is_shortened_to_its_type_and_first_sentence(error, short):
    assert answer_table.short_error(error) == short
    assert len(answer_table.short_error(error)) <= answer_table.ERROR_WIDTH
