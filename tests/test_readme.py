"""README's answer is the reference benchmark's: the block between its markers is what
``python -m bench report --answer docs/reference`` prints, less its heading."""

from bench.analysis.answer_data import read_answer
from bench.report.answer import ANSWER_TITLE, answer_markdown
from tests.builders import ROOT

README = ROOT / "README.md"
REFERENCE = ROOT / "docs" / "reference"
START, END = "<!-- answer:start -->", "<!-- answer:end -->"


def readme_answer() -> str:
    text = README.read_text(encoding="utf-8")
    return text[text.index(START) + len(START) : text.index(END)].strip()


def reference_answer() -> str:
    markdown = answer_markdown(read_answer(str(REFERENCE)))
    return markdown.strip().removeprefix(f"## {ANSWER_TITLE}").strip()


def test_readme_shows_the_reference_benchmarks_answer():
    assert readme_answer() == reference_answer(), (
        "README's answer differs from docs/reference's: paste the output of "
        "'python -m bench report --answer docs/reference' (less its heading) between its markers"
    )


def test_the_reference_keeps_only_what_the_answer_reads():
    kept = sorted(path.name for path in REFERENCE.iterdir())
    assert kept == ["README.md", "env.json", "gap.png", "ratios.csv", "runs.csv"]
