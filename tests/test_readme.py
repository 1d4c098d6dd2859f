"""README's answers are the reference benchmarks': each block between its markers is what
``python -m bench report --answer FOLDER`` prints for its folder, less its heading: the CPU
reference (docs/reference) and the GPU reference (docs/reference-gpu)."""

import fnmatch
import shutil

import pandas as pd
import pytest

from bench.analysis.answer_data import read_answer
from bench.report.answer import ANSWER_TITLE, answer_markdown
from bench.report.sections import write_report
from tests.builders import ROOT

README = ROOT / "README.md"
REFERENCE = ROOT / "docs" / "reference"
GPU_REFERENCE = ROOT / "docs" / "reference-gpu"
# README's marker name -> the folder its answer comes from.
BLOCKS = {"answer": REFERENCE, "answer-gpu": GPU_REFERENCE}


def readme_answer(marker: str) -> str:
    text = README.read_text(encoding="utf-8")
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    return text[text.index(start) + len(start) : text.index(end)].strip()


def reference_answer(folder) -> str:
    markdown = answer_markdown(read_answer(str(folder)))
    return markdown.strip().removeprefix(f"## {ANSWER_TITLE}").strip()


@pytest.mark.parametrize("marker", BLOCKS)
def test_readme_shows_the_reference_benchmarks_answer(marker):
    folder = BLOCKS[marker]
    assert readme_answer(marker) == reference_answer(folder), (
        f"README's {marker} block differs from {folder.name}'s: paste the output of "
        f"'python -m bench report --answer docs/{folder.name}' (less its heading) between its "
        "markers"
    )


def test_the_two_answers_name_their_machines():
    assert "no GPU" in readme_answer("answer")
    assert "H100" in readme_answer("answer-gpu")


def test_the_reference_keeps_only_what_the_answer_reads():
    kept = sorted(path.name for path in REFERENCE.iterdir())
    assert kept == ["README.md", "env.json", "gap.png", "ratios.csv", "runs.csv"]


def ignored_patterns(folder) -> list:
    """The patterns of the folder's .gitignore: what a report writes there."""
    lines = (folder / ".gitignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def kept_files(folder) -> list:
    """The folder's files less those its .gitignore names."""
    ignored = ignored_patterns(folder)
    return sorted(
        path.name
        for path in folder.iterdir()
        if not any(fnmatch.fnmatch(path.name, pattern) for pattern in ignored)
    )


def test_the_gpu_reference_keeps_what_its_report_reads():
    assert kept_files(GPU_REFERENCE) == [
        ".gitignore",
        "README.md",
        "blocks.csv",
        "env.json",
        "ratios.csv",
        "runs.csv",
    ]


def test_a_report_of_the_gpu_reference_computes_its_ratios_again(tmp_path):
    """From a fresh clone, 'bench report docs/reference-gpu' rewrites ratios.csv: with the
    committed blocks it must come out as committed, paired ratios and CIs included."""
    copy = tmp_path / GPU_REFERENCE.name
    shutil.copytree(
        GPU_REFERENCE, copy, ignore=shutil.ignore_patterns(*ignored_patterns(GPU_REFERENCE))
    )
    write_report(str(copy))
    key = ["recipe", "api", "compared_with", "compared_api"]
    committed = pd.read_csv(GPU_REFERENCE / "ratios.csv").sort_values(key, ignore_index=True)
    again = pd.read_csv(copy / "ratios.csv").sort_values(key, ignore_index=True)
    pd.testing.assert_frame_equal(again, committed)
    assert (copy / "report.md").is_file()
    assert reference_answer(copy) == readme_answer("answer-gpu")
