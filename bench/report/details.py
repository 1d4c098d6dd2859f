"""The report's detail tables: speed, ratios, disturbed runs, the posts' claims, the notebook
readings and their op counts, tracing, profiles, the quality guard, time to quality, and the runs
that went wrong. Each is worded from the analysis' ``Tables``; nothing here computes."""

import math

import pandas as pd

from bench import recipes
from bench.analysis import causes, findings, stats
from bench.analysis.tables import (
    Tables,
)
from bench.formatting import (
    MISSING,
    number,
    percent,
    ratio_text,
    significant,
    significant_with_ci,
    with_ci,
)
from bench.report.answer import claim_ratio_text, family_clause
from bench.results import contention
from bench.results.env import env_value
from bench.results.folder import OUTLIERS_CSV, Results, read_top_ops
from vae_impls import registry

UNKNOWN = "unknown"  # a fact env.json does not record
TOP_OPS_SHOWN = 8  # op types listed per profiled run
OUTLIERS_SHOWN = 5  # disturbed runs listed in the report, the furthest out first; all in the CSV
WENT_WRONG_TITLE = "Runs that went wrong"
NOTHING_WENT_WRONG = (
    "No run went wrong: none failed unexpectedly, timed out, diverged, was killed or is missing."
)


def _table(frame: pd.DataFrame, columns: dict, empty: str) -> tuple:
    """A table block with ``columns`` (header -> function(row) -> cell text); ``empty`` if no
    rows."""
    if frame.empty:
        return ("p", empty)
    return (
        "table",
        pd.DataFrame(
            {header: [cell(row) for row in frame.itertuples()] for header, cell in columns.items()}
        ),
    )


NO_OK_RUNS = "No ok runs."
RECIPE_API = {"recipe": lambda row: row.recipe, "API": lambda row: row.api}


def _speed_blocks(tables: Tables) -> list:
    return [
        ("h2", "Speed"),
        (
            "p",
            "ms/step of fit: an epoch's wall time over its steps (epoch overheads included, as the "
            "posts timed), median over runs. Train step: the median time of one call of the train "
            "function in the paired blocks (no epoch overhead), median over runs.",
        ),
        _table(
            tables.speed,
            {
                **RECIPE_API,
                "ok runs": lambda row: str(row.n),
                "ms/step of fit, median [95% CI]": ms_text,
                "train step, ms": lambda row: number(row.step_ms),
            },
            NO_OK_RUNS,
        ),
    ]


def _compared_text(row) -> str:
    return f"{row.compared_with} ({row.compared_api})"


def _ratio_blocks(results: Results, tables: Tables) -> list:
    columns = {
        **RECIPE_API,
        "compared with": _compared_text,
        "ratio [95% CI]": ratio_text,
        "CI half-width": lambda row: percent(row.half_width),
        "runs": lambda row: number(row.n, 0),
        "method": lambda row: row.method,
    }
    methods = " ".join(f"{method}: {text}." for method, text in stats.METHODS.items())
    return [
        ("h2", "Ratios to the floor"),
        (
            "p",
            "Each KL recipe's step time over the floor's (plain_ae of the same Keras; ports: "
            f"Keras 3's). {methods} The numbers are also in ratios.csv.",
        ),
        _table(tables.ratios, columns, NO_OK_RUNS),
        ("p", precision_of(results, tables)),
    ]


def _outlier_blocks(results: Results, tables: Tables) -> list:
    columns = {
        "run": lambda row: row.run_id,
        "compared with": _compared_text,
        "its ratio": lambda row: number(row.ratio, 3),
        "pair's median": lambda row: number(row.pair_median, 3),
        "MADs away": lambda row: number(row.mads, 1),
        "re-measure with": lambda row: (
            f"python -m bench run --config {config_of(results.env).get('name', '?')} "
            f"--recipes {row.recipe} --apis {row.api}"
        ),
    }
    worst = tables.outliers.sort_values("mads", ascending=False, kind="stable")
    return [
        ("h2", "Disturbed runs"),
        ("p", _set_aside_sentence(results.blocks)),
        (
            "p",
            f"Processes whose ratio lies over {stats.OUTLIER_MADS:g} median absolute deviations "
            "from their pair's median. They stay in the statistics (the t-interval widens with "
            f"them).{_outliers_shown(len(worst))}",
        ),
        _table(worst.head(OUTLIERS_SHOWN), columns, "No run's ratio lies far from its pair's."),
    ]


def _set_aside_sentence(blocks) -> str:
    """How many blocks a neighbour came or went in, set aside from the ratios
    (``stats.set_aside_blocks``), or why none could be checked."""
    if blocks is None or blocks.empty:
        return "No paired blocks: no block could be checked for other work on the machine."
    read = blocks[blocks.pressure_seconds.notna()] if "pressure_seconds" in blocks else blocks[:0]
    if read.empty:
        return (
            "The kernel gave no CPU pressure (/proc/pressure/cpu): no block could be checked for "
            "a neighbour that came or went."
        )
    counted = read.assign(process=stats.process_of(read))[["process", "block"]].drop_duplicates()
    aside = len(stats.set_aside_blocks(blocks))
    return (
        f"{aside} of {len(counted)} blocks set aside from every ratio: a neighbour came or went "
        f"in them (their models' shares of CPU pressure differed by more than "
        f"{contention.UNEVEN_SHARE:g} of their step time; each process timed one more block "
        f"for each, up to as many as it planned and within its time for blocks: docs/method.md "
        f'"Other work on the machine").'
    )


def _outliers_shown(count: int) -> str:
    """Where the disturbed runs the report leaves out are: a sentence, led by a space; "" for
    none."""
    if not count:
        return ""
    if count <= OUTLIERS_SHOWN:
        return f" Every one is also in {OUTLIERS_CSV}."
    return (
        f" The {OUTLIERS_SHOWN} furthest out of {count} are shown; all {count}, furthest first, "
        f"are in {OUTLIERS_CSV}."
    )


def _posts_numbers(row) -> str:
    claim = row.claim
    return (
        f"{claim.recipe}: {claim.posts_recipe_figure}; "
        f"{claim.baseline}: {claim.posts_baseline_figure}"
    )


def _conditions(env: dict) -> str:
    training, device = config_of(env).get("training", {}), config_of(env).get("device", {})
    steps = training.get("steps_per_epoch") or "full"
    gpu = f"GPU: {lookup(env, 'gpu')}" if env.get("gpu") else "no GPU"
    return (
        f"config {config_of(env).get('name', '?')}: batch {training.get('batch_size', '?')}, "
        f"{steps} steps per epoch, XLA {device.get('xla', '?')}, "
        f"on {lookup(env, 'cpu', 'model')} ({gpu})"
    )


def _claim_blocks(results: Results, tables: Tables) -> list:
    columns = {
        "claim": lambda row: f"{row.claim.recipe} / {row.claim.baseline} (post {row.claim.post})",
        "reading": lambda row: row.claim.reading or "-",
        "API": lambda row: row.api,
        "claimed ± margin": lambda row: row.claim.claimed_range,
        "ours: ratio [95% CI]; the verdict's interval": lambda row: claim_ratio_text(row, row),
        "verdict": lambda row: row.verdict,
        "method": lambda row: row.method,
        "ours: ms/step of fit": lambda row: f"{row.recipe_ms:.1f} vs {row.baseline_ms:.1f}",
        "posts' numbers (GTX 960)": _posts_numbers,
    }
    return [
        ("h2", "The posts' claims"),
        (
            "p",
            "Verdict: reproduced when the verdict's interval lies inside the claimed range widened "
            "by its margin (the precision the post stated it with), not reproduced when it lies "
            "entirely outside, else inconclusive. The posts timed full MNIST epochs on a GTX 960 "
            "with XLA auto-jit (post VII: batch 256 in the class, 128 in the notebook); ours: "
            f"{_conditions(results.env)}.",
        ),
        *_family_blocks(tables),
        _table(
            tables.claims,
            columns,
            "No claim could be evaluated: no API has ok runs of both its recipes.",
        ),
    ]


def _family_blocks(tables: Tables) -> list:
    """How many intervals the report shows and which family of them the verdicts control."""
    if tables.claims.empty:
        return []
    return [
        (
            "p",
            f"The report shows {len(tables.all_ratios())} ratios' intervals (all in ratios.csv) "
            f"and the medians', each {stats.CONFIDENCE:.0%} on its own; the family controlled is "
            f"this table's: {family_clause(len(tables.claims))}.",
        )
    ]


OPS_HEADER = "ops: total / Conv2D / Conv2DBackpropInput / Conv2DBackpropFilter / MatMul"


def _op_counts_text(speed: pd.DataFrame, recipe: str, api: str) -> str:
    row = findings.speed_row(speed, recipe, api)
    return MISSING if row is None else _op_counts_of(row)


def _op_counts_of(row) -> str:
    """A speed_table row's op counts, as the column ``OPS_HEADER`` names them."""
    return " / ".join(number(getattr(row, column), 0) for column in stats.OP_COLUMNS)


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
            f"{causes.layer_list(names)} x{times:g}" for times, names in by_times.items()
        )
        return f"layers running more often: {runs}{twice}"
    work = [f"{value:+.0f} {column}" for column, value in explanation.extra_ops.items()]
    if layers is not None:
        work = [f"{count:+d} {op}" for op, count in layers.op_difference.items()]
    return ", ".join(work) or "other layers"


def _cause_sentence(explanation: findings.Explanation) -> str:
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
        _cause_sentence(findings.explain(row, speed, causes.scopes_of_runs(results.runs, row.api)))
        for row in tables.readings.itertuples()
    ]
    baselines = [
        f"For comparison, ops of {name} ({api}): {_op_counts_text(speed, name, api)}"
        for name, api in findings.op_baselines(tables.readings)
    ]
    return causes_found + baselines


def _notebook_blocks(results: Results, tables: Tables) -> list:
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
            "processes (the Jupyter kernel reading, whose choice is the process, across "
            "processes); op counts are of the traced train step. The batch size is a condition of "
            "the run: see the claims' conditions above.",
        ),
        _table(
            tables.readings,
            columns,
            "No reading of the notebook ran beside the variant it differs from.",
        ),
        *([("ul", _cause_sentences(results, tables))] if len(tables.readings) else []),
    ]


def _cause_blocks(results: Results, tables: Tables) -> list:
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
    nearest = causes.nearest_text(cause)
    tail = f"; {nearest}" if nearest else ""
    return f"{cause.recipe} ({cause.api}{source}): {causes.summary(cause, slower)}{tail}."


def _tracing_blocks(tables: Tables) -> list:
    columns = {
        **RECIPE_API,
        "first epoch, median [95% CI]": lambda row: with_ci(
            row.first_epoch_s, row.first_epoch_low, row.first_epoch_high, " s"
        ),
        "traces (median)": lambda row: number(row.trace_count, 0),
        OPS_HEADER: _op_counts_of,
    }
    return [("h2", "First epoch and tracing"), _table(tables.speed, columns, NO_OK_RUNS)]


def _profile_blocks(results: Results) -> list:
    """The top ops by self time of each profiled run: where its train step spends its time."""
    rows = []
    for run in results.runs.itertuples():
        top = read_top_ops(results.folder.profile_dir(run.run_id))
        if top:
            shown = list(top.items())[:TOP_OPS_SHOWN]
            ops = ", ".join(f"{op} {significant(ms)}" for op, ms in shown)
            rows.append(
                {
                    "run": run.run_id,
                    "top ops: self time, ms per step": ops,
                    "all ops, ms per step": significant(sum(top.values())),
                }
            )
    if not rows:
        return [
            ("h2", "Profiles"),
            ("p", "No profiles: set [training] profile_steps to take one per run."),
        ]
    traces = results.folder.profile_dir("RUN_ID").relative_to(results.folder.path).parent
    return [
        ("h2", "Profiles"),
        (
            "p",
            "Self time of the ops in each profiled run's train step, by op type (the profiler "
            "slows what it records: compare ops with each other, not with the timings above). "
            f"Raw traces: {traces}/, for TensorBoard's profile plugin.",
        ),
        ("table", pd.DataFrame(rows)),
    ]


def _median_iqr_cell(column: str):
    return lambda row: significant_with_ci(
        *(getattr(row, f"{column}_{key}") for key in ("median", "q1", "q3"))
    )


def _quality_blocks(tables: Tables) -> list:
    columns = {
        **RECIPE_API,
        "ok runs": lambda row: str(row.n),
        "final loss": _median_iqr_cell("final_loss"),
        "final BCE": _median_iqr_cell("final_bce"),
        "final KL": _median_iqr_cell("final_kl"),
        "others: median ± tolerance": lambda row: (
            f"{significant(row.reference)} ± {significant(row.tolerance)}"
            if math.isfinite(row.reference)
            else MISSING
        ),
        "flag": lambda row: "FLAGGED" if row.flagged else "",
    }
    return [
        ("h2", "Quality guard"),
        (
            "p",
            "Final losses over ok runs, median [IQR]. Flagged: a KL recipe whose median final loss "
            "differs from the median of the other KL recipes' runs of its API (for a port: and of "
            f"Keras 3) by more than max({stats.QUALITY_IQR_FACTOR:g} x their IQR, "
            f"{100 * stats.QUALITY_RELATIVE_TOLERANCE:g}% of that median). "
            f"{registry.FLOOR} is not flagged: it minimizes BCE alone.",
        ),
        _table(tables.quality, columns, NO_OK_RUNS),
    ]


def _time_to_quality_blocks(results: Results, tables: Tables) -> list:
    if not findings.trains_long_enough(results.env):
        return [
            ("h2", "Time to quality"),
            (
                "p",
                "Not reported: these runs train a few steps, not "
                f"{findings.MIN_PASSES_FOR_QUALITY} or more full passes over the data, so no loss "
                "level they reach says anything of convergence.",
            ),
        ]
    columns = {
        **RECIPE_API,
        "level": lambda row: significant(row.level),
        "epoch (median)": lambda row: number(row.epoch, 0),
        "seconds [95% CI]": lambda row: with_ci(
            row.seconds, row.seconds_low, row.seconds_high, " s"
        ),
        "runs reaching it": lambda row: f"{row.n_reached}/{row.n}",
    }
    return [
        ("h2", "Time to quality"),
        (
            "p",
            "Seconds of training, warm-up included, until the epoch-mean loss first reaches the "
            "API's common level: the highest last-epoch loss of any ok KL run of that API. Median "
            "over runs [95% CI].",
        ),
        _table(tables.time_to_quality, columns, "No epoch curves of ok KL runs."),
    ]


def _repeats_text(repeats) -> str:
    return ", ".join(number(repeat, 0) for repeat in sorted(repeats))


def _went_wrong_blocks(tables: Tables) -> list:
    """Runs that failed unexpectedly, timed out, diverged, were killed or are missing: not the
    failures the registry expects, which the answer shows."""
    # one row per recipe x API x outcome: a pair that never ran would otherwise fill a row per
    # repeat
    grouped = (
        tables.went_wrong.groupby(["recipe", "api", "status", "error"], sort=False)
        .repeat.agg(_repeats_text)
        .reset_index()
    )
    columns = {
        **RECIPE_API,
        "repeats": lambda row: row.repeat,
        "status": lambda row: row.status,
        "error": lambda row: row.error,
    }
    return [("h2", WENT_WRONG_TITLE), _table(grouped, columns, NOTHING_WENT_WRONG)]


def table_blocks(results: Results, tables: Tables) -> list:
    return [
        *_speed_blocks(tables),
        *_ratio_blocks(results, tables),
        *_outlier_blocks(results, tables),
        *_claim_blocks(results, tables),
        *_notebook_blocks(results, tables),
        *_cause_blocks(results, tables),
        *_tracing_blocks(tables),
        *_profile_blocks(results),
        *_quality_blocks(tables),
        *_time_to_quality_blocks(results, tables),
        *_went_wrong_blocks(tables),
    ]


def ms_text(row) -> str:
    return with_ci(row.ms_per_step, row.ms_low, row.ms_high, " ms/step")


def precision_sentence(precision) -> str:
    """How precise the ratios are against the target (a ``findings.Precision``, or None where no
    ratio has a CI), and what reaching it at the median would take."""
    if precision is None:
        return "No ratio has a CI (it takes 2 or more ok runs)."
    widest, median = precision.widest, precision.median
    head = (
        f"Ratio CIs are at most {percent(widest.half_width)} wide ({widest.recipe} vs "
        f"{widest.compared_with}, {widest.api}, {widest.method}), {percent(median.half_width)} at "
        f"the median, against the ±{100 * stats.PRECISION_TARGET:g}% target"
    )
    if precision.within_target:
        return head + ": the median within target."
    cost = (
        f", about {precision.hours_needed:.1f} h for this matrix"
        if precision.hours_needed > 0
        else ""
    )
    return (
        f"{head}: over. A half-width shrinks ~1/sqrt(runs) (faster while the t-quantile of few "
        f"runs falls), so the median pair's {int(median.n)} runs would have to become about "
        f"{precision.runs_needed}{cost}."
    )


def precision_of(results: Results, tables: Tables) -> str:
    return precision_sentence(findings.precision(results.runs, tables.ratios))


def config_of(env: dict) -> dict:
    config = env.get("config")
    return config if isinstance(config, dict) else {}


def lookup(env: dict, *keys) -> str:
    """env.json's value under ``keys`` as text: 'unknown' where the folder does not record it."""
    value = env_value(env, *keys)
    if value is None:
        return UNKNOWN
    if isinstance(value, dict):
        return ", ".join(f"{key}: {item}" for key, item in value.items()) or "none"
    return str(value)
