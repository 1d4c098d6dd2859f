"""README's answers are the reference benchmarks': each block between its markers is what
``python -m bench report --answer FOLDER`` prints for its folder, less its heading: the CPU
reference (docs/reference) and the GPU reference (docs/reference-gpu)."""

import fnmatch
import re
import shutil

import pandas as pd
import pytest

from bench.analysis.answer_data import read_answer
from bench.report.answer import ANSWER_TITLE, NOTES_LEAD, TERMINAL_WIDTH, answer_markdown
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


# What each reference keeps: what its report reads (blocks.csv: every timed step, from which
# the paired ratios and their moderated CIs are computed again), and the CPU one's gap plot,
# which README shows.
KEPT = [".gitignore", "README.md", "blocks.csv", "env.json", "ratios.csv", "runs.csv"]


@pytest.mark.parametrize(
    "folder, kept", [(REFERENCE, sorted([*KEPT, "gap.png"])), (GPU_REFERENCE, KEPT)]
)
def test_a_reference_keeps_what_its_report_reads(folder, kept):
    assert kept_files(folder) == kept


@pytest.mark.parametrize("marker", BLOCKS)
def test_a_report_of_a_reference_computes_its_ratios_again(tmp_path, marker):
    """From a fresh clone, 'bench report docs/reference[-gpu]' rewrites ratios.csv: with the
    committed blocks it must come out as committed, paired ratios and CIs included, and the
    answer as README shows it."""
    folder = BLOCKS[marker]
    copy = tmp_path / folder.name
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns(*ignored_patterns(folder)))
    write_report(str(copy))
    key = ["recipe", "api", "compared_with", "compared_api"]
    committed = pd.read_csv(folder / "ratios.csv").sort_values(key, ignore_index=True)
    again = pd.read_csv(copy / "ratios.csv").sort_values(key, ignore_index=True)
    pd.testing.assert_frame_equal(again, committed)
    assert (copy / "report.md").is_file()
    assert reference_answer(copy) == readme_answer(marker)


# What a reader scrolls through before the details are docs/': lines of a terminal's width at
# most, so that a long line cannot hide its length.
README_LINES = 180
ANSWER_COLUMNS = 7  # recipe, post, four backends, why: readable in a 120-column terminal


def table_rows(block: str) -> list:
    """Each Markdown table line of a block, split into its cells."""
    return [
        [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        for line in block.splitlines()
        if line.startswith("| ")
    ]


@pytest.mark.parametrize("marker", BLOCKS)
def test_each_answer_has_at_most_seven_columns_and_no_error_twice(marker):
    block = readme_answer(marker)
    rows = table_rows(block)
    assert rows and all(len(cells) <= ANSWER_COLUMNS for cells in rows)
    cells = " ".join(cell for cells in rows for cell in cells)
    assert "Error" not in cells  # an error is a mark in its cells, written once below
    below = block[block.index(NOTES_LEAD) :].splitlines()
    notes = [line.removeprefix("- ") for line in below if line.startswith("- ")]
    texts = [re.fullmatch(r"[⁰¹²³⁴⁵⁶⁷⁸⁹]+ (.+)", note)[1] for note in notes]
    assert len(texts) >= 2 and all(block.count(text) == 1 for text in texts), texts


@pytest.mark.parametrize("marker", BLOCKS)
def test_each_answer_fits_a_120_column_terminal(marker):
    """Every line of the answer, its tables' rows included, within a terminal's width: a row
    wrapped by the terminal is noise."""
    lines = readme_answer(marker).splitlines()
    too_wide = [line for line in lines if len(line) > TERMINAL_WIDTH]
    assert not too_wide, too_wide
    assert any(line.startswith("| kl_layer |") for line in lines)  # the table is there


def test_the_gpu_answer_leaves_out_the_backends_it_did_not_run():
    header = table_rows(readme_answer("answer-gpu"))[0]
    assert header == ["recipe", "post", "Keras 3 JAX", "Keras 3 PyTorch", "why"]


def test_readme_stays_short_and_its_prose_holds_on_both_machines():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) < README_LINES
    assert max(len(line) for line in text.splitlines()) <= TERMINAL_WIDTH
    lead = text[text.index("## The answer") : text.index("<!-- answer:start -->")]
    # the lead names both machines, and no longer says that a KL term costs nothing anywhere
    assert "2-core CPU" in lead and "H100" in lead
    assert "costs nothing measurable" not in text
