"""Write report.md, a self-contained report.html and ratios.csv for a results folder.

The analysis (``bench.analysis.tables``) computes the tables and writes ratios.csv and
outliers.csv; the report (``bench.report.sections``) opens with the answer (one row per recipe:
where it runs as written or ported, its paired ratio to the floor with a 95% CI, and why, from the
op counts; the posts' claims with their verdicts), then the claims plot and the gap plot, then the
details (speed and ratio tables, tracing, quality guard, time to quality, runs that went wrong),
the plots, the environment and the command that reproduces the folder. Plots are written into the
folder as PNG files; runs.csv and epochs.csv are only read. Needs neither TensorFlow nor Keras.

With --answer, print the answer as Markdown and write nothing: it needs only the folder's
runs.csv, ratios.csv (which a report writes) and env.json.
"""

from bench.analysis.answer_data import read_answer
from bench.cli.common import declare_recorded
from bench.report.answer import answer_markdown
from bench.report.sections import write_report


def add_arguments(parser) -> None:
    parser.add_argument(
        "folder", help="a results folder written by 'python -m bench run' (holds runs.csv)"
    )
    parser.add_argument(
        "--answer",
        action="store_true",
        help="print the answer table (Markdown), its machine and run, and the claims' verdicts; "
        "write nothing (needs the folder's ratios.csv)",
    )


def run(args) -> int:
    declare_recorded([args.folder])  # the folder's own recipes: from its records, never imported
    if args.answer:
        print(answer_markdown(read_answer(args.folder)), end="")
        return 0
    md_path, html_path = write_report(args.folder)
    print(f"wrote {md_path}")
    print(f"wrote {html_path}")
    return 0
