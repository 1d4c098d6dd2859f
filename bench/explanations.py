"""Why a recipe failed, in one line that says what to change: the one rule that turns a recipe's
exception into an explanation, shared by ``verify`` (``bench.measure.equivalence``) and a
benchmark's worker (``bench.measure.training``), so that a run's table and ``verify`` say the
same thing of the same mistake.

An exception the rule does not know is ``bench.errors.summarize_exception``'s line unchanged.
"""

import os
import re
import sys
import traceback

from bench.errors import summarize_exception
from vae_impls.common import MissingLogKey

# Keras on JAX calls ``train_step(state, data)``; a step written for TensorFlow or PyTorch takes
# ``(self, data)`` only.
_STATEFUL_TRAIN_STEP = re.compile(r"train_step\(\) takes 2 positional arguments but 3 were given")
_NO_TENSORFLOW = re.compile(r"No module named '(tensorflow|tf_keras)'")
# TensorFlow's tracing wraps a recipe's own error in one of these, whose message starts with the
# original's "Type: message": the original is what the recipe's author recognises.
_TRACING_WRAPPER = re.compile(r"^StagingError: (?=[A-Za-z_][\w.]*: )")

JAX_TRAIN_STEP = (
    "this train_step(self, data) is written for TensorFlow or PyTorch; Keras on JAX calls a "
    "stateless train_step(self, state, data): leave the JAX APIs out of RECIPE (runs_as_written, "
    "ports; needs_tensorflow=True for a tf.GradientTape step) or give it a JAX port in "
    "build_keras3_port"
)
TENSORFLOW_ELSEWHERE = (
    "the recipe imports TensorFlow where Keras computes with JAX or PyTorch: declare "
    "needs_tensorflow=True in RECIPE, or compute with keras.ops in a port (build_keras3_port)"
)


def missing_log_key(term: str, key: str, logged) -> str:
    """The explanation of a ``Built.log_keys`` entry naming a key the logs lack."""
    held = ", ".join(sorted(logged)) or "nothing"
    return (
        f"metric names: no {key!r} in the logs (they hold {held}): say which log key holds the "
        f"{term} in Built.log_keys"
    )


def explain(error: BaseException) -> str:
    """One line: the error, and where it is a known mistake of a recipe, the change to make."""
    if isinstance(error, MissingLogKey):
        return missing_log_key(error.term, error.key, error.logged)
    summary = _TRACING_WRAPPER.sub("", summarize_exception(error), count=1)
    if _STATEFUL_TRAIN_STEP.search(summary):
        return f"{summary}: {JAX_TRAIN_STEP}"
    if _NO_TENSORFLOW.search(summary) or (
        _raised_in_tensorflow(error) and _tensorflow_beside_another_backend()
    ):
        return f"{summary}: {TENSORFLOW_ELSEWHERE}"
    return summary


def _raised_in_tensorflow(error: BaseException) -> bool:
    """Whether TensorFlow's own code is on the error's traceback: TensorFlow merely loaded in
    the process (a module of another recipe may import it) explains nothing of an error raised
    elsewhere, such as Keras 3's own refusal of ``add_loss``."""
    frames = traceback.extract_tb(error.__traceback__)
    return any(f"{os.sep}tensorflow{os.sep}" in frame.filename for frame in frames)


def _tensorflow_beside_another_backend() -> bool:
    """Whether this process computes with Keras 3 on JAX or PyTorch and yet has TensorFlow
    loaded: a worker of those backends never imports it, so a recipe did, and its TensorFlow
    code (a tf.GradientTape step) met the other backend's tensors. Reads the modules already
    loaded; imports nothing."""
    keras = sys.modules.get("keras")
    backend = getattr(getattr(keras, "backend", None), "backend", None)
    return callable(backend) and backend() in ("jax", "torch") and "tensorflow" in sys.modules
