"""One worker process: ``python -m bench.measure.worker SPEC.json RESULT.json``.

The process spec (written by ``bench.run.runner``) lists the runs of one round that share a Keras
package, each naming its recipe, API and seed, and carries the [device], [training] and
[network] settings. The worker sets them up once (``session``), trains each run in turn
(``training``), then times every trained model's train step, and its references', in
alternating blocks (``timing``): the paired measurement every ratio comes from. Profiles and
pictures come last (``profiling``, ``artifacts``). It writes one JSON result per run, which also
says where the process's wall time went, phase by phase, and how long it stood idle (``phases``,
``stall``). A recipe
that raises or diverges is a result too (``failed`` / ``diverged``) and the others go on; only a
crash of the process itself leaves no result, which the runner then records for each of its
runs.
"""

import json
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

from bench import recipes
from bench.errors import summarize_exception
from bench.measure import artifacts, beside, phases, profiling, timing
from bench.measure.phases import Phases
from bench.measure.session import open_session
from bench.measure.stall import StallWatch
from bench.measure.training import train_run
from bench.processes import die_with_manager, exit_now
from bench.results.records import OK, ProcessSpec, RunResult, RunSpec
from vae_impls import keras_api


def run(spec: ProcessSpec, report=lambda results: None, stall_notes=None) -> dict:
    """run_id -> ``RunResult`` of each run of the process; never raises for a problem of a recipe.

    ``report`` gets the results so far each time a run has trained: what a process that dies
    later must not lose. ``stall_notes``: where the stall watch keeps the stalls so far, for a
    process stopped in the middle of one (a hung train step at its time limit).
    """
    first = spec.first
    if recipes.kernel_of(first.run.recipe):  # such a run has its process to itself (plan)
        from bench.measure import kernel  # the Jupyter client: only for a run in a kernel

        prepared = _prepared_beside(first, spec.beside)
        own_startup = phases.process_age() or 0.0
        result = kernel.run_in_kernel(first, spec.references, beside=prepared, chains=spec.chains)
        return {first.run.run_id: phases.with_own_startup(result, own_startup)}
    return _run_here(spec, report, stall_notes)


def _prepared_beside(first: RunSpec, models) -> beside.Beside:
    """The models this process times in turns with its kernel, built in a session of its own
    (part of its start-up); none, with why, where the session cannot open."""
    if not models:
        return beside.Beside()
    try:
        session = open_session(first)
    except Exception as error:
        names = ", ".join(f"{recipe} ({api})" for recipe, api in models)
        return beside.Beside(error=f"{names}: {summarize_exception(error)}")
    return beside.prepare(session, models)


def _run_here(spec: ProcessSpec, report, stall_notes=None) -> dict:
    """Every run of ``spec`` trained in this process, then timed in blocks, then pictured; each
    result says where the process's wall time went and how long it stood idle (``phases``)."""
    clock = Phases()
    with StallWatch(origin=phases.origin(), notes=stall_notes) as watch:
        results = _train_time_and_picture(spec, report, clock)
    return {run_id: clock.of_process(result, watch) for run_id, result in results.items()}


def _train_time_and_picture(spec: ProcessSpec, report, clock: Phases) -> dict:
    """run_id -> ``RunResult``, each phase of the process timed on ``clock``; start-up ends once
    the session is open (or cannot be)."""
    try:
        session = open_session(spec.first)
    except Exception as error:  # nothing could train: every run says why
        return {run.run.run_id: RunResult(error=summarize_exception(error)) for run in spec.runs}
    finally:
        clock.started_up()
    results, trained = _train_each(session, spec, report)
    if session.training.paired_blocks and trained:
        signal.alarm(session.training.timeout_seconds)
        with clock.timed(phases.BLOCKS):
            results = _time_paired(session, spec, trained, results)
    signal.alarm(0)
    for run in spec.runs:
        run_id = run.run.run_id
        results[run_id] = _after_timing(session, results[run_id], trained.get(run_id), run)
    with clock.timed(phases.TEARDOWN):
        # The runs' models go before the result is written; the steppers of the timing, which
        # hold them and their tf.data iterators, stay to the end (``timing._KEPT_UNTIL_EXIT``).
        trained.clear()
    return results


def _time_paired(session, spec: ProcessSpec, trained: dict, results: dict) -> dict:
    """``results`` with the paired timing of the ``trained`` models and the references."""
    models = {
        (run.run.recipe, run.run.api): trained[run.run.run_id]
        for run in spec.runs
        if run.run.run_id in trained
    }
    timed = timing.time_paired(session, models, spec.references, spec.chains)
    return timing.with_blocks(results, spec, timed)


def _train_each(session, spec: ProcessSpec, report) -> tuple:
    """(run_id -> RunResult, run_id -> built of each run that trained), reported run by run."""
    results, trained = {}, {}
    for run in spec.runs:
        # SIGALRM ends the process: the runner reads it as the time limit.
        signal.alarm(session.training.timeout_seconds)
        results[run.run.run_id], built = train_run(session, run)
        if results[run.run.run_id].status == OK:
            trained[run.run.run_id] = built
        report(results)
    return results, trained


def _after_timing(session, result: RunResult, built, spec: RunSpec) -> RunResult:
    """A profile, pictures and, on a backend whose graph is not counted as it traces, the train
    step's ops: taken once every timing is done (counting may take a step). A run the plan
    times only is not counted again: the same recipe's trained run of round 1 has its ops, as
    it has its ms/step of fit, and counting costs JAX a compile of the step (docs/budget.md,
    "Outside the blocks")."""
    if result.status == OK and spec.profile_dir:
        result = profiling.profile_or_say_why(session, built, spec, result)
    if result.status == OK and spec.artifacts_path:
        result = artifacts.save_artifacts_or_say_why(
            result, built, session.data, spec.artifacts_path
        )
    if result.status == OK and not spec.run.timed_only:
        result = _ops_counted(session, result, built, spec)
    return result


def _ops_counted(session, result: RunResult, built, spec: RunSpec) -> RunResult:
    """``result`` with its train step's ops as the backend counts them (``count_ops``); as it
    was where the trace counter counted them, or saying why they could not be counted."""
    try:
        counted = session.backend.count_ops(session, built, spec.run.seed)
    except Exception as error:
        return replace(result, error=f"ops not counted: {summarize_exception(error)}")
    if counted is None:
        return result
    return replace(
        result,
        graph_ops=counted.graph_ops,
        op_counts=counted.op_counts,
        op_scopes=counted.op_scopes,
        compiled_ops=counted.compiled_ops,
    )


def own_keras_backend(spec: ProcessSpec) -> None:
    """``KERAS_BACKEND`` as the process's API group needs it, whatever the environment said:
    Keras 3 reads it once, at its first import, which TensorFlow's own import may make before
    ``keras_api.load`` would set it (a ``KERAS_BACKEND=jax`` shell then fails every keras3 run).
    """
    os.environ["KERAS_BACKEND"] = keras_api.backend_of(spec.first.run.api)


def main(argv=None) -> int:
    """Run the process spec at argv's first path; write the results at its second, after each
    run and once complete, each time whole (the runner never reads half a result); the stalls
    so far at its third, where given."""
    spec_path, result_path, *stall_notes = argv or sys.argv[1:]
    die_with_manager()

    def write(results: dict, complete: bool = False) -> None:
        partial = Path(f"{result_path}.partial")
        answer = {
            "complete": complete,
            "results": {run_id: result.to_json() for run_id, result in results.items()},
        }
        partial.write_text(json.dumps(answer), encoding="utf-8")
        os.replace(partial, result_path)

    spec = ProcessSpec.from_json(json.loads(Path(spec_path).read_text(encoding="utf-8")))
    own_keras_backend(spec)
    write(run(spec, write, stall_notes[0] if stall_notes else None), complete=True)
    return 0


if __name__ == "__main__":
    exit_now(main())
