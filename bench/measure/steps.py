"""What a model trains on, and its train step one call at a time.

A run's ``fit`` takes either the harness' tf.data pipeline or, for a recipe that trains as post
VII's notebook calls ``fit``, numpy arrays from which Keras builds its own pipeline. A
``stepper`` feeds the model's own train function the same batches outside ``fit``: what the
paired timing and the profile call.
"""

from bench import datasets
from vae_impls import keras_api


def pipeline(session, built, seed: int, endless: bool = False):
    """The same batches in the same order for every recipe of a round: the round's seed shuffles."""
    training, x = session.training, session.data.x_train
    targets = built.fit_targets(x)
    dataset = session.tf.data.Dataset.from_tensor_slices(x if targets is None else (x, targets))
    dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True).batch(
        training.batch_size
    )
    if endless or training.steps_per_epoch:
        dataset = dataset.repeat()  # a capped epoch must never run out of batches
    return dataset.prefetch(session.tf.data.AUTOTUNE)


def fit_arrays(session):
    """The images a fit on numpy arrays gets (``datasets.arrays_for_fit``)."""
    training = session.training
    return datasets.arrays_for_fit(
        session.data.x_train, training.batch_size, training.steps_per_epoch
    )


def arrays_pipeline(session, built):
    """The tf.data pipeline ``fit(x, y, batch_size=..., shuffle=True)`` builds from the arrays
    (Keras' own data adapter: a gather of each batch from a permutation, reshuffled each pass),
    repeated without end. Keras keeps that adapter internal under both APIs."""
    x = fit_arrays(session)
    y = built.fit_targets(x)
    batch_size = session.training.batch_size
    if keras_api.package_for(session.first.run.api) == "tf_keras":
        from tf_keras.src.engine import data_adapter

        adapter = data_adapter.select_data_adapter(x, y)
        return adapter(x, y, batch_size=batch_size, epochs=None, shuffle=True).get_dataset()
    from keras.src.trainers.data_adapters import get_data_adapter

    return get_data_adapter(x, y, batch_size=batch_size, shuffle=True).get_tf_dataset().repeat()


def stepper(session, built, seed: int):
    """One train step per call: the model's own train function on an endless iterator of the
    batches its ``fit`` takes: the harness' pipeline, or the one Keras builds from numpy arrays."""
    tf, train_function = session.tf, built.model.make_train_function()
    if built.fit_on_arrays:
        batches = iter(arrays_pipeline(session, built))
    else:
        batches = iter(pipeline(session, built, seed, endless=True))

    def step():
        logs = train_function(batches)
        # Wait for the step, as fit does for its logs.
        next(iter(tf.nest.flatten(logs))).numpy()

    return step
