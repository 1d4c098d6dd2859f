"""The report of one results folder: ``report.md`` and a self-contained ``report.html``.

The sections are built here as one list of blocks (``bench.report.render`` turns them into
Markdown and HTML) from an ``Analysis`` (``bench.analysis.tables``): the answer first (one row per
recipe: where it runs, its ratio to the floor, why; the claims' verdicts: ``bench.report.answer``),
the claims plot and the gap plot, then the summary of the details (``bench.report.summary``), the
tables (``bench.report.details``), a sweep's variants and a cluster's hosts
(``bench.report.slices``), the plots, the environment and the command that reproduces the
folder. The report words and lays out what the analysis found; it computes no statistic and
writes only the report and its plots.
"""

import re

import numpy as np

from bench.analysis import answer_data, cost_model
from bench.analysis.tables import (
    Analysis,
    Tables,
    analyse,
)
from bench.errors import UsageError
from bench.report import plots, render
from bench.report.answer import answer_blocks, answer_markdown
from bench.report.answer_table import why_blocks
from bench.report.backends import backend_blocks
from bench.report.budget import budget_blocks
from bench.report.conditions import config_of, lookup
from bench.report.costs import cost_blocks
from bench.report.details import table_blocks
from bench.report.slices import host_blocks, hosts_notice, sweep_blocks, sweep_notice
from bench.report.summary import summary_blocks
from bench.report.walltime import walltime_blocks
from bench.results.folder import Results

ARTIFACT_ARRAYS = (
    "latent_mu",
    "latent_labels",
    "originals",
    "reconstructions",
    "grid_images",
    "grid_extent",
)
REPORT_MD, REPORT_HTML = "report.md", "report.html"


def load_artifacts(results: Results) -> list:
    """(label, arrays) for each run whose artifacts file exists and holds every expected array."""
    artifacts = []
    for run in results.runs[results.runs.artifacts != ""].itertuples():
        try:
            with np.load(results.folder.path / run.artifacts) as npz:
                arrays = {key: npz[key] for key in ARTIFACT_ARRAYS}
        except (OSError, KeyError, ValueError):
            continue  # an unreadable artifact costs its pictures, not the report
        artifacts.append((f"{run.recipe} ({run.api}, {run.run_id})", arrays))
    return artifacts


def headline_blocks(results: Results, tables: Tables) -> list:
    """The two pictures that answer the benchmark's question, right after the answer."""
    folder = results.folder.path
    return [
        (
            "img",
            "The posts' claims against our measurement",
            plots.plot_claims(tables.claims, folder),
        ),
        (
            "img",
            "Step time of each KL recipe relative to plain_ae",
            plots.plot_gap(tables.ratios, tables.process_ratios, tables.compat, folder),
        ),
    ]


def plot_blocks(results: Results, tables: Tables) -> list:
    folder, epochs = results.folder.path, results.epochs
    figures = [
        ("Seconds per epoch", plots.plot_epoch_times(epochs, folder)),
        ("Training curves", plots.plot_loss_curves(epochs, folder)),
        ("Compatibility", plots.plot_compat(tables.compat, folder)),
    ]
    artifacts = load_artifacts(results)
    pictures = [
        ("Latent space", plots.plot_latent(artifacts, folder)),
        ("Reconstructions", plots.plot_reconstructions(artifacts, folder)),
        ("Decoded latent grid", plots.plot_latent_grid(artifacts, folder)),
    ]
    blocks = [("h2", "Plots"), *(("img", caption, path) for caption, path in figures)]
    if not artifacts:
        return blocks + [
            (
                "p",
                "No artifacts (z_dim = 2 pictures) in this folder: latent, reconstruction and "
                "latent-grid plots skipped.",
            )
        ]
    return blocks + [("img", caption, path) for caption, path in pictures]


def environment_blocks(env: dict) -> list:
    settings = env.get("device_settings")
    setting_items = (
        [f"device setting {key}: {value}" for key, value in settings.items()]
        if isinstance(settings, dict)
        else [f"device settings: {lookup(env, 'device_settings')}"]
    )
    return [
        ("h2", "Environment"),
        (
            "ul",
            [
                *(
                    f"{label}: {lookup(env, key)}"
                    for label, key in (
                        ("Python", "python"),
                        ("TensorFlow", "tensorflow"),
                        ("Keras", "keras"),
                        ("tf_keras", "tf_keras"),
                        ("NumPy", "numpy"),
                    )
                ),
                f"CPU: {lookup(env, 'cpu', 'model')} ({lookup(env, 'cpu', 'cores')} cores)",
                f"GPU: {', '.join(answer_data.gpu_names(env.get('gpu'))) or 'none'}",
                *setting_items,
                f"git commit: {lookup(env, 'git', 'commit')} "
                f"(dirty: {lookup(env, 'git', 'dirty')})",
                f"config: {lookup(env, 'config', 'name')}; "
                f"batch size {lookup(env, 'config', 'training', 'batch_size')}, "
                f"{lookup(env, 'config', 'training', 'epochs')} epochs of which "
                f"{lookup(env, 'config', 'training', 'warmup_epochs')} warm-up, "
                f"z_dim {lookup(env, 'config', 'network', 'z_dim')}",
            ],
        ),
    ]


def reproduce_command(results: Results) -> str:
    """env.json's command, else the run command for the config the folder is named after."""
    command = results.env.get("command")
    if command:
        return str(command)
    name = config_of(results.env).get("name")
    # the folder is <UTC timestamp>-<config name>: drop the leading run of timestamp characters
    return (
        f"python -m bench run --config {name or re.sub(r'^[0-9TZ_:.-]+-', '', results.folder.name)}"
    )


def analysis_answer(analysis: Analysis) -> answer_data.Answer:
    """The answer of an analysed folder, from the ratios its ratios.csv holds."""
    return answer_data.answer_of(analysis.results, analysis.all_ratios())


def report_blocks(analysis: Analysis) -> list:
    """Every block of the report, in order; writes the plots into the folder."""
    results, main, tables = analysis.results, analysis.main, analysis.tables
    answer = analysis_answer(analysis)
    return [
        ("h1", f"kl-bench report: {results.folder.name}"),
        *sweep_notice(analysis.variants),
        *hosts_notice(analysis.hosts),
        *answer_blocks(answer),
        *headline_blocks(main, tables),
        *summary_blocks(main, tables),
        *budget_blocks(main, tables),
        *backend_blocks(main, tables),
        *cost_blocks(cost_model.cost_models(main.runs, tables.ratios)),
        *why_blocks(answer),
        *sweep_blocks(results, analysis.per_variant),
        *host_blocks(analysis.per_host),
        *table_blocks(main, tables),
        *walltime_blocks(analysis.wall_time),
        *plot_blocks(main, tables),
        *environment_blocks(results.env),
        ("h2", "Reproduce"),
        ("pre", reproduce_command(results)),
    ]


def render_report(analysis: Analysis) -> tuple:
    """Write report.md and report.html (plots embedded) of an analysed folder into it; return
    their paths."""
    folder = analysis.results.folder
    md_path, html_path = folder.path / REPORT_MD, folder.path / REPORT_HTML
    try:
        blocks = report_blocks(analysis)  # writes the plots
        md_path.write_text(render.markdown(blocks), encoding="utf-8")
        html_path.write_text(
            render.html_page(blocks, f"kl-bench report: {folder.name}"), encoding="utf-8"
        )
    except OSError as error:
        raise UsageError(
            f"cannot write the report into {folder}: {error.strerror or error}"
        ) from None
    return md_path, html_path


def write_report(path) -> tuple:
    """The report of the results folder at ``path``: analyse it (which writes ratios.csv), then
    write report.md and report.html; return their paths."""
    return render_report(analyse(path))


def write_report_and_answer(path) -> tuple:
    """``write_report``, and the answer as Markdown: the table a benchmark closes with, the same
    one the report opens with. Returns (report.md's path, the answer)."""
    analysis = analyse(path)
    md_path, _ = render_report(analysis)
    return md_path, answer_markdown(analysis_answer(analysis))
