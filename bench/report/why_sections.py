"""The report's "Why is the notebook slower?" and "Where the cost comes from"."""

import pandas as pd

from bench import recipes
from bench.analysis import causes, findings
from bench.analysis.tables import Tables
from bench.formatting import MISSING, number, ratio_text
from bench.report import cause_words
from bench.report.table_cells import OPS_HEADER, RECIPE_API, op_counts_of, table_block
from bench.results.env import env_value
from bench.results.folder import Results


def _op_counts_text(speed: pd.DataFrame, recipe: str, api: str) -> str:
    row = findings.speed_row(speed, recipe, api)
    return MISSING if row is None else op_counts_of(row)


def _first_epoch_text(speed: pd.DataFrame, recipe: str, api: str) -> str:
    row = findings.speed_row(speed, recipe, api)
    return MISSING if row is None else number(row.first_epoch_s, 2) + " s"


def _graph_text(explanation: findings.Explanation) -> str:
    """How the reading's traced step differs from its variant's: its layers where the folder has
    their scopes (``bench.analysis.causes``), else its op counts by type."""
    layers = explanation.layers
    if explanation.same_graph:
        return "the same traced graph"
    if layers is not None and layers.repeated:
        twice = " (the encoder is in the graph twice)" if layers.encoder_twice else ""
        by_times = {}
        for layer, times in layers.repeated.items():
            by_times.setdefault(times, []).append(layer)
        runs = "; ".join(
            f"{cause_words.layer_list(names)} x{times:g}" for times, names in by_times.items()
        )
        return f"layers running more often: {runs}{twice}"
    work = [f"{value:+.0f} {column}" for column, value in explanation.extra_ops.items()]
    if layers is not None:
        work = [f"{count:+d} {op}" for op, count in layers.op_difference.items()]
    return ", ".join(work) or "other layers"


def cause_sentence(explanation: findings.Explanation) -> str:
    """Why one reading differs from its variant, in one sentence."""
    row = explanation.reading
    head = f"{row.recipe} ({row.api}) is {ratio_text(row)} {row.undone}"
    graph = _graph_text(explanation)
    if explanation.outcome == findings.SLOWER and explanation.same_graph:
        return f"{head} ({row.choice}) with the same traced graph: the cost lies outside the graph."
    if explanation.outcome == findings.SLOWER:
        return (
            f"{head}, which differs only in {row.choice}; its traced train step has {graph}: "
            "the step does more work, and the gap closes when the choice is undone."
        )
    if explanation.outcome == findings.FASTER:
        return f"{head} ({row.choice}): faster, with {graph}."
    return (
        f"{head} ({row.choice}): no difference beyond the noise ({row.method}, {row.n:.0f} runs), "
        f"with {graph}."
    )


def _cause_sentences(results: Results, tables: Tables) -> list:
    """Why each reading differs from its variant, then the op counts it is compared with."""
    speed = tables.speed
    causes_found = [
        cause_sentence(findings.explain(row, speed, causes.scopes_of_runs(results.runs, row.api)))
        for row in tables.readings.itertuples()
    ]
    baselines = [
        f"For comparison, ops of {name} ({api}): {_op_counts_text(speed, name, api)}"
        for name, api in findings.op_baselines(tables.readings)
    ]
    return causes_found + baselines


def notebook_blocks(results: Results, tables: Tables) -> list:
    speed = tables.speed
    columns = {
        **RECIPE_API,
        "differs from": lambda row: row.undone,
        "in": lambda row: row.choice,
        "ratio [95% CI]": ratio_text,
        "method": lambda row: row.method,
        OPS_HEADER: lambda row: _op_counts_text(speed, row.recipe, row.api),
        "first epoch": lambda row: _first_epoch_text(speed, row.recipe, row.api),
    }
    return [
        ("h2", "Why is the notebook slower?"),
        (
            "p",
            "Post VII describes its notebook in words only. Each reading of those words is a "
            "recipe, timed against the variant that differs from it in one choice, in the same "
            "processes (the Jupyter kernel reading, whose choice is the process, in turns with "
            "the worker that started its kernel); op counts are of the traced train step. The "
            "batch size is a condition of the run: see the claims' conditions above.",
        ),
        table_block(
            tables.readings,
            columns,
            "No reading of the notebook ran beside the variant it differs from.",
        ),
        *([("ul", _cause_sentences(results, tables))] if len(tables.readings) else []),
    ]


def cause_blocks(results: Results, tables: Tables) -> list:
    """Where each recipe's cost comes from: the layers its traced step runs against the floor's
    and the nearest recipe's (``bench.analysis.causes``), users' recipes included."""
    found = causes.of_folder(results.runs, tables.ratios)
    if not found:
        return []
    paths = env_value(results.env, "config", "matrix", "recipe_paths")
    origins = {name: user.spec for name, user in recipes.recorded(paths).items()}
    return [
        ("h2", "Where the cost comes from"),
        (
            "p",
            "The layers each recipe's traced train step runs, counted by their convolutions, "
            "convolution gradients and matrix products, against the floor's and against the "
            "recipe whose counts are nearest; the ms/step are the gap to the floor in ms/step of "
            "fit. A gap with the floor's layer counts lies outside the traced graph.",
        ),
        ("ul", [_cause_line(cause, slower, origins) for cause, slower in found]),
    ]


def _cause_line(cause, slower: bool, origins: dict) -> str:
    origin = origins.get(cause.recipe)
    source = f"; your recipe, from {origin}" if origin else ""
    nearest = cause_words.nearest_text(cause)
    tail = f"; {nearest}" if nearest else ""
    return f"{cause.recipe} ({cause.api}{source}): {cause_words.cause_text(cause, slower)}{tail}."
