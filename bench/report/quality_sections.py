"""The report's "Quality guard" and "Time to quality", and the summary's words on the guard."""

import math

import pandas as pd

from bench import recipes
from bench.analysis import findings, quality_guard
from bench.analysis.tables import Tables
from bench.formatting import MISSING, number, significant, significant_with_ci, with_ci
from bench.report.table_cells import NO_OK_RUNS, RECIPE_API, ok_runs_text, table_block
from bench.results.folder import Results
from vae_impls import registry


def _median_iqr_cell(column: str):
    return lambda row: significant_with_ci(
        *(getattr(row, f"{column}_{key}") for key in ("median", "q1", "q3"))
    )


# --- the guard in words (the summary's sentences) --------------------------------------------


def _pairs(rows: pd.DataFrame) -> str:
    return ", ".join(dict.fromkeys(f"{row.recipe} ({row.api})" for row in rows.itertuples()))


def band_sentence(quality: pd.DataFrame) -> str:
    """What the noise band (``quality_guard.quality_table``) found, naming a recipe only where
    it names one: flagged against others that agree, or compared with none."""
    kl = quality[quality.recipe.map(recipes.includes_kl).astype(bool)]
    if kl.empty:
        return "Quality guard: no KL recipe finished ok, so no final loss was compared."
    flagged = kl[kl.flagged]
    unnamed = kl[kl.beyond_noise & ~kl.flagged]
    alone = kl[kl.compared == 0]
    sentences = []
    if len(flagged):
        sentences.append(
            f"the final loss of {_pairs(flagged)} differs from the other KL recipes' beyond "
            "run-to-run noise, while they agree with each other."
        )
    if len(unnamed):
        sentences.append(
            f"the final losses of {_pairs(unnamed)} differ beyond run-to-run noise, and no two "
            "other KL recipes agree with each other: the guard cannot tell which trains "
            "something else."
        )
    if len(alone):
        sentences.append(
            f"{_pairs(alone)} is the only KL recipe of its API: the guard compared its final "
            "loss with none."
        )
    if not len(flagged) and not len(unnamed) and len(alone) < len(kl):
        sentences.insert(
            0, "no KL recipe's final loss differs from the others' beyond run-to-run noise."
        )
    return "Quality guard: " + " ".join(_capitalised(sentences))


def _capitalised(sentences: list) -> list:
    return [sentences[0], *(s[0].upper() + s[1:] for s in sentences[1:])] if sentences else []


def _rounds(rounds) -> str:
    numbers = sorted({int(value) for value in rounds})
    word = "round" if len(numbers) == 1 else "rounds"
    return f"{word} {', '.join(str(number) for number in numbers)}"


def _outlier_sentence(outliers: pd.DataFrame) -> str:
    named = []
    for (recipe, api), runs in outliers.groupby(["recipe", "api"], sort=False):
        first = runs.iloc[0]
        repeat = int(first["repeat"])
        loss = (
            f"{significant(first.final_loss, 6)}, while {int(first.agreeing)} others agree at "
            f"{significant(first.closest, 6)}"
        )
        where = (
            f"round {repeat}: {loss}"
            if len(runs) == 1
            else f"{_rounds(runs.repeat)}; in round {repeat}: {loss}"
        )
        named.append(f"{recipe} ({api}, {where})")
    return (
        f"In its round, the final loss of {', '.join(named)} equals no other KL recipe's to "
        f"{_tolerance()}: it trains something else."
    )


def _undecided_sentences(undecided: pd.DataFrame) -> list:
    sentences = []
    for (_, api, repeat), runs in undecided.groupby(["variant", "keras", "repeat"], sort=False):
        losses = [f"{row.recipe} {significant(row.final_loss, 6)}" for row in runs.itertuples()]
        ends = " and ".join(losses) if len(losses) == 2 else ", ".join(losses)
        sentences.append(
            f"In round {int(repeat)} ({api}), {ends} end at different losses (to "
            f"{_tolerance()}) and no two KL recipes agree: the guard cannot tell which trains "
            "something else."
        )
    return sentences


def _noise_sentences(other: pd.DataFrame) -> list:
    sentences = []
    for (recipe, api, basis), runs in other.groupby(["recipe", "api", "noise_basis"], sort=False):
        first = runs.iloc[0]
        where = f"{recipe} ({api}, {_rounds(runs.repeat)})"
        if basis == quality_guard.DRAWS_COUNTED:
            sentences.append(
                f"{where} draws its noise differently: its sampling layer drew "
                f"{first.noise_draws:g} times per train step against {first.usual_draws:g} for "
                "its round's other KL recipes (counted during fit), so its losses follow other "
                "noise after the first step and are not compared."
            )
        else:
            sentences.append(
                f"{where} is taken to draw its noise differently: its encoder runs twice per "
                "train step (read from its op counts; its draws were not counted), so its "
                "sampling layer may draw twice, and its final loss equals no other's; it is not "
                "compared."
            )
    return sentences


def _alone_sentences(checks: pd.DataFrame, alone: pd.DataFrame) -> list:
    sentences = []
    for (recipe, api), runs in alone.groupby(["recipe", "api"], sort=False):
        rounds = checks[
            (checks.keras == runs.keras.iloc[0]) & checks.repeat.isin(runs.repeat)
        ].check
        why = (
            "no other KL recipe of its round on that Keras and backend draws noise as it does"
            if (rounds == quality_guard.OTHER_NOISE).any()
            else "it is the only KL recipe of its round on that Keras and backend"
        )
        sentences.append(
            f"The guard compared the final loss of {recipe} ({api}, {_rounds(runs.repeat)}) with "
            f"none: {why}."
        )
    return sentences


def _tolerance() -> str:
    return f"{quality_guard.EXACT_LOSS_TOLERANCE:g}"


def same_loss_sentences(checks: pd.DataFrame) -> str:
    """The within-round check (``quality_guard.round_checks``) in words, each sentence led by a
    space: who is named, which disagreements it cannot settle, who draws noise differently, who
    had none to be compared with, and that the rest agree."""
    if checks.empty:
        return ""
    by_check = {check: checks[checks.check == check] for check in checks.check.unique()}
    empty = checks.iloc[0:0]
    sentences = [
        *(
            [_outlier_sentence(by_check[quality_guard.OUTLIER])]
            if quality_guard.OUTLIER in by_check
            else []
        ),
        *_undecided_sentences(by_check.get(quality_guard.UNDECIDED, empty)),
        *_noise_sentences(by_check.get(quality_guard.OTHER_NOISE, empty)),
        *_alone_sentences(checks, by_check.get(quality_guard.ALONE, empty)),
    ]
    if quality_guard.SAME_LOSS in by_check:
        every = "every" if len(by_check) == 1 else "every other"
        sentences.append(
            f"Within a round, {every} KL run's final loss equals another recipe's to "
            f"{_tolerance()} (same objective, same training)."
        )
    return "".join(f" {sentence}" for sentence in sentences)


def _flag_cell(row) -> str:
    if row.flagged:
        return "FLAGGED"
    if row.beyond_noise:
        return "differs; cannot tell"
    if recipes.includes_kl(row.recipe) and row.compared == 0:
        return "none to compare"
    return ""


def quality_blocks(tables: Tables) -> list:
    columns = {
        **RECIPE_API,
        "ok runs": ok_runs_text,
        "final loss": _median_iqr_cell("final_loss"),
        "final BCE": _median_iqr_cell("final_bce"),
        "final KL": _median_iqr_cell("final_kl"),
        "others: median ± tolerance": lambda row: (
            f"{significant(row.reference)} ± {significant(row.tolerance)}"
            if math.isfinite(row.reference)
            else MISSING
        ),
        "flag": _flag_cell,
    }
    return [
        ("h2", "Quality guard"),
        (
            "p",
            "Final losses over ok runs, median [IQR]. Flagged: a KL recipe whose median final loss "
            "differs from the median of the other KL recipes' runs of its API (for a port: and of "
            f"Keras 3) by more than max({quality_guard.QUALITY_IQR_FACTOR:g} x their IQR, "
            f"{100 * quality_guard.QUALITY_RELATIVE_TOLERANCE:g}% of that median), while at "
            "least two of those other recipes lie within it: against one other recipe, or others "
            "that disagree among themselves, the guard cannot tell which trains something else. "
            f"{registry.FLOOR} is not flagged: it minimizes BCE alone.",
        ),
        table_block(tables.quality, columns, NO_OK_RUNS),
    ]


def time_to_quality_blocks(results: Results, tables: Tables) -> list:
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
        table_block(tables.time_to_quality, columns, "No epoch curves of ok KL runs."),
    ]
