"""One run's training: its recipe built and seeded, then ``fit`` timed epoch by epoch.

Each run trains with ``fit(verbose=0)`` while a callback times each epoch at its boundaries only
(the posts' per-epoch figures) and a wrapper counts the traces and ops of its train step. A
recipe that raises or diverges is a result too (``failed`` / ``diverged``): the process goes on
with its other runs. A run the plan times only (``PlannedRun.timed_only``) is built the same way
and traced by a few untimed steps (``trace``), as a reference is, and has no epochs.
"""

import math
import time
from dataclasses import replace

from bench import recipes
from bench.config.settings import jit_compile_asked
from bench.explanations import explain
from bench.measure import phases
from bench.measure.backends import numpy_data
from bench.measure.instruments import TraceCounter, epoch_timer, timed_epochs
from bench.results.records import DIVERGED, FAILED, OK, RunResult, RunSpec

# Untimed steps of ``fit`` that trace a model's train step and create its optimizer's state,
# where a model is timed without training: a reference's, or a run's the plan times only. One
# does both; the step after it, the timing's warm step (``timing.WARMING_STEPS``), is as slow
# as a fresh iterator's first step on TensorFlow, not a second trace (docs/budget.md, "Outside
# the blocks").
TRACING_STEPS = 1


def train_run(session, spec: RunSpec) -> tuple:
    """(RunResult, the built recipe or None) of one run's ``fit`` (or, for a run the plan times
    only, its trace), with the seconds it took to build and to train (``phases.of_run``)."""
    started = time.perf_counter()
    result = RunResult(dataset=session.data.name, dataset_origin=session.data.origin)
    built = None
    try:
        built = build(session, spec.run.recipe, spec.run.api, spec.run.seed)
        if spec.run.timed_only:
            result = _traced_only(session, built, spec, result)
        else:
            result = _train(session, built, spec, result)
    except Exception as error:  # a recipe's failure is a result; the process goes on
        result = replace(result, error=explain(error))
    result = replace(result, device_settings=session.read_back(built.model if built else None))
    return phases.of_run(result, time.perf_counter() - started), built


def build(session, recipe: str, api: str, seed: int):
    """``recipe`` built for ``api`` with the session's network, its randomness and its initial
    weights drawn from ``seed``: the same start for every recipe of a round."""
    from vae_impls import network  # imports TensorFlow: only once the session has set it up

    session.keras.utils.set_random_seed(seed)  # the sampling noise and dropout are seeded too
    built = recipes.build(recipe, api, session.keras, session.net)
    check_compiled(session, built.model)
    network.set_seeded_weights(built.model, session.net, seed)
    return built


def check_compiled(session, model) -> None:
    """Raise where [device] asks Keras to compile the train step and Keras compiled ``model``
    without it: a recipe that does not compile is a failed run, never timed as a compiled one."""
    if jit_compile_asked(session.device.settings) and not model.jit_compile:
        raise RuntimeError(
            "jit_compile = true, but Keras compiles this model without it (a layer without "
            "compiler support, op determinism, or run_eagerly turns it off)"
        )


def slow_down_if_asked(session, built, milliseconds: float) -> None:
    """The deliberate slowdown of ``KLBENCH_INJECT_SLOWDOWN``, if any, inside each train step."""
    if milliseconds:
        session.backend.slow_down(session.runtime, built.model, milliseconds)


def _train(session, built, spec: RunSpec, result: RunResult) -> RunResult:
    """``result`` with the run's timed epochs, its status and its train step's traces and ops;
    an error of ``fit`` is the run's ``failed`` status, a non-finite loss its ``diverged``."""
    # TensorFlow's graph is counted while it is traced; other backends count after the timing
    # (``count_ops``).
    tracer = TraceCounter(session.tf, built.model) if session.tf else None
    slow_down_if_asked(session, built, spec.injected_ms(spec.run.recipe, spec.run.api))
    timer = epoch_timer(session.keras, built)
    training = session.training
    steps = _steps_per_epoch(session, built)
    draws_before = _sampling_draws(session, built)
    try:
        _fit(session, built, spec.run.seed, timer)
        error = ""
    except Exception as exc:
        error = explain(exc)  # as verify explains it (bench.explanations)
    epochs = timed_epochs(timer, steps, training.warmup_epochs)
    return replace(
        result,
        status=FAILED if error else DIVERGED if timer.diverged else OK,
        error=error,
        epochs=epochs,
        noise_draws=None if error else _draws_per_step(session, built, draws_before, epochs),
        **_traced(tracer),
    )


def _traced_only(session, built, spec: RunSpec, result: RunResult) -> RunResult:
    """``result`` of a run timed only: ``ok`` once its train step is traced (``trace``), with its
    traces and ops counted; no epochs. An error of the trace is the run's ``failed`` status."""
    tracer = TraceCounter(session.tf, built.model) if session.tf else None
    slow_down_if_asked(session, built, spec.injected_ms(spec.run.recipe, spec.run.api))
    try:
        trace(session, built, spec.run.seed)
    except Exception as exc:
        return replace(result, status=FAILED, error=explain(exc))
    return replace(result, status=OK, **_traced(tracer))


def trace(session, built, seed: int) -> None:
    """``TRACING_STEPS`` untimed steps of ``fit`` on the harness' batches: the train step traced
    and the optimizer's state created, before a model is timed without training."""
    built.model.fit(
        session.backend.fit_data(session, built, seed),
        epochs=1,
        steps_per_epoch=TRACING_STEPS,
        verbose=0,
    )


def _sampling_draws(session, built) -> int | None:
    """The sampling layer's draws so far (``network.sampling_draws``); None where not counted."""
    from vae_impls import network

    return network.sampling_draws(session.keras, built.model)


def _draws_per_step(session, built, before: int | None, epochs: tuple) -> float | None:
    """The sampling layer's draws per train step of ``fit``: the quality guard compares the
    losses of runs that drew the same noise only."""
    after = _sampling_draws(session, built)
    steps = sum(epoch.steps for epoch in epochs)
    if before is None or after is None or not steps:
        return None
    return (after - before) / steps


def _traced(tracer) -> dict:
    """The trace counter's fields of a result (none without a counter)."""
    if tracer is None:
        return {}
    return {
        "trace_count": tracer.traces,
        "graph_ops": tracer.graph_ops,
        "op_counts": tracer.op_counts,
        "op_scopes": tracer.op_scopes,
    }


def _steps_per_epoch(session, built) -> int:
    """The steps of one epoch of ``fit``: a capped epoch's, else a pass's (whole batches only
    without TensorFlow: ``backends.numpy_data``)."""
    training = session.training
    if session.tf is None and not built.fit_on_arrays:
        return numpy_data.steps_per_epoch(session)
    return training.steps_per_epoch or math.ceil(len(session.data.x_train) / training.batch_size)


def _fit(session, built, seed: int, timer) -> None:
    """``fit`` as the recipe asks: on numpy arrays as post VII's notebook calls it (Keras' own
    batching, every backend), else on the harness' batches (the backend's ``fit``)."""
    training = session.training
    if built.fit_on_arrays:
        x_fit = numpy_data.fit_arrays(session)
        built.model.fit(
            x_fit,
            built.fit_targets(x_fit),
            batch_size=training.batch_size,
            shuffle=True,
            epochs=training.epochs,
            callbacks=[timer],
            verbose=0,
        )
    else:
        session.backend.fit(session, built, seed, [timer])
