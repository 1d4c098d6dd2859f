"""Keras 3 ports' way of logging the losses their layers ``add_loss()``, on every backend.

The ports hand the KL (and, in ``vae_loss_layer``, the BCE) to Keras with ``add_loss()`` inside
a layer's or model's ``call``, as Keras 3 wants it. Logging the added values needs a ``Mean``
tracker; updating it inside ``call`` works on TensorFlow and PyTorch, but on JAX the trainer
runs ``call`` statelessly without the metrics' state and the update raises (keras-team/keras
issue 21639). ``Model.compute_loss`` is where Keras 3 itself updates metrics on every backend,
and it sees every added loss in ``self.losses``: the trackers are updated there.
"""


def model_logging_added_losses(keras, names):
    """A ``keras.Model`` class that logs the losses added during ``call``, in the order they are
    added, under ``names``; usable as a functional model (``cls(inputs, outputs)``) or as the
    base of a subclassed one."""

    class ModelLoggingAddedLosses(keras.Model):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.added_loss_trackers = [keras.metrics.Mean(name=name) for name in names]

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            added = self.losses
            # Keras builds its loss state once from symbolic outputs, without running ``call``:
            # no loss has been added then, and there is nothing to log.
            if added and len(added) != len(names):
                raise ValueError(f"expected the added losses {names}, got {len(added)} losses")
            for tracker, value in zip(self.added_loss_trackers, added):
                tracker.update_state(value)
            return super().compute_loss(x, y, y_pred, sample_weight, training)

    return ModelLoggingAddedLosses
