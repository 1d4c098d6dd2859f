"""One worker process: ``python -m bench.measure.worker SPEC.json RESULT.json``.

The process spec (written by ``bench.run.runner``) lists the runs of one round that share a Keras
package, each naming its recipe, API and seed, and carries the [device], [training] and
[network] settings. The worker applies the device settings before TensorFlow starts, then trains
each run in turn with ``fit(verbose=0)`` while a callback times each epoch with
``time.perf_counter`` at epoch boundaries only (the posts' per-epoch figures). Then it times
every trained model's train step, and its references', in alternating blocks: the paired
measurement every ratio comes from. It writes one JSON result per run. A recipe that raises or
diverges is a result too (``failed`` / ``diverged``) and the others go on; only a crash of the
process itself leaves no result, which the runner then records for each of its runs.
"""

import collections
import json
import math
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

from bench.errors import summarize_exception
from bench.measure import injection
from bench.processes import die_with_manager, exit_now
from bench.results.records import (
    DIVERGED,
    FAILED,
    OK,
    BlockStep,
    Epoch,
    ProcessSpec,
    RunResult,
    RunSpec,
)
from vae_impls import registry

ARTIFACT_SAMPLES = 2000  # test digits whose latent means are pictured
ARTIFACT_DIGITS = 10  # originals shown beside their reconstructions
GRID_SIZE = 15  # decoded images per side of the latent-space grid


def run(spec: ProcessSpec, report=lambda results: None) -> dict:
    """run_id -> ``RunResult`` of each run of the process; never raises for a problem of a recipe.

    ``report`` gets the results so far each time a run has trained: what a process that dies
    later must not lose.
    """
    from bench import recipes

    first = spec.first
    if recipes.kernel_of(
        first.run.recipe
    ):  # such a run has its process to itself (bench.config.plan)
        from bench.measure import kernel

        return {first.run.run_id: kernel.run_in_kernel(first, spec.references)}
    return _run_here(spec, report)


def _run_here(spec: ProcessSpec, report) -> dict:
    from bench import datasets
    from bench.config.settings import DeviceSettings, TrainingSettings
    from bench.measure import device
    from vae_impls import keras_api

    first = spec.first
    settings, training = DeviceSettings(**first.device), TrainingSettings(**first.training)
    device.prepare_process(settings)
    _prepare_keras(keras_api.package_for(first.run.api))
    try:
        import tensorflow as tf

        notes = []
        device.apply_runtime(tf, settings, notes)
        keras = keras_api.load(first.run.api)
        device.apply_precision(tf, keras, settings, notes)
        data = datasets.load(training.dataset, mnist_path=training.mnist_path or None)
    except Exception as error:  # nothing could train: every run says why
        return {run.run.run_id: RunResult(error=summarize_exception(error)) for run in spec.runs}
    results, trained = {}, {}
    for run in spec.runs:
        signal.alarm(
            training.timeout_seconds
        )  # SIGALRM ends the process: the runner reads it as the time limit
        results[run.run.run_id], built = _train_run(tf, keras, data, run, settings, training, notes)
        if results[run.run.run_id].status == OK:
            trained[run.run.run_id] = built
        report(results)
    if training.paired_blocks and trained:
        signal.alarm(training.timeout_seconds)
        models = {
            (run.run.recipe, run.run.api): trained[run.run.run_id]
            for run in spec.runs
            if run.run.run_id in trained
        }
        results = _with_blocks(
            results,
            spec,
            time_paired(tf, keras, data, first, settings, training, models, spec.references),
        )
    signal.alarm(0)
    for run in spec.runs:
        results[run.run.run_id] = _after_timing(
            tf, results[run.run.run_id], trained.get(run.run.run_id), data, run, training
        )
    return results


def _train_run(tf, keras, data, spec: RunSpec, settings, training, notes: list) -> tuple:
    """(RunResult, the built recipe or None) of one run's ``fit``."""
    from bench.measure import device

    result, built = RunResult(dataset=data.name, dataset_origin=data.origin), None
    try:
        built = _build(keras, spec, settings, spec.run.recipe, spec.run.api)
        result = _train(tf, keras, built, data, spec, training, result)
    except Exception as error:  # a recipe's failure is a result; the process goes on
        result = replace(result, error=summarize_exception(error))
    read_back = device.read_back(tf, keras, built.model if built else None, settings, notes)
    return replace(result, device_settings=read_back), built


def _after_timing(tf, result: RunResult, built, data, spec: RunSpec, training) -> RunResult:
    """A profile and pictures, taken once every timing is done."""
    if result.status == OK and spec.profile_dir:
        result = _profile_or_say_why(tf, built, data, spec, training, result)
    if result.status == OK and spec.artifacts_path:
        result = _save_artifacts_or_say_why(result, built, data, spec.artifacts_path)
    return result


def _prepare_keras(package: str) -> None:
    """Under Keras 2, ``tf.keras`` is tf_keras, as in the TensorFlow the posts used; TensorFlow
    then also skips importing Keras 3 at start-up, ~2.5 s of every keras2 run."""
    if package == "tf_keras":
        os.environ["TF_USE_LEGACY_KERAS"] = "1"


def _build(keras, spec: RunSpec, settings, recipe: str, api: str):
    from bench import recipes
    from vae_impls import network

    keras.utils.set_random_seed(spec.run.seed)  # the sampling noise and dropout are seeded too
    net = network.NetworkSpec(**_as_tuples(spec.network), jit_compile=settings.xla == "jit_compile")
    built = recipes.build(recipe, api, keras, net)
    network.set_seeded_weights(built.model, net, spec.run.seed)
    return built


def _as_tuples(values: dict) -> dict:
    return {
        key: tuple(value) if isinstance(value, list) else value for key, value in values.items()
    }


def _train(tf, keras, built, data, spec: RunSpec, training, result: RunResult) -> RunResult:
    tracer = TraceCounter(tf, built.model)
    _inject(tf, built, spec, spec.run.recipe, spec.run.api)
    timer = epoch_timer(keras, built)
    steps = training.steps_per_epoch or math.ceil(len(data.x_train) / training.batch_size)
    try:
        if built.fit_on_arrays:
            x_fit = _fit_arrays(data, training)
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
            built.model.fit(
                _pipeline(tf, built, data, spec.run.seed, training),
                epochs=training.epochs,
                steps_per_epoch=training.steps_per_epoch or None,
                callbacks=[timer],
                verbose=0,
            )
        error = ""
    except Exception as exc:
        error = summarize_exception(exc)
    epochs = timed_epochs(timer, steps, training.warmup_epochs)
    status = FAILED if error else DIVERGED if timer.diverged else OK
    return replace(
        result,
        status=status,
        error=error,
        epochs=epochs,
        trace_count=tracer.traces,
        graph_ops=tracer.graph_ops,
        op_counts=tracer.op_counts,
    )


def _fit_arrays(data, training):
    from bench import datasets

    return datasets.arrays_for_fit(data.x_train, training.batch_size, training.steps_per_epoch)


def _inject(tf, built, spec: RunSpec, recipe: str, api: str) -> None:
    if spec.injected_ms(recipe, api):
        injection.slow_down(tf, built.model, spec.injected_ms(recipe, api))


def _pipeline(tf, built, data, seed, training, endless=False):
    """The same batches in the same order for every recipe of a round: the round's seed shuffles."""
    x = data.x_train
    targets = built.fit_targets(x)
    dataset = tf.data.Dataset.from_tensor_slices(x if targets is None else (x, targets))
    dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True).batch(
        training.batch_size
    )
    if endless or training.steps_per_epoch:
        dataset = dataset.repeat()  # a capped epoch must never run out of batches
    return dataset.prefetch(tf.data.AUTOTUNE)


# --- the paired measurement -------------------------------------------------------------------


def time_paired(
    tf, keras, data, first: RunSpec, settings, training, models: dict, references
) -> tuple:
    """(every model's timed steps, why a reference could not be timed): the train steps of the
    trained ``models`` ((recipe, api) -> built) and of the ``references`` ((recipe, api) pairs,
    built here with ``first``'s settings), in alternating blocks of steps.

    Each model runs the train function ``fit`` runs, on an endless iterator of the batches its
    ``fit`` takes, one step per call, timed per step. Block order alternates (ABC, CBA, ...) so
    that a drift of the machine falls on every model alike. The floor runs as several instances
    (``floor_instances``), their steps pooled under its name. A reference that fails to build or
    train is left out and named; the runs' own results stay as they were.
    """
    steppers = {
        model: [_stepper(tf, built, data, first, training)] for model, built in models.items()
    }
    errors = []

    def add_instance(recipe, api):
        try:
            steppers.setdefault((recipe, api), []).append(
                _reference_stepper(tf, keras, data, first, settings, training, recipe, api)
            )
        except Exception as error:
            errors.append(f"{recipe} ({api}): {summarize_exception(error)}")

    for recipe, api in references:
        add_instance(recipe, api)
    floor = next(
        (model for model in steppers if model[0] == registry.FLOOR), None
    )  # one Keras, one floor
    if floor:
        for _ in range(floor_instances(len(steppers) - 1) - 1):
            add_instance(*floor)
    if len(steppers) < 2:
        return (), "; ".join(errors)
    for (
        instances
    ) in steppers.values():  # warm every model alike: a fresh iterator fills its buffers
        for step in instances:
            for _ in range(WARMING_STEPS):
                step()
    return _time_blocks(steppers, training.paired_blocks, training.paired_block_steps), "; ".join(
        errors
    )


def floor_instances(others: int) -> int:
    """Instances of the floor beside ``others`` models: round(sqrt(others)), at least one.

    Every ratio of a process to the floor shares the floor's estimate, so its error counts in
    each of them; giving the shared side sqrt(m) times the measurements of each of the m others
    minimizes their variance for a given number of steps (Dunnett's allocation for comparisons
    with a control). The floor's extra measurements come from extra instances, each visited once
    a block, not extra steps of one: a model's time drifts ~2% from one visit to the next, which
    only more visits average, and two instances of plain_ae in one process differed by up to 5%
    in a probe of 8 blocks (README: "Why several instances", "Why many short blocks").
    """
    return max(1, round(math.sqrt(others)))


def _reference_stepper(tf, keras, data, first: RunSpec, settings, training, recipe: str, api: str):
    reference = _build(keras, first, settings, recipe, api)
    _inject(tf, reference, first, recipe, api)
    reference.model.fit(
        _pipeline(tf, reference, data, first.run.seed, training, endless=True),
        epochs=1,
        steps_per_epoch=PAIRED_TRACING_STEPS,
        verbose=0,
    )
    return _stepper(tf, reference, data, first, training)


def _with_blocks(results: dict, spec: ProcessSpec, timed: tuple) -> dict:
    """Each run keeps its own model's steps; the references' steps go with the process's first run."""
    steps, reference_error = timed
    owners = {(run.run.recipe, run.run.api): run.run.run_id for run in spec.runs}
    first_id = spec.first.run.run_id
    kept = {run_id: [] for run_id in results}
    for step in steps:
        kept[owners.get((step.model, step.model_api), first_id)].append(step)
    return {
        run_id: replace(result, blocks=tuple(kept[run_id]), reference_error=reference_error)
        for run_id, result in results.items()
    }


def _profile_or_say_why(tf, built, data, spec: RunSpec, training, result: RunResult) -> RunResult:
    """A profile is taken after the timed part; a problem there leaves the timing valid."""
    from bench.measure import profiling

    try:
        folder = Path(spec.profile_dir)
        folder.mkdir(parents=True, exist_ok=True)
        profiling.capture(
            tf, _stepper(tf, built, data, spec, training), training.profile_steps, folder
        )
        return result
    except Exception as error:
        return replace(result, error=f"profile not taken: {summarize_exception(error)}")


PAIRED_TRACING_STEPS = 2  # a reference's untimed steps: its trace and its optimizer's variables
WARMING_STEPS = 2  # each model's untimed steps on its fresh iterator before the blocks


def _stepper(tf, built, data, spec: RunSpec, training):
    """One train step per call: the model's own train function on an endless iterator of the
    batches its ``fit`` takes: the harness' pipeline, or the one Keras builds from numpy arrays."""
    train_function = built.model.make_train_function()
    if built.fit_on_arrays:
        pipeline = _arrays_pipeline(spec.run.api, built, data, training)
    else:
        pipeline = _pipeline(tf, built, data, spec.run.seed, training, endless=True)
    batches = iter(pipeline)

    def step():
        logs = train_function(batches)
        next(iter(tf.nest.flatten(logs))).numpy()  # wait for the step, as fit does for its logs

    return step


def _arrays_pipeline(api: str, built, data, training):
    """The tf.data pipeline ``fit(x, y, batch_size=..., shuffle=True)`` builds from the arrays
    (Keras' own data adapter: a gather of each batch from a permutation, reshuffled each pass),
    repeated without end. Keras keeps that adapter internal under both APIs."""
    from vae_impls import keras_api

    x = _fit_arrays(data, training)
    y = built.fit_targets(x)
    if keras_api.package_for(api) == "tf_keras":
        from tf_keras.src.engine import data_adapter

        adapter = data_adapter.select_data_adapter(x, y)
        return adapter(
            x, y, batch_size=training.batch_size, epochs=None, shuffle=True
        ).get_dataset()
    from keras.src.trainers.data_adapters import get_data_adapter

    return (
        get_data_adapter(x, y, batch_size=training.batch_size, shuffle=True)
        .get_tf_dataset()
        .repeat()
    )


def _time_blocks(steppers: dict, blocks: int, steps: int) -> tuple:
    """Each block visits every instance of every model once, in ``visiting_order``, reversed
    every other block; a model's steps are numbered across its instances' visits."""
    timed, order = (
        [],
        visiting_order({model: len(instances) for model, instances in steppers.items()}),
    )
    for block in range(1, blocks + 1):
        visits = collections.Counter()
        for model in order if block % 2 else order[::-1]:
            visit, step = visits[model], steppers[model][visits[model]]
            visits[model] += 1
            for index in range(visit * steps + 1, (visit + 1) * steps + 1):
                started = time.perf_counter()
                step()
                timed.append(BlockStep(block, *model, index, time.perf_counter() - started))
    return tuple(timed)


def visiting_order(instances: dict) -> list:
    """One block's visits, model -> its number of instances: one visit per instance, those of
    the floor spread evenly among the other models'."""
    others = [
        model
        for model, count in instances.items()
        if model[0] != registry.FLOOR
        for _ in range(count)
    ]
    floors = [
        model
        for model, count in instances.items()
        if model[0] == registry.FLOOR
        for _ in range(count)
    ]
    if not floors or not others:
        return others + floors
    order = []
    for index, segment in enumerate(_split_evenly(others, len(floors) + 1)):
        order += segment + floors[index : index + 1]
    return order


def _split_evenly(items: list, parts: int) -> list:
    size, extra = divmod(len(items), parts)
    bounds = [index * size + min(index, extra) for index in range(parts + 1)]
    return [items[start:end] for start, end in zip(bounds, bounds[1:])]


class TraceCounter:
    """Counts traces of the train step and the ops of its traced graph, in all and by type.

    Wrapping ``train_step`` on the instance works under both Keras APIs, which look the method
    up when their ``tf.function`` traces. The wrapper's Python body runs only while tracing, so
    it costs nothing per step, and the default graph at that point is the FuncGraph being built.
    A first call that creates variables (the optimizer's) is traced twice by ``tf.function``;
    the op count kept is the latest trace's, the graph the steps then run.
    """

    def __init__(self, tf, model):
        self.traces, self.graph_ops, self.op_counts = 0, None, {}
        original = model.train_step

        def counted_train_step(*args, **kwargs):
            outputs = original(*args, **kwargs)
            self.traces += 1
            operations = tf.compat.v1.get_default_graph().get_operations()
            self.graph_ops = len(operations)
            self.op_counts = dict(collections.Counter(operation.type for operation in operations))
            return outputs

        model.train_step = counted_train_step


def timed_epochs(timer, steps: int, warmup_epochs: int) -> tuple:
    """The ``Epoch`` records of what an ``epoch_timer`` measured."""
    return tuple(
        Epoch(index, seconds, steps, seconds / steps * 1000, index <= warmup_epochs, **metrics)
        for index, (seconds, metrics) in enumerate(timer.epochs, start=1)
    )


def epoch_timer(keras, built):
    class EpochTimer(keras.callbacks.Callback):
        """Wall time per epoch, taken at epoch boundaries only: no per-batch hooks."""

        def __init__(self):
            super().__init__()
            self.epochs, self.diverged, self._start = [], False, None

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self._start
            metrics = built.epoch_metrics(logs or {})
            self.epochs.append((seconds, metrics))
            if not math.isfinite(metrics["loss"]):
                self.diverged = True
                self.model.stop_training = True

    return EpochTimer()


def _save_artifacts_or_say_why(result: RunResult, built, data, path) -> RunResult:
    """Pictures are taken after the timed part; a problem there leaves the timing valid."""
    try:
        _save_artifacts(built, data, Path(path))
        return replace(result, artifacts=path)
    except Exception as error:
        return replace(result, error=f"artifacts not saved: {summarize_exception(error)}")


def _save_artifacts(built, data, path: Path) -> None:
    import numpy as np

    def predict(model, inputs):
        return np.asarray(model.predict(inputs, batch_size=256, verbose=0), dtype=np.float32)

    images, labels = data.x_test[:ARTIFACT_SAMPLES], data.y_test[:ARTIFACT_SAMPLES]
    latent = predict(built.mean_encoder, images)
    originals = data.x_test[:ARTIFACT_DIGITS]
    reconstructions = predict(built.decoder, predict(built.mean_encoder, originals))
    extent = np.array(
        [latent[:, 0].min(), latent[:, 0].max(), latent[:, 1].min(), latent[:, 1].max()], np.float32
    )
    xs = np.linspace(extent[0], extent[1], GRID_SIZE)
    ys = np.linspace(extent[3], extent[2], GRID_SIZE)  # top row of the picture = largest y
    grid = np.array([(x, y) for y in ys for x in xs], np.float32)
    grid_images = predict(built.decoder, grid)[..., 0]  # GRID_SIZE**2 digits in row-major order
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npz")
    np.savez_compressed(
        partial,
        latent_mu=latent,
        latent_labels=labels,
        originals=originals[..., 0],
        reconstructions=reconstructions[..., 0],
        grid_images=grid_images,
        grid_extent=extent,
    )
    partial.replace(path)


def main(argv=None) -> int:
    spec_path, result_path = argv or sys.argv[1:]
    die_with_manager()

    def write(results: dict, complete: bool = False) -> None:
        partial = Path(f"{result_path}.partial")
        answer = {
            "complete": complete,
            "results": {run_id: result.to_json() for run_id, result in results.items()},
        }
        partial.write_text(json.dumps(answer), encoding="utf-8")
        os.replace(partial, result_path)  # the runner never reads half a result

    write(
        run(ProcessSpec.from_json(json.loads(Path(spec_path).read_text(encoding="utf-8"))), write),
        complete=True,
    )
    return 0


if __name__ == "__main__":
    exit_now(main())
