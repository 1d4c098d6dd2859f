"""What a run's ``fit`` is measured with: the traces and ops of its train step, and its epochs.

Both cost nothing per step: the counter's code runs only while the step is traced, and the timer
reads the clock at epoch boundaries only. The kernel path's notebook measures with them too, so
that a run in a Jupyter kernel and one in a worker compare.
"""

import collections
import math
import re
import time

from bench.results.records import OUTSIDE_LAYERS, Epoch

# The op types whose layer scopes a traced step records: where a second pass of a layer shows.
SCOPED_OP_TYPES = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "MatMul")


class TraceCounter:
    """Counts traces of the train step and the ops of its traced graph, in all, by type, and by
    layer for ``SCOPED_OP_TYPES`` (``op_scopes``: layer -> op type -> count).

    Wrapping ``train_step`` on the instance works under both Keras APIs, which look the method
    up when their ``tf.function`` traces. The wrapper's Python body runs only while tracing, so
    it costs nothing per step, and the default graph at that point is the FuncGraph being built.
    A first call that creates variables (the optimizer's) is traced twice by ``tf.function``;
    the op count kept is the latest trace's, the graph the steps then run.
    """

    def __init__(self, tf, model):
        self.traces, self.graph_ops, self.op_counts, self.op_scopes = 0, None, {}, {}
        original = model.train_step
        names = layer_names(model)

        def counted_train_step(*args, **kwargs):
            outputs = original(*args, **kwargs)
            self.traces += 1
            operations = tf.compat.v1.get_default_graph().get_operations()
            self.graph_ops = len(operations)
            self.op_counts = dict(collections.Counter(operation.type for operation in operations))
            self.op_scopes = op_scopes(operations, names)
            return outputs

        model.train_step = counted_train_step


def layer_names(model) -> set:
    """The names of ``model``'s layers, nested models' included (both Keras APIs keep them)."""
    flatten = getattr(model, "_flatten_layers", None)
    layers = flatten(include_self=False, recursive=True) if flatten else model.layers
    return {layer.name for layer in layers}


def op_scopes(operations, layer_names: set) -> dict:
    """layer -> op type -> count of the ``SCOPED_OP_TYPES`` ops of a traced graph
    (``scopes_of``)."""
    return scopes_of(
        ((operation.type, operation.name) for operation in operations), SCOPED_OP_TYPES, layer_names
    )


def scopes_of(typed_names, types, layer_names: set) -> dict:
    """layer -> op type -> count of the ops of ``types`` among (type, scoped name) pairs. An op
    belongs to the innermost layer in its name ('vae/encoder/encoder_conv_0/Conv2D', gradients'
    'gradient_tape/vae/encoder_conv_0/Conv2D/Conv2DBackpropInput', JAX's
    'jit(train_step)/transpose(jvp(encoder))/encoder_conv_0/conv_general_dilated'); Keras 3's
    uniquifying suffix ('encoder_conv_0_1') is dropped. A layer in the graph twice counts twice."""
    counts = collections.defaultdict(collections.Counter)
    for op_type, name in typed_names:
        if op_type in types:
            counts[_layer_of(name, layer_names)][op_type] += 1
    return {layer: dict(found) for layer, found in sorted(counts.items())}


def _layer_of(op_name: str, layer_names: set) -> str:
    for part in reversed(op_name.split("/")[:-1]):
        for name in (part, re.sub(r"_\d+$", "", part)):
            if name in layer_names:
                return name
    return OUTSIDE_LAYERS


def epoch_timer(keras, built):
    """A callback that times each epoch of ``built``'s ``fit`` (read it with ``timed_epochs``)
    and stops training at the first non-finite loss, which makes the run ``diverged``."""

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


def timed_epochs(timer, steps: int, warmup_epochs: int) -> tuple:
    """The ``Epoch`` records of what an ``epoch_timer`` measured, ``steps`` a full epoch's."""
    return tuple(
        Epoch(index, seconds, steps, seconds / steps * 1000, index <= warmup_epochs, **metrics)
        for index, (seconds, metrics) in enumerate(timer.epochs, start=1)
    )
