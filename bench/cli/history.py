"""Each recipe x API's ms/step ratio to plain_ae across results folders, oldest first.

For a trend over commits and package versions: the folders are put in the order their
benchmarks started (the UTC time their names begin with; for a renamed folder, when its
plan.json was written) and labelled by git commit and TensorFlow/Keras versions. Prints a table
of the ratios with 95% CIs and writes a plot (--plot, default history.png; its extension names
the format, one matplotlib writes; the path is checked before any folder is read). Ratios
measured under other settings than the first folder's are not comparable: each such folder gets
a warning line.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, as the report's figures
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bench.analysis import comparison, machine_load  # noqa: E402
from bench.cli.common import declare_recorded  # noqa: E402
from bench.cli.output import OutputFile, figure_formats, save_figure  # noqa: E402
from bench.errors import UsageError  # noqa: E402
from bench.formatting import MISSING, ratio_text, text_table  # noqa: E402
from bench.recipes import order_key  # noqa: E402
from bench.report.conditions import shared_against_quiet  # noqa: E402
from bench.report.plots import API_LINESTYLES, API_MARKERS, recipe_colour  # noqa: E402
from bench.report.provenance import backends_sentence, commit_text  # noqa: E402
from bench.results.folder import ResultsFolder  # noqa: E402
from vae_impls import registry  # noqa: E402

LABEL_VERSIONS = ("tensorflow", "keras", "tf_keras")


def add_arguments(parser) -> None:
    parser.add_argument(
        "folders", nargs="+", type=Path, metavar="FOLDER", help="results folders, in any order"
    )
    parser.add_argument(
        "--plot",
        type=Path,
        default=Path("history.png"),
        metavar="FILE",
        help="where the plot is written, in the format its extension names "
        "(default: history.png here)",
    )


def run(args) -> int:
    plot = OutputFile(args.plot, "the plot", figure_formats(Figure())).checked()
    declare_recorded(args.folders)  # their recipes: from their records, never imported
    series = comparison.in_time_order(
        [ResultsFolder.existing(path).read() for path in args.folders]
    )
    hashes = [results.folder.settings_hash(results.env) for results in series]
    for line in settings_warnings(series, hashes):
        print(line)
    if note := backends_sentence({api for r in series for api in r.runs.api}):
        print(note)
    works = [machine_load.of_results(results) for results in series]
    if note := shared_against_quiet([f"#{n}" for n in range(1, len(series) + 1)], works):
        print(note)
    history = comparison.floor_ratio_history(series)
    if history.empty:
        raise UsageError(
            f"no folder has a recipe with a ratio to {registry.FLOOR}: nothing to follow"
        )
    print(
        text_table(
            ("#", "folder", "started (UTC)", "commit", *LABEL_VERSIONS, "settings hash"),
            [
                folder_row(position, results, settings_hash)
                for position, (results, settings_hash) in enumerate(zip(series, hashes), start=1)
            ],
        )
    )
    print()
    print(ratio_table(history, len(series)))
    comparable = [settings_hash == hashes[0] for settings_hash in hashes]
    print(f"\nwrote {plot_history(history, series, comparable, plot)}")
    return 0


def settings_warnings(series: list, hashes: list) -> list:
    """A line per folder whose settings hash is not the first folder's."""
    first, expected = series[0], hashes[0]
    return [
        f"warning: {results.folder} ran under settings {settings_hash or MISSING}, not "
        f"{expected or MISSING} as {first.folder.name}: its ratios are not comparable"
        for results, settings_hash in zip(series[1:], hashes[1:])
        if settings_hash != expected
    ]


def folder_row(position: int, results, settings_hash) -> tuple:
    env = results.env
    return (
        position,
        results.folder.name,
        f"{results.folder.started():%Y-%m-%d %H:%M:%S}",
        commit_text(env.get("git"), length=8),
        *(env.get(package) or MISSING for package in LABEL_VERSIONS),
        settings_hash or MISSING,
    )


def ratio_table(history, folders: int) -> str:
    """A row per recipe x API, a column per folder (numbered as in the folder table)."""
    cells = {(row.recipe, row.api, row.position): ratio_text(row) for row in history.itertuples()}
    pairs = sorted(set(zip(history.recipe, history.api)), key=lambda pair: order_key(*pair))
    rows = [
        (recipe, api, *(cells.get((recipe, api, position), MISSING) for position in range(folders)))
        for recipe, api in pairs
    ]
    return text_table(
        ("recipe", "API", *(f"#{position}" for position in range(1, folders + 1))), rows
    )


def axis_label(results, comparable: bool) -> str:
    env = results.env
    return "\n".join(
        [
            commit_text(env.get("git"), length=8),
            *(f"{package} {env.get(package) or MISSING}" for package in LABEL_VERSIONS),
            *([] if comparable else ["(other settings)"]),
        ]
    )


def plot_history(history, series: list, comparable: list, plot: OutputFile) -> Path:
    """Ratios with 95% CIs, a line per recipe x API, folders oldest first along x."""
    fig, ax = plt.subplots(figsize=(max(8, 1.6 * len(series) + 4), 5.5))
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1, label=f"floor: {registry.FLOOR} = 1")
    lines = sorted(history.groupby(["recipe", "api"]), key=lambda group: order_key(*group[0]))
    for (recipe, api), line in lines:
        errors = [
            (line.ratio - line.ci_low).fillna(0),
            (line.ci_high - line.ratio).fillna(0),
        ]  # no CI: 1 run
        ax.errorbar(
            line.position,
            line.ratio,
            yerr=errors,
            capsize=3,
            color=recipe_colour(recipe),
            marker=API_MARKERS.get(api, "o"),
            linestyle=API_LINESTYLES.get(api, "-"),
            label=f"{recipe} ({api})",
        )
    labels = [
        axis_label(results, same_settings) for results, same_settings in zip(series, comparable)
    ]
    ax.set_xticks(range(len(series)), labels, fontsize=8)
    ax.set_xlim(-0.5, len(series) - 0.5)
    ax.set_xlabel("results folder, oldest first: git commit and package versions")
    ax.set_ylabel(f"ms/step relative to {registry.FLOOR} (ratio, 95% CI)")
    ax.set_title(f"Cost of each recipe over time: ms/step ratio to {registry.FLOOR}")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    try:
        return save_figure(plot, fig)
    finally:
        plt.close(fig)
