"""The batches a JAX or PyTorch worker trains on: numpy arrays, the same for both backends.

TensorFlow's workers train on a tf.data pipeline (``backends.tensorflow_backend``); a worker without
TensorFlow takes its batches from numpy: each pass over the training images in a permutation drawn
from the round's seed, so every recipe of a round, on JAX or PyTorch, sees the same batches in the
same order. A pass drops its last, short batch: a batch of another shape would make JAX compile the
train step again, inside the timed steps.
"""

import numpy as np

from bench import datasets


def steps_per_pass(session) -> int:
    training = session.training
    return len(session.data.x_train) // training.batch_size


def steps_per_epoch(session) -> int:
    """A capped epoch's steps, else one pass's whole batches."""
    return session.training.steps_per_epoch or steps_per_pass(session)


def fit_arrays(session):
    """The images a fit on numpy arrays gets (``datasets.arrays_for_fit``), on every backend."""
    training = session.training
    return datasets.arrays_for_fit(
        session.data.x_train, training.batch_size, training.steps_per_epoch
    )


def images_of(session, built):
    """The images a run's ``fit`` takes: the arrays of a recipe that fits on arrays, else the
    training set."""
    return fit_arrays(session) if built.fit_on_arrays else session.data.x_train


def batches(session, built, seed: int):
    """Endless (x,) or (x, targets) numpy batches, reshuffled each pass from ``seed``."""
    x = images_of(session, built)
    targets = built.fit_targets(x)
    size = session.training.batch_size
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(len(x))
        for start in range(0, len(x) - size + 1, size):
            chosen = order[start : start + size]
            yield (x[chosen],) if targets is None else (x[chosen], _taken(targets, chosen))


def _taken(targets, chosen):
    """The rows ``chosen`` of every array in ``targets``: an array, or a dict, list or tuple of
    them (a recipe with several outputs names a target for each)."""
    if isinstance(targets, dict):
        return {name: _taken(value, chosen) for name, value in targets.items()}
    if isinstance(targets, list | tuple):
        return type(targets)(_taken(value, chosen) for value in targets)
    return targets[chosen]


def fit(session, built, seed: int, callbacks: list) -> None:
    """``fit`` on the numpy batches: ``epochs`` epochs of ``steps_per_epoch`` steps."""
    training = session.training
    built.model.fit(
        batches(session, built, seed),
        epochs=training.epochs,
        steps_per_epoch=steps_per_epoch(session),
        callbacks=callbacks,
        verbose=0,
    )


def first_value(logs):
    """A log value of a step, to wait for: the step's result is ready once it is."""
    return next(iter(logs.values())) if isinstance(logs, dict) else logs
