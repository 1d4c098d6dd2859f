"""Write report.md, a self-contained report.html and ratios.csv for a results folder.

The analysis (``bench.analysis.tables``) computes the tables and writes ratios.csv; the report
(``bench.report.sections``) puts the summary first (fastest recipe per API, the floor, the verdict
on each of the posts' speed claims), then the tables (ms/step and ratios with 95% CIs, tracing,
quality guard, time to quality, runs that did not finish), the plots, the environment and the
command that reproduces the folder. Plots are written into the folder as PNG files; runs.csv and
epochs.csv are only read. Needs neither TensorFlow nor Keras.
"""

from bench.report.sections import write_report


def add_arguments(parser) -> None:
    parser.add_argument(
        "folder", help="a results folder written by 'python -m bench run' (holds runs.csv)"
    )


def run(args) -> int:
    md_path, html_path = write_report(args.folder)
    print(f"wrote {md_path}")
    print(f"wrote {html_path}")
    return 0
