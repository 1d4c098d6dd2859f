"""One rule explains a recipe's failure wherever it shows: verify's line and a run's ``error``
say the same thing of a missing log key, a TensorFlow step on JAX, a helper's earlier form."""

import os
import pickle
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from bench import explanations
from bench.analysis import equivalence
from bench.measure import training
from vae_impls import objective
from vae_impls.common import LOSS_MINUS_KL, Built, MissingLogKey

JAX_STEP_ERROR = "train_step() takes 2 positional arguments but 3 were given"


def test_a_missing_log_key_is_explained_as_verify_explains_it():
    built = Built(model=None, mean_encoder=None, decoder=None, log_keys=dict(LOSS_MINUS_KL))
    with pytest.raises(MissingLogKey) as raised:
        built.epoch_metrics({"total": 1.0, "kl": 0.1})
    explained = explanations.explain(raised.value)
    assert explained == (
        "metric names: no 'loss' in the logs (they hold kl, total): say which log key holds the "
        "loss in Built.log_keys"
    )
    found = {"recipe": "mine", "api": "keras2", "missing_keys": {"loss": "loss"}}
    checks = equivalence.judge({**found, "log_keys": ["kl", "total"]})
    assert [check.hint for check in checks] == [explained]


def test_a_missing_log_key_crosses_a_process_boundary_with_its_fields():
    error = pickle.loads(pickle.dumps(MissingLogKey("kl", "kl_loss", ("loss",))))
    assert (error.term, error.key, error.logged) == ("kl", "kl_loss", ("loss",))


def test_every_logged_key_still_reads_the_terms():
    built = Built(model=None, mean_encoder=None, decoder=None)
    assert built.epoch_metrics({"loss": 1.0, "kl": 0.25}) == {"loss": 1.0, "bce": 0.75, "kl": 0.25}


def test_a_tensorflow_train_step_declared_for_jax_says_what_to_declare():
    explained = explanations.explain(TypeError(JAX_STEP_ERROR))
    assert explained.startswith(f"TypeError: {JAX_STEP_ERROR}: ")
    assert "Keras on JAX calls a stateless train_step(self, state, data)" in explained
    assert "needs_tensorflow=True" in explained


def test_tensorflow_imported_without_it_says_how_to_declare_it():
    explained = explanations.explain(ModuleNotFoundError("No module named 'tensorflow'"))
    assert explained.endswith(explanations.TENSORFLOW_ELSEWHERE)


def raised_in_tensorflow_code(message: str) -> RuntimeError:
    """A RuntimeError whose traceback passes through a file of TensorFlow's package."""
    fake = os.path.join(os.sep, "site-packages", "tensorflow", "python", "ops", "fake.py")
    try:
        exec(compile(f"raise RuntimeError({message!r})", fake, "exec"))
    except RuntimeError as error:
        return error
    raise AssertionError("not raised")


def test_tensorflow_loaded_explains_no_error_raised_outside_it(monkeypatch):
    """A JAX worker where some module imported TensorFlow: Keras 3's own refusal of add_loss is
    not TensorFlow code meeting JAX's tensors."""
    jax_keras = SimpleNamespace(backend=SimpleNamespace(backend=lambda: "jax"))
    monkeypatch.setitem(sys.modules, "keras", jax_keras)
    monkeypatch.setitem(sys.modules, "tensorflow", SimpleNamespace())
    try:
        raise NotImplementedError("in add_loss()")
    except NotImplementedError as error:
        assert explanations.explain(error) == "NotImplementedError: in add_loss()"


def test_an_error_of_tensorflow_code_on_another_backend_says_how_to_declare_it(monkeypatch):
    """A PyTorch worker never imports TensorFlow: loaded there, a recipe brought it."""
    torch_keras = SimpleNamespace(backend=SimpleNamespace(backend=lambda: "torch"))
    monkeypatch.setitem(sys.modules, "keras", torch_keras)
    monkeypatch.setitem(sys.modules, "tensorflow", SimpleNamespace())
    error = raised_in_tensorflow_code("Can't call numpy() on Tensor that requires grad.")
    assert explanations.explain(error) == (
        f"RuntimeError: Can't call numpy() on Tensor that requires grad.: "
        f"{explanations.TENSORFLOW_ELSEWHERE}"
    )
    monkeypatch.setitem(sys.modules, "keras", SimpleNamespace(backend=torch_keras.backend))
    monkeypatch.delitem(sys.modules, "tensorflow")
    assert (
        explanations.explain(error)
        == "RuntimeError: Can't call numpy() on Tensor that requires grad."
    )


def test_tracing_s_wrapper_gives_way_to_the_recipe_s_own_error():
    staging = type("StagingError", (Exception,), {})
    error = staging('in user code:\n\n    File "x.py", line 1\n        kl()\n\n    Bad: it')
    assert explanations.explain(error) == "Bad: it"


def test_an_unknown_error_is_its_one_line_summary():
    assert explanations.explain(ValueError("no\nmore")) == "ValueError: no"


def test_the_kl_helper_in_its_earlier_form_says_what_changed_and_the_call_to_write():
    mu = log_var = np.zeros((2, 3), np.float32)
    with pytest.raises(objective.SignatureChanged) as raised:
        objective.kl_loss(mu, log_var, 0.3)
    message = str(raised.value)
    assert "takes the Keras module first since 2026-11-28" in message
    assert "call kl_loss(keras, mu, log_var, fact)" in message
    assert isinstance(raised.value, TypeError)  # what a caller catching TypeError still sees


def test_the_reconstruction_helper_without_keras_says_so():
    with pytest.raises(objective.SignatureChanged, match="takes the Keras module first"):
        objective.reconstruction_loss(np.zeros(3), np.zeros(3), np.zeros(3))


def test_a_run_whose_recipe_fails_carries_the_explanation(monkeypatch):
    """The worker's failure path uses the rule: the run's error is verify's sentence."""
    missing = MissingLogKey("kl", "kl_loss", ("loss", "kl"))

    def fails(*args):
        raise missing

    monkeypatch.setattr(training, "build", fails)
    session = SimpleNamespace(
        data=SimpleNamespace(name="synthetic", origin="generated"), read_back=lambda model: {}
    )
    spec = SimpleNamespace(run=SimpleNamespace(recipe="mine", api="keras2", seed=0))
    result, built = training.train_run(session, spec)
    assert built is None
    assert result.error == explanations.explain(missing)
    assert result.error.startswith("metric names: no 'kl_loss' in the logs")
