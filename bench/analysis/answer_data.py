"""The benchmark's answer read from a folder: a row per recipe, its runs and ratios, and why.

Each row holds, per API, the recipe's runs and its paired ratio to the floor of its own Keras
(a ``Pair``), and per API it works on, what explains its cost (``bench.analysis.why``); the
claims' verdicts and where the numbers come from sit beside them.

Everything here comes from runs.csv, ratios.csv and env.json alone, so a folder that keeps only
those files (a committed reference benchmark) answers exactly as the whole folder did. The report
and ``python -m bench report --answer`` word the ``Answer`` (``bench.report.answer``,
``bench.report.answer_table``).
"""

from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from bench import recipes
from bench.analysis import (
    claims,
    cost_model,
    coverage,
    machine_load,
    selection,
    step_ratios,
    verdicts,
    why,
)
from bench.analysis.tables import hosts_of, variant_slice, variants_of
from bench.errors import UsageError
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
from bench.results.records import OK, typed_frame
from vae_impls import registry
from vae_impls.keras_api import APIS, is_port, process_group


@dataclass(frozen=True)
class Source:
    """Where an answer's numbers come from: the folder, its machine and its runs."""

    folder: str
    config: str
    git: dict  # env.json's git: the code's commit and whether its tree was dirty ({}: unknown)
    started: str  # UTC date of the first run, or "unknown"
    rounds: int
    cpu: str
    cores: str
    gpus: tuple  # the names of the machine's GPUs, one per device; () where it has none
    floor_ms: dict  # api -> the floor's median ms/step of fit over its ok runs
    sliced: str  # which variant and host a sweep's or a cluster's answer is of; "" otherwise
    injected: object  # env.json's deliberately injected slowdown (the gate's tests), as found
    other_work: machine_load.OtherWork  # how much of the run the machine spent under other work


@dataclass(frozen=True)
class Answer:
    """The answer's rows, where their numbers come from, and the claims' verdicts beside them."""

    rows: list  # of Row, in registry order
    apis: list  # the APIs the folder ran or planned, in APIS order
    source: Source
    verdicts: list  # of claims.ClaimVerdict, in claims.CLAIMS order

    @property
    def groups(self) -> list:
        """The table's backend columns: each Keras package and backend the folder ran or
        planned (``process_group``: keras2, keras3, keras3-jax, keras3-torch), in APIS order."""
        return list(dict.fromkeys(process_group(api) for api in self.apis))


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

    @property
    def fails_as_registered(self) -> bool:
        """A registered failure: seen in a run, or registered where the pair was not run."""
        if self.runs.empty:
            return recipes.status(self.recipe, self.api) == registry.FAILS
        return len(self.registered_failures) > 0


@dataclass(frozen=True)
class Cell:
    """One recipe on one backend column: its pair as written and its port's (None where the
    folder has no such API), and which of them the cell shows."""

    group: str  # process_group of its APIs
    written: Pair | None
    port: Pair | None

    @property
    def shown(self) -> Pair | None:
        """The code whose ratio the cell shows: as written where it works, else the port where
        it works; None where neither does."""
        return next((pair for pair in (self.written, self.port) if pair and len(pair.ok)), None)

    @property
    def written_fails(self) -> bool:
        """Whether the code as written fails there as the registry expects (seen, or registered
        where it was not run)."""
        return bool(self.written and not len(self.written.ok) and self.written.fails_as_registered)


@dataclass(frozen=True)
class Row:
    """One recipe's row: its post and technique, what it does on each API, and why it costs what
    it does on each API it works on."""

    recipe: str
    post: str
    technique: str
    pairs: list  # of Pair, one per API of the answer
    whys: dict  # api -> why.Why, of each API with ok runs

    @property
    def cells(self) -> list:
        """A ``Cell`` per backend column, in the pairs' order."""
        groups = {}
        for pair in self.pairs:
            written, port = groups.get(process_group(pair.api), (None, None))
            groups[process_group(pair.api)] = (written, pair) if is_port(pair.api) else (pair, port)
        return [Cell(group, *pairs) for group, pairs in groups.items()]


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
    """The folder's runs, env.json and plan, without reading its epochs, which the answer does
    not use and a reference folder does not keep; its blocks only where env.json lacks the
    summary of other work on the machine (``machine_load``) that they give."""
    empty = {name: typed_frame(pd.DataFrame(columns=list(DETAILS[name]))) for name in DETAILS}
    env = folder.read_env()
    blocks = empty[BLOCKS_CSV] if machine_load.ENV_KEY in env else _blocks_or(empty, folder)
    return Results(
        folder,
        runs_frame(folder.run_records()),
        empty[EPOCHS_CSV],
        blocks,
        env,
        folder.planned_runs(),
    )


def _blocks_or(empty: dict, folder: ResultsFolder) -> pd.DataFrame:
    """The folder's blocks.csv; none where it cannot be read: the answer needs only the other
    work they measure, unknown then (``bench report`` says what is wrong with the file)."""
    try:
        return folder.read_blocks()
    except UsageError:
        return empty[BLOCKS_CSV]


# --- the answer -------------------------------------------------------------------------------


def answer_of(results: Results, ratios: pd.DataFrame) -> Answer:
    """The answer of ``results`` (a whole folder) from ``ratios`` (as ratios.csv holds them): of
    the first variant of a sweep, on the first host of a cluster, as the report's details."""
    variant, host = variants_of(results)[0], _main_host(results)
    runs = variant_slice(results, variant, host).runs
    ratios = ratios[(ratios.variant == variant) & (ratios.host == (host or ""))]
    names, apis = _recipes_of(results), apis_of(results)
    costs = cost_model.records_by_pair(cost_model.cost_models(runs, ratios))
    rows = [_row(results.env, runs, ratios, recipe, apis, costs) for recipe in names]
    source = _source(results, runs, _slice_text(variant, host))
    return Answer(rows, apis, source, claims.claim_verdicts(ratios))


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
    """The APIs of the folder's matrix, as run or planned, in ``APIS`` order: a backend the run
    did not run has no column. A folder that names none (nothing run, nothing planned) gets the
    TensorFlow ones, the only APIs of the folders before the other backends."""
    matrix = env_value(results.env, "config", "matrix", "apis")
    named = [api for api in matrix if isinstance(api, str)] if isinstance(matrix, list) else []
    used = {*named, *results.runs.api, *(run.api for run in results.planned or ())}
    return [api for api in APIS if api in (used or set(APIS[:3]))]


def _row(
    env: dict, runs: pd.DataFrame, ratios: pd.DataFrame, recipe: str, apis: list, costs: dict
) -> Row:
    pairs = [_pair(runs, ratios, recipe, api) for api in apis]
    known = recipes.known().get(recipe) or declared_in(env).get(recipe)
    layers = verdicts.encoder_convolutions(env)
    return Row(
        recipe,
        getattr(known, "post", ""),
        getattr(known, "technique", ""),
        pairs,
        {
            pair.api: why.why_of(pair, runs, layers, costs.get((recipe, pair.api)))
            for pair in pairs
            if len(pair.ok)
        },
    )


def _pair(runs: pd.DataFrame, ratios: pd.DataFrame, recipe: str, api: str) -> Pair:
    mine = runs[(runs.recipe == recipe) & (runs.api == api)]
    return Pair(recipe, api, mine, verdicts.floor_ratio(ratios, recipe, api))


def declared_in(env: dict) -> dict:
    """Recipe name -> the declaration of each user recipe env.json's config names that still
    loads: a report written in another process than the benchmark knows them too."""
    paths = env_value(env, "config", "matrix", "recipe_paths")
    return {name: user.recipe for name, user in recipes.recorded(paths).items()}


# --- the claims and the source ----------------------------------------------------------------


def _source(results: Results, runs: pd.DataFrame, sliced: str) -> Source:
    env = results.env
    return Source(
        folder=results.folder.name,
        config=str(env_value(env, "config", "name") or "unknown"),
        git=env_value(env, "git") if isinstance(env_value(env, "git"), dict) else {},
        started=_first_day(runs),
        rounds=int(runs.repeat.max()) if len(runs) else 0,
        cpu=str(env_value(env, "cpu", "model") or "unknown CPU"),
        cores=str(env_value(env, "cpu", "cores") or "unknown"),
        gpus=gpu_names(env_value(env, "gpu")),
        floor_ms=_floor_speeds(runs),
        sliced=sliced,
        injected=env.get("injected_slowdown") or {},
        other_work=machine_load.of_results(results),
    )


def gpu_names(gpu) -> tuple:
    """The GPUs env.json's ``gpu`` names, one name per device: its ``names`` (a dict from
    nvidia-smi), a list of names, or one name as a string; () for none."""
    if isinstance(gpu, dict):
        names = gpu.get("names")
        return tuple(str(name) for name in names) if isinstance(names, list) else ()
    if isinstance(gpu, list):
        return tuple(str(name) for name in gpu if name)
    return (str(gpu),) if gpu else ()


def _floor_speeds(runs: pd.DataFrame) -> dict:
    """api -> the floor's median ms/step of fit over its ok runs, on each API it ran on."""
    speeds = {api: selection.ms_per_step(runs, registry.FLOOR, api) for api in APIS}
    return {api: found.median() for api, found in speeds.items() if len(found)}


def _first_day(runs: pd.DataFrame) -> str:
    """The UTC date the first run started (runs.csv's started_at); "unknown" without one."""
    started = runs.started_at.dropna() if "started_at" in runs else pd.Series(dtype=float)
    if started.empty:
        return "unknown"
    return datetime.fromtimestamp(float(started.min()), UTC).strftime("%Y-%m-%d")
