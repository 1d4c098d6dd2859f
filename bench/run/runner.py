"""The benchmark manager: config -> run plan -> worker processes -> records.

The manager never imports TensorFlow. It checks the config (preflight), creates the results
folder, then has an executor (``bench/executors.py``) start ``python -m bench.measure.worker`` for
each process of the plan (the runs of a round that share a Keras package, ``bench.config.plan``),
in its own process group with a time limit: here, one at a time, or one at a time on each node
of a Ray cluster. It appends the rows of a process's runs as soon as the process ends. A run that
fails, diverges, crashes or times out is recorded as such and the matrix goes on. Ctrl-C stops the
running workers, keeps every finished run and prints how to resume.

The exit status says what was measured (``bench.errors`` owns the numbers): 0 when at least one
run of the folder's plan measured its recipe, 3 (``NOTHING_MEASURED``) with one line saying so
when none did, 130 on Ctrl-C and 143 on SIGTERM. A run measures its recipe when it ends ok,
failed or diverged: a recipe that raises or diverges as written is a result the report shows. A
run that was killed or hit its time limit says nothing of its recipe (``--resume`` runs it again).
The count covers the whole folder, so a resume whose runs all time out again still exits 3.

Under a time budget (``[matrix] budget``, ``--budget``) the plan starts with one round and grows
a round at a time while time is left (``bench.run.budget``); ``--resume FOLDER --budget D`` adds
rounds to a folder, finished or not.
"""

import contextlib
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import datasets, recipes
from bench.analysis import allocation, claims, machine_load, neighbours
from bench.config import budget as budget_config
from bench.config import injection, plan, sweep
from bench.config import settings as config_module
from bench.console import say
from bench.errors import INTERRUPTED as INTERRUPTED  # the runner's statuses, as callers name them
from bench.errors import (
    NOTHING_MEASURED,
    Terminated,
    UsageError,
    sigterm_raises,
    stop_status,
    stop_word,
)
from bench.errors import TERMINATED as TERMINATED
from bench.formatting import duration
from bench.report import sections as report
from bench.results.folder import PLAN_JSON, RUNS_CSV, Results, ResultsFolder, read_json
from bench.results.records import (
    OK,
    ProcessSpec,
    RunRecord,
    RunResult,
    RunSpec,
    block_rows,
    epoch_rows,
)
from bench.run import budget as budget_clock
from bench.run import environment, executors
from bench.run.executors import Outcome

ERROR_WIDTH = 100  # characters of an error shown in a progress line
# env.json: the records of user recipes a resume ran although their source had changed
CHANGED_RECIPES_KEY = "user_recipes_changed"


def create(config, results_dir: Path, command: str, out=None, variants=(sweep.BASE,)) -> tuple:
    """Check ``config``, then make its results folder and plan: (folder, planned runs). A sweep's
    ``variants`` (``bench.config.sweep``) all run in the same rounds."""
    ResultsFolder.check_results_dir(results_dir)  # before the preflight's seconds, not after
    runs = plan.make_plan(config, variants)  # refuses a plan too large to run
    seconds = budget_config.budget_seconds(config.matrix.budget)
    if seconds is not None:
        budget_config.check_fits(seconds, len(plan.processes(runs)), len(runs))
    _check_data(config.training)
    injected = injection.from_environment(recipes.known())
    machine = environment.machine_facts(config, command)  # before the preflight loads the machine
    facts = environment.preflight(config)
    folder = ResultsFolder.create(results_dir, config.name)
    folder.save_plan(config, runs, variants)
    folder.write_env(
        {
            **machine,
            **facts,
            "injected_slowdown": injected,
            recipes.USER_RECIPES_KEY: recipes.records(config.matrix.recipe_paths),
        }
    )
    swept = f" of {len(variants)} variants" if len(variants) > 1 else ""
    rounds = (
        f"in {config.matrix.repeats} rounds"
        if seconds is None
        else f"in round 1, then the rounds a budget of {duration(seconds)} allows,"
    )
    say(f"{config.name}: {len(runs)} runs{swept} {rounds} into {folder}", out)
    if injected:
        say(f"injected slowdown ({injection.ENV_VAR}): {injection.describe(injected)}", out)
    return folder, runs


def start(
    config, results_dir: Path, command: str, out=None, variants=(sweep.BASE,), executor=None
) -> int:
    """Run the whole plan of ``config`` (and a sweep's ``variants``) into a new folder under
    ``results_dir``; under a budget, the clock starts now."""
    seconds = budget_config.budget_seconds(config.matrix.budget)
    clock = budget_clock.Budget(seconds, command) if seconds is not None else None
    folder, runs = create(config, results_dir, command, out, variants)
    return execute(folder, config, runs, out, executor, clock)


@dataclass
class Job:
    """A folder being measured: its config, its plan so far, and its budget (None: the plan
    is all that runs)."""

    folder: ResultsFolder
    config: object
    runs: list
    budget: budget_clock.Budget | None = None
    # A folder outside the results folder, for as long as the job runs: where the processes that
    # only time their runs keep the steps their backend compiles (``compile_cache``).
    compile_cache: str | None = None


@dataclass(frozen=True)
class Resumable:
    """A results folder checked for ``--resume``: its config and planned runs, all readable."""

    folder: ResultsFolder
    config: object
    runs: list
    budget_seconds: float | None = None  # --budget: rounds to add, within these seconds
    changed_recipes: list = ()  # records, as the run made them, of recipes changed since


def resumable(
    path: Path, given_config, budget_text: str | None = None, accept_changed=False, out=None
) -> Resumable:
    """The folder at ``path``, checked before anything is written to it (a refused resume leaves
    the folder as it was, lock file included): its recipe files (``resumed_recipes``), its plan,
    its settings against ``given_config``'s (None: the folder's own), and every file a resume
    reads. Call within ``recipes.loading_allowed``: the folder's recipes are loaded to run."""
    if not ResultsFolder.is_folder(path):
        raise UsageError(f"cannot resume {path}: no such folder")
    folder = ResultsFolder(path)
    ResultsFolder.check_free_space(folder.path, f"cannot resume {folder}")
    changed = resumed_recipes(folder, accept_changed, out)
    config, runs = folder.load_plan()
    if given_config is not None and given_config.settings_hash != config.settings_hash:
        raise UsageError(
            f"cannot resume {folder}: its settings hash is {config.settings_hash} but the given "
            f"config's is {given_config.settings_hash}; resume without --config/--quick"
        )
    folder.read()  # a garbled runs.csv, epochs.csv or blocks.csv is refused here, not locked
    seconds = budget_config.parse_duration(budget_text) if budget_text is not None else None
    if seconds is not None and any(run.variant for run in runs):
        raise UsageError(f"cannot give {folder} a budget: a sweep's folder runs its fixed rounds")
    return Resumable(folder, config, runs, seconds, changed)


def resumed_recipes(folder: ResultsFolder, accept_changed: bool, out=None) -> list:
    """Load the user recipes ``folder``'s plan names, each named first as a file the resume
    imports; a UsageError for one whose source changed since the run recorded it (its hash),
    unless ``accept_changed``. Returns the changed ones' records as the run recorded them."""
    try:
        stored = read_json(folder.path / PLAN_JSON)
        specs = stored["config"]["matrix"].get("recipe_paths", [])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []  # load_plan says what is wrong with the plan
    if not isinstance(specs, list) or not all(isinstance(spec, str) for spec in specs):
        return []
    kept = folder.read_env().get(recipes.USER_RECIPES_KEY)
    readable = map(_readable_record, kept if isinstance(kept, list) else [])
    records = {user.spec: user for user in readable if user is not None}
    changed = []
    for spec in specs:
        was = records.get(spec)
        if was is not None and _changed(was):
            if not accept_changed:
                raise UsageError(
                    f"cannot resume {folder}: recipe {was.recipe.name!r} ({was.source_file}) "
                    "changed since the run (its source hash differs); restore it, or run it as "
                    "it is now with --accept-changed-recipes"
                )
            changed.append(was.record())
        how = "as recorded" if was is not None and not _changed(was) else "changed since the run"
        how = how if was is not None else "no hash recorded"
        say(f"resume imports the recipe file {spec} ({how})", out)
        recipes.load(spec)
    return changed


def _changed(user: recipes.UserRecipe) -> bool:
    return bool(user.source_hash) and recipes.source_hash(user.source_file) != user.source_hash


def _readable_record(record):
    try:
        return recipes.UserRecipe.from_record(record)
    except ValueError:
        return None


def resume(checked: Resumable, command: str, out=None, executor=None) -> int:
    """Run what is missing from a folder's plan, under the settings the folder was started with;
    with a budget, then the rounds it allows."""
    folder, runs, seconds = checked.folder, checked.runs, checked.budget_seconds
    clock = budget_clock.Budget(seconds, command) if seconds is not None else None
    with folder.lock():
        lost = [
            record.run_id for record in folder.run_records() if executors.paired_sample_lost(record)
        ]
        finished = folder.drop_unfinished(measured_again=executors.paired_sample_lost)
        env = folder.read_env()
        folder.write_env(
            {
                **env,
                "resumed_by": [*env.get("resumed_by", []), command],
                recipes.USER_RECIPES_KEY: recipes.records(checked.config.matrix.recipe_paths),
                **_changed_entry(env, checked.changed_recipes),
            }
        )
        say(f"resuming {folder}: {len(finished)} of {len(runs)} runs already recorded", out)
        if lost:
            say(f"measured again: {len(lost)} run(s) whose paired timing was lost", out)
        job = Job(folder, checked.config, runs, clock)
        return _execute(job, out, executor or executors.LocalExecutor())


def _changed_entry(env: dict, changed: list) -> dict:
    """env.json's record of the recipes a resume ran changed (--accept-changed-recipes): their
    records as the run that first ran them made them."""
    if not changed:
        return {}
    return {CHANGED_RECIPES_KEY: [*env.get(CHANGED_RECIPES_KEY, []), *changed]}


def _check_data(training) -> None:
    try:
        data = datasets.load(training.dataset, mnist_path=training.mnist_path or None)
    except datasets.DataError as error:
        raise UsageError(str(error)) from None
    config_module.check_batch_fits(training, data)


def execute(folder: ResultsFolder, config, runs: list, out, executor=None, budget=None) -> int:
    """Run what ``folder`` still lacks of ``runs``, holding the folder's lock; by default here.
    With a ``budget`` (``bench.run.budget.Budget``), then the rounds it allows."""
    with folder.lock():
        job = Job(folder, config, runs, budget)
        return _execute(job, out, executor or executors.LocalExecutor())


def _execute(job: Job, out, executor) -> int:
    folder, config = job.folder, job.config
    started = time.perf_counter()
    try:
        with sigterm_raises(), compile_cache(job):
            _run_rounds(job, out, executor)
    except (KeyboardInterrupt, Terminated) as stop:
        say(
            f"\n{stop_word(stop)}: "
            f"{len(folder.finished_ids())} of {len(job.runs)} runs are recorded in {folder}\n"
            f"resume with: python -m bench run --resume {folder}",
            out,
        )
        return stop_status(stop)
    finally:
        if job.budget is not None:
            budget_clock.record(folder, job.budget)
    results = folder.read()
    folder.update_env(**{machine_load.ENV_KEY: machine_load.of_blocks(results.blocks).record()})
    say(
        f"\nresults: {folder}\n\n{len(results.runs)} run(s) recorded: {results.ends or 'none'}\n\n"
        f"total wall time {duration(time.perf_counter() - started)}",
        out,
    )
    _write_report(folder, out)
    return _measured_status(results, config, out)


def _measured_status(results: Results, config, out) -> int:
    """0 when a run of the plan measured its recipe; else ``NOTHING_MEASURED``, with one line
    naming how the runs ended and what to change (see the module's docstring)."""
    if len(results.measured):
        return 0
    say(
        f"nothing measured: no planned run ended ok, failed or diverged "
        f"({results.ends or 'no run'}); raise [training] "
        f"timeout_seconds (now {config.training.timeout_seconds} s per run) or see the errors in "
        f"{results.folder.path / RUNS_CSV}, then: python -m bench run --resume {results.folder}",
        out,
    )
    return NOTHING_MEASURED


@contextlib.contextmanager
def compile_cache(job: Job):
    """A compile cache for the job's processes that only time their runs (a later round's), made
    here and deleted with the job. Only those: a trained run's first epoch is its trace and its
    compile, a figure the report shows, and two recipes with the same graph compile to the same
    step, which the cache would hand the second. Outside the results folder: reading a folder
    never runs code from it, and compiled steps are code."""
    with tempfile.TemporaryDirectory(prefix="kl-bench-compiled-") as path:
        job.compile_cache = path
        try:
            yield path
        finally:
            job.compile_cache = None


def _run_rounds(job: Job, out, executor) -> None:
    """The plan's missing runs; under a budget, then each round it allows, added to the plan."""
    _run_pending(job, out, executor)
    while job.budget is not None:
        added = budget_clock.next_round(job.folder, job.config, job.runs, job.budget)
        if not added:
            say(f"\nthe budget ends here: {job.budget.ended}", out)
            return
        job.runs = [*job.runs, *added]
        job.folder.save_plan(job.config, job.runs)
        say(
            f"\nround {added[0].repeat}: {len(added)} runs, the ratios furthest from their "
            f"precision target ({duration(job.budget.left())} of the budget left)",
            out,
        )
        _run_pending(job, out, executor)


def _run_pending(job: Job, out, executor) -> None:
    """Every missing run, in its planned process; runs left behind by a process that died (those
    after the run it died in) get a new process, until every run is recorded."""
    folder, config, runs = job.folder, job.config, job.runs
    pending = folder.missing(runs)
    injected = folder.read_env().get("injected_slowdown", {})
    unfinished = {run.run_id: run for run in pending}
    while pending:
        specs = [
            _process_spec(config, process, folder, injected, job.compile_cache)
            for process in plan.processes(pending)
        ]
        with (
            folder.scratch() as scratch,
            contextlib.closing(executor.outcomes(specs, scratch)) as ended,
        ):
            for _spec, outcome in ended:  # as each process ends: on a cluster, not in plan order
                answered = [unfinished.pop(run_id) for run_id in outcome.results]
                for run in answered:
                    _record(folder, config, run, outcome.results[run.run_id], outcome)
                eta = _eta_text(job, list(unfinished.values()), executor)
                done = len(runs) - len(unfinished) - len(answered)
                for count, run in enumerate(answered, start=done + 1):
                    say(
                        f"[{count}/{len(runs)}] {run.recipe} {run.api} "
                        f"rep {run.repeat}: {_verdict(outcome.results[run.run_id], run)}"
                        f"{executor.where(outcome)} ({eta})",
                        out,
                    )
        pending = [run for run in pending if run.run_id in unfinished]


def _eta_text(job: Job, unfinished: list, executor) -> str:
    """How long the plan's unfinished runs should take, from what each kind of worker process
    and each run took so far here (``allocation.Costs``); under a budget, also when it ends."""
    results = job.folder.read()
    costs = allocation.Costs.of(results.runs, results.epochs, results.blocks)
    seconds = sum(
        costs.round_seconds(
            [(run.recipe, run.api) for run in process],
            {run.recipe for run in process if run.timed_only},
        )
        for process in plan.processes(unfinished)
    )
    eta = f"ETA {duration(seconds / executor.parallel_runs)}"
    if job.budget is None:
        return eta
    ends = max(job.budget.left() + budget_config.REPORT_SECONDS, 0)
    return f"round {eta}, the budget ends in {duration(ends)}"


def _process_spec(
    base_config, runs: list, folder: ResultsFolder, injected: dict, cache: str | None = None
) -> ProcessSpec:
    """A worker process's runs, what they are timed against that none of them trains, and the
    order its blocks visit them in; ``cache`` (``compile_cache``) where none of its runs trains."""
    config = sweep.config_of(base_config, runs[0].variant)
    cache = cache if all(run.timed_only for run in runs) else None
    trained = {(run.recipe, run.api) for run in runs}
    wanted = [reference for run in runs for reference in claims.references(run.recipe, run.api)]
    references = [reference for reference in dict.fromkeys(wanted) if reference not in trained]
    references = tuple(references) if config.training.paired_blocks else ()
    wanted = [model for run in runs for model in claims.beside(run.recipe, run.api)]
    beside = tuple(dict.fromkeys(wanted)) if config.training.paired_blocks else ()
    return ProcessSpec(
        tuple(_spec(config, run, folder, injected, cache) for run in runs),
        references=references,
        beside=beside,
        timeout_seconds=config.training.timeout_seconds * len(runs),
        chains=neighbours.visit_order(
            [*((run.recipe, run.api) for run in runs), *references, *beside]
        ),
    )


def _spec(config, run, folder: ResultsFolder, injected: dict, cache: str | None) -> RunSpec:
    settings = config.to_dict()
    wants_pictures = config.matrix.save_artifacts and run.repeat == 1
    return RunSpec(
        run,
        settings["device"],
        settings["training"],
        settings["network"],
        artifacts_path=str(folder.artifact_path(run.run_id)) if wants_pictures else None,
        profile_dir=str(folder.profile_dir(run.run_id)) if config.training.profile_steps else None,
        compile_cache=cache,
        injected=injected,
    )


def _record(folder: ResultsFolder, config, run, result: RunResult, outcome: Outcome) -> None:
    artifacts = (
        Path(result.artifacts).relative_to(folder.path).as_posix() if result.artifacts else ""
    )
    settings_hash = sweep.config_of(config, run.variant).settings_hash
    record = RunRecord.of(
        run,
        result,
        settings_hash,
        outcome.wall_seconds,
        artifacts,
        started_at=outcome.started_at,
        ended_at=outcome.started_at + outcome.wall_seconds,
        load_average=outcome.load_average,
        host=outcome.host,
    )
    folder.append(record, epoch_rows(run, result), block_rows(run, result))
    _note_worker_facts(folder, result)
    _note_node(folder, outcome)


def _note_worker_facts(folder: ResultsFolder, result: RunResult) -> None:
    """env.json gets the applied device settings and the data's origin from the first worker
    that reports them."""
    if result.device_settings and folder.read_env().get("device_settings") is None:
        folder.update_env(device_settings=result.device_settings, dataset=result.dataset_origin)


def _note_node(folder: ResultsFolder, outcome: Outcome) -> None:
    """env.json's "nodes" gets each machine's host facts and package versions from its first run:
    runs from machines with other versions must not be pooled unnoticed."""
    nodes = folder.read_env().get("nodes", {})
    if outcome.host and outcome.host not in nodes:
        folder.update_env(nodes={**nodes, outcome.host: outcome.node})


def _verdict(result: RunResult, run: plan.PlannedRun) -> str:
    if result.status == OK and run.timed_only:  # no fit to time: its blocks say its pace
        own = [
            step.seconds
            for step in result.blocks
            if (step.model, step.model_api) == (run.recipe, run.api)
        ]
        pace = f" {statistics.median(own) * 1000:.1f} ms/step in its blocks" if own else ""
        return f"ok, timed only:{pace}".rstrip(":")
    if result.status == OK:
        return f"ok {result.ms_per_step:.1f} ms/step"
    error = (
        result.error
        if len(result.error) <= ERROR_WIDTH
        else result.error[: ERROR_WIDTH - 3] + "..."
    )
    return f"{result.status} {error}".rstrip()


def _write_report(folder: ResultsFolder, out) -> None:
    """The folder's analysis (ratios.csv) and report, as ``python -m bench report`` writes them,
    then the answer table, as ``python -m bench report --answer`` prints it."""
    try:
        markdown, answer = report.write_report_and_answer(folder.path)
    except Exception as error:  # the runs are on disk either way; say so and exit normally
        say(
            f"report not written ({type(error).__name__}: {error}); "
            f"retry with: python -m bench report {folder}",
            out,
        )
        return
    say(f"\n{answer}", out)
    say(f"report: {markdown}", out)
