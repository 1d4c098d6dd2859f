"""The benchmark's answer, one row per recipe: where it runs, what it costs over the floor, and why.

Each API column says ``works`` with the recipe's paired ratio to the floor of its own Keras and
the ratio's 95% CI, or the failure the registry expects (``fails: ...``, from the run's own error,
or the registry's where the pair was not run), or what went wrong instead, or ``not run`` /
``n/a``. The ``why`` column is ``bench.analysis.causes``' finding: the layers the traced train
step runs more often than the floor's (every encoder layer twice: the encoder wired into the graph
twice), and what the gap costs per step; a folder without layer scopes falls back on the op
counts by type: more convolutions than the floor by exactly the encoder's convolution layers.

Everything here comes from runs.csv, ratios.csv and env.json alone, so a folder that keeps only
those files (a committed reference benchmark) answers exactly as the whole folder did. The report
and ``python -m bench report --answer`` word the ``Answer`` (``bench.report.answer``).
"""

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from bench import recipes
from bench.analysis import causes, claims, coverage, selection, step_ratios
from bench.analysis.tables import hosts_of, variant_slice, variants_of
from bench.errors import UsageError
from bench.formatting import ratio_text
from bench.results.env import env_value
from bench.results.folder import (
    BLOCKS_CSV,
    DETAILS,
    EPOCHS_CSV,
    RATIOS_CSV,
    Results,
    ResultsFolder,
    runs_frame,
)
from bench.results.records import OK, OP_COUNT_COLUMNS, typed_frame
from vae_impls import registry
from vae_impls.keras_api import API_LABELS, APIS, floor_api
from vae_impls.network_spec import NetworkSpec

API_HEADERS = API_LABELS
ERROR_WIDTH = 80  # characters of an error kept in a cell
FAILS_AS_WRITTEN = "fails as written"
FLOOR_WHY = "the floor: no KL term"
CONVOLUTIONS = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter")


@dataclass(frozen=True)
class Source:
    """Where an answer's numbers come from: the folder, its machine and its runs."""

    folder: str
    config: str
    commit: str  # the code's git commit, short; "unknown" where env.json does not say
    started: str  # UTC date of the first run, or "unknown"
    rounds: int
    cpu: str
    cores: str
    gpu: str  # "" where the machine has none
    floor_ms: dict  # api -> the floor's median ms/step of fit over its ok runs
    sliced: str  # which variant and host a sweep's or a cluster's answer is of; "" otherwise
    injected: object  # env.json's deliberately injected slowdown (the gate's tests), as found


NOT_EVALUATED = "not evaluated"


@dataclass(frozen=True)
class ClaimVerdict:
    """A claim of the posts on one API, our ratio (a ratios.csv row) and the verdict on it."""

    claim: claims.Claim
    api: str
    ratio: object  # None where the claim's two recipes have no ratio on any API
    judgement: object  # a claims.Judgement; None without a ratio

    @property
    def verdict(self) -> str:
        return self.judgement.verdict if self.judgement else NOT_EVALUATED


@dataclass(frozen=True)
class Answer:
    """The answer table, where its numbers come from, and the claims' verdicts beside it."""

    table: pd.DataFrame  # recipe, post, technique, one column per API_HEADERS value, why
    source: Source
    verdicts: list  # of ClaimVerdict, in claims.CLAIMS order


@dataclass(frozen=True)
class Pair:
    """What the folder holds of one recipe on one API: its runs (of the answer's slice) and its
    ratio to the floor (a ratios.csv row, or None)."""

    recipe: str
    api: str
    runs: pd.DataFrame
    ratio: object

    @property
    def ok(self) -> pd.DataFrame:
        return self.runs[self.runs.status == OK]

    @property
    def registered_failures(self) -> pd.DataFrame:
        return self.runs[coverage.registered_mask(self.runs)]


# --- reading a folder -------------------------------------------------------------------------


def read_answer(path) -> Answer:
    """The answer of the results folder at ``path`` from its runs.csv, ratios.csv (written by the
    analysis step) and env.json; a UsageError where the folder or its ratios.csv is missing."""
    folder = ResultsFolder.existing(path)
    return answer_of(_runs_only(folder), read_ratios(folder))


def read_ratios(folder: ResultsFolder) -> pd.DataFrame:
    """The folder's ratios.csv, with every column the answer reads."""
    ratios = folder.read_ratios()
    missing = {*step_ratios.RATIO_COLUMNS, "variant", "host"} - set(ratios.columns)
    if missing:
        raise UsageError(
            f"{folder.path / RATIOS_CSV} lacks the columns {', '.join(sorted(missing))}"
        )
    return ratios


def _runs_only(folder: ResultsFolder) -> Results:
    """The folder's runs, env.json and plan, without reading its epochs or blocks, which the
    answer does not use and a reference folder does not keep."""
    empty = {name: typed_frame(pd.DataFrame(columns=list(DETAILS[name]))) for name in DETAILS}
    return Results(
        folder,
        runs_frame(folder.run_records()),
        empty[EPOCHS_CSV],
        empty[BLOCKS_CSV],
        folder.read_env(),
        folder.planned_runs(),
    )


# --- the answer -------------------------------------------------------------------------------


def answer_of(results: Results, ratios: pd.DataFrame) -> Answer:
    """The answer of ``results`` (a whole folder) from ``ratios`` (as ratios.csv holds them): of
    the first variant of a sweep, on the first host of a cluster, as the report's details."""
    variant, host = variants_of(results)[0], _main_host(results)
    runs = variant_slice(results, variant, host).runs
    ratios = ratios[(ratios.variant == variant) & (ratios.host == (host or ""))]
    names, apis = _recipes_of(results), apis_of(results)
    table = pd.DataFrame(
        [_row(results.env, runs, ratios, recipe, apis) for recipe in names],
        columns=["recipe", "post", "technique", *(API_HEADERS[api] for api in apis), "why"],
    )
    source = _source(results, runs, _slice_text(variant, host))
    return Answer(table, source, claim_verdicts(ratios))


def _main_host(results: Results) -> str | None:
    hosts = hosts_of(results)
    return hosts[0] if len(hosts) > 1 else None


def _slice_text(variant: str, host: str | None) -> str:
    parts = [f"variant {variant}" if variant else "", f"host {host}" if host else ""]
    return ", ".join(part for part in parts if part)


def _recipes_of(results: Results) -> list:
    """The recipes the folder ran or planned (plan.json's runs, else env.json's config's matrix,
    which a folder keeps without its plan), in registry order."""
    matrix = env_value(results.env, "config", "matrix", "recipes")
    planned = [run.recipe for run in results.planned or ()]
    named = [name for name in matrix if isinstance(name, str)] if isinstance(matrix, list) else []
    names = dict.fromkeys([*planned, *named, *results.runs.recipe])
    return sorted(names, key=recipes.order_key)


def apis_of(results: Results) -> list:
    """The APIs of the folder's matrix, as run or planned, in ``APIS`` order; the TensorFlow
    ones always (a folder from before the other backends names no others)."""
    matrix = env_value(results.env, "config", "matrix", "apis")
    named = [api for api in matrix if isinstance(api, str)] if isinstance(matrix, list) else []
    used = {*APIS[:3], *named, *results.runs.api, *(run.api for run in results.planned or ())}
    return [api for api in APIS if api in used]


def _row(env: dict, runs: pd.DataFrame, ratios: pd.DataFrame, recipe: str, apis: list) -> dict:
    pairs = [_pair(runs, ratios, recipe, api) for api in apis]
    known = recipes.known().get(recipe) or declared_in(env).get(recipe)
    return {
        "recipe": recipe,
        "post": getattr(known, "post", ""),
        "technique": getattr(known, "technique", ""),
        **{API_HEADERS[pair.api]: cell_text(pair) for pair in pairs},
        "why": why_text(pairs, runs, encoder_convolutions(env)),
    }


def _pair(runs: pd.DataFrame, ratios: pd.DataFrame, recipe: str, api: str) -> Pair:
    found = ratios[
        (ratios.recipe == recipe)
        & (ratios.api == api)
        & (ratios.compared_with == registry.FLOOR)
        & (ratios.compared_api == floor_api(api))
    ]
    mine = runs[(runs.recipe == recipe) & (runs.api == api)]
    return Pair(recipe, api, mine, found.iloc[0] if len(found) else None)


def declared_in(env: dict) -> dict:
    """Recipe name -> the declaration of each user recipe env.json's config names that still
    loads: a report written in another process than the benchmark knows them too."""
    paths = env_value(env, "config", "matrix", "recipe_paths")
    return {name: user.recipe for name, user in recipes.recorded(paths).items()}


# --- the API cells ----------------------------------------------------------------------------


def cell_text(pair: Pair) -> str:
    """What ``pair`` shows on its API: works (with its ratio to the floor), fails as registered,
    went wrong, not run or n/a."""
    if len(pair.ok):
        return _works_text(pair)
    if pair.runs.empty:
        return _not_run_text(pair.recipe, pair.api)
    registered = pair.registered_failures
    if len(registered):
        return f"fails: {short_error(registered.iloc[0].error)}"
    first = pair.runs.iloc[0]
    error = short_error(first.error)
    return f"went wrong: {first.status}" + (f": {error}" if error else "")


def _works_text(pair: Pair) -> str:
    if pair.recipe == registry.FLOOR:
        return "works: the floor"
    if pair.ratio is None or not math.isfinite(pair.ratio.ratio):
        return "works: no floor to compare with"
    return f"works: {ratio_text(pair.ratio)}"


def _not_run_text(recipe: str, api: str) -> str:
    status = recipes.status(recipe, api)
    if status == registry.NOT_APPLICABLE:
        return registry.NOT_APPLICABLE
    if status == registry.FAILS:
        expected = coverage.expected_error(recipe, api)
        return f"fails: {expected} (registry; not run)" if expected else "fails (registry; not run)"
    return coverage.NOT_RUN


def short_error(error: str) -> str:
    """An error's type and first sentence, without the reprs in parentheses, cut at a word
    boundary to ``ERROR_WIDTH``: what tells one failure from another."""
    text = _without_parenthesized(str(error).strip().splitlines()[0] if str(error).strip() else "")
    text = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0].rstrip(".")
    text = re.sub(r"\s+", " ", text).replace(" ,", ",")
    if len(text) <= ERROR_WIDTH:
        return text
    return text[: ERROR_WIDTH - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def _without_parenthesized(text: str) -> str:
    """``text`` with every non-empty parenthesized group dropped, nested ones too; an empty pair,
    a call's ``()``, stays."""
    empty = "\0"
    text = text.replace("()", empty)
    while True:
        shorter = re.sub(r"\([^()]*\)", "", text)
        if shorter == text:
            return text.replace(empty, "()")
        text = shorter


# --- why: the op counts against the floor's ---------------------------------------------------


def encoder_convolutions(env: dict) -> int:
    """How many convolution layers the encoder has: env.json's network spec, else the default
    spec's."""
    filters = env_value(env, "config", "network", "encoder_filters")
    return len(filters) if isinstance(filters, list) else len(NetworkSpec().encoder_filters)


def why_text(pairs: list, runs: pd.DataFrame, encoder_layers: int) -> str:
    """One recipe's reason for its cost: ``why_of`` on each API it works on, each reason naming
    its APIs where they differ; ``FAILS_AS_WRITTEN`` where it works on none and fails as the
    registry expects; "" where it did neither."""
    reasons = {}
    for pair in pairs:
        if len(pair.ok):
            reasons.setdefault(why_of(pair, runs, encoder_layers), []).append(API_HEADERS[pair.api])
    if not reasons:
        return FAILS_AS_WRITTEN if any(_fails_as_registered(pair) for pair in pairs) else ""
    if len(reasons) == 1:
        return next(iter(reasons))
    return "; ".join(f"{reason} ({', '.join(apis)})" for reason, apis in reasons.items())


def _fails_as_registered(pair: Pair) -> bool:
    """A registered failure: seen in a run, or registered where the pair was not run."""
    if pair.runs.empty:
        return recipes.status(pair.recipe, pair.api) == registry.FAILS
    return len(pair.registered_failures) > 0


def why_of(pair: Pair, runs: pd.DataFrame, encoder_layers: int) -> str:
    """Why ``pair``, which has ok runs, costs what it does on its API: its op counts against the
    floor's."""
    if pair.recipe == registry.FLOOR:
        return FLOOR_WHY
    scopes = causes.scopes_with_floor(runs, pair.api)
    cause = causes.find(pair.recipe, pair.api, scopes, causes.extra_ms(runs, pair.ratio, pair.api))
    if cause is not None:
        return causes.summary(cause, slower=_slower(pair))
    difference = ops_over_floor(pair, runs)
    if difference is None:
        return "no op counts"
    return _op_reason(difference, encoder_layers)


def _slower(pair: Pair) -> bool:
    """Whether ``pair``'s ratio to the floor lies above 1 with its whole CI."""
    return pair.ratio is not None and math.isfinite(pair.ratio.ci_low) and pair.ratio.ci_low > 1


def ops_over_floor(pair: Pair, runs: pd.DataFrame) -> dict | None:
    """Op type -> ``pair``'s count in its traced train step minus the floor's on the same API
    (medians over ok runs); None where either lacks op counts."""
    floor = runs[
        (runs.recipe == registry.FLOOR) & (runs.api == floor_api(pair.api)) & (runs.status == OK)
    ]
    mine, theirs = (
        {op: frame[column].median() for op, column in OP_COUNT_COLUMNS.items()}
        for frame in (pair.ok, floor)
    )
    if not all(math.isfinite(value) for value in (*mine.values(), *theirs.values())):
        return None
    return {op: int(mine[op] - theirs[op]) for op in OP_COUNT_COLUMNS}


def _op_reason(difference: dict, encoder_layers: int) -> str:
    changed = ", ".join(f"{count:+d} {op}" for op, count in difference.items() if count)
    convolutions = [difference[op] for op in CONVOLUTIONS]
    if not any(convolutions):
        return "same convolutions as the floor"
    if difference["Conv2D"] == encoder_layers:
        return f"encoder in the graph twice: {changed}"
    if all(count >= 0 for count in convolutions):
        return f"more convolutions than the floor: {changed}"
    return f"other convolutions than the floor: {changed}"


# --- the claims and the source ----------------------------------------------------------------


def claim_verdicts(ratios: pd.DataFrame) -> list:
    """Each claim's verdict on every API where ``ratios`` (as ratios.csv holds them, of one slice)
    has its ratio, all of them judged as one family; a claim without any gets one
    ``ClaimVerdict`` without a ratio."""
    found = {claim: _claim_ratios(ratios, claim) for claim in claims.CLAIMS}
    judged = iter(
        claims.judge_family([(claim, row) for claim, rows in found.items() for row in rows])
    )
    verdicts = []
    for claim, rows in found.items():
        evaluated = [ClaimVerdict(claim, row.api, row, next(judged)) for row in rows]
        verdicts += evaluated or [ClaimVerdict(claim, "", None, None)]
    return verdicts


def _claim_ratios(ratios: pd.DataFrame, claim: claims.Claim) -> list:
    """The ratios.csv rows of ``claim``'s recipe to its baseline on the same API, in registry
    order."""
    rows = ratios[
        (ratios.recipe == claim.recipe)
        & (ratios.compared_with == claim.baseline)
        & (ratios.compared_api == ratios.api)
    ]
    return list(selection.in_registry_order(rows).itertuples())


def _source(results: Results, runs: pd.DataFrame, sliced: str) -> Source:
    env = results.env
    gpu = env_value(env, "gpu")
    return Source(
        folder=results.folder.name,
        config=str(env_value(env, "config", "name") or "unknown"),
        commit=_commit(env),
        started=_first_day(runs),
        rounds=int(runs.repeat.max()) if len(runs) else 0,
        cpu=str(env_value(env, "cpu", "model") or "unknown CPU"),
        cores=str(env_value(env, "cpu", "cores") or "unknown"),
        gpu=str(gpu) if gpu else "",
        floor_ms=_floor_speeds(runs),
        sliced=sliced,
        injected=env.get("injected_slowdown") or {},
    )


def _floor_speeds(runs: pd.DataFrame) -> dict:
    """api -> the floor's median ms/step of fit over its ok runs, on each API it ran on."""
    speeds = {api: selection.ms_per_step(runs, registry.FLOOR, api) for api in APIS}
    return {api: found.median() for api, found in speeds.items() if len(found)}


def _commit(env: dict) -> str:
    commit = env_value(env, "git", "commit")
    if not commit:
        return "unknown"
    return str(commit)[:7] + (" (dirty)" if env_value(env, "git", "dirty") else "")


def _first_day(runs: pd.DataFrame) -> str:
    """The UTC date the first run started (runs.csv's started_at); "unknown" without one."""
    started = runs.started_at.dropna() if "started_at" in runs else pd.Series(dtype=float)
    if started.empty:
        return "unknown"
    return datetime.fromtimestamp(float(started.min()), UTC).strftime("%Y-%m-%d")
