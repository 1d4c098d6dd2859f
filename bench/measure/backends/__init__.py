"""Each Keras backend's part of a worker process: ``of(api)`` is the module for ``api``'s backend.

A worker runs one API group (one Keras package on one backend, ``vae_impls.keras_api``). What
differs by backend lives in one module per backend, each with the same functions:

- ``environment(settings)``: the environment variables the backend reads while it is imported;
- ``start(device)``: import the backend and apply the [device] settings it takes at run time,
  before any Keras layer; returns the backend's module (``tf``, ``jax``, ``torch``);
- ``read_back(runtime, keras, model, device)``: the settings in effect, with a note for each that
  could not take effect;
- ``fit_data(session, built, seed)``: what a run's ``fit`` trains on;
- ``stepper(session, built, seed)``: one train step per call, its result waited for (``Stepper``);
- ``count_ops(session, built, seed)``: the train step's ``OpCounts`` (in all, by type, by layer),
  for backends whose ops the trace counter of ``bench.measure.instruments`` cannot see (None
  where it can);
- ``yardstick(session)``: the step of the yardstick, a fixed computation in the backend's own
  operations that measures the machine (``bench.measure.yardstick``);
- ``slow_down(runtime, model, milliseconds)``: the deliberate slowdown inside each train step;
- ``facts()``: the backend's version and GPUs, for env.json (the preflight).

Only the TensorFlow module imports TensorFlow: a JAX or PyTorch worker runs where TensorFlow is
not installed.
"""

import importlib

from vae_impls import keras_api

MODULES = {"tensorflow": "tf_backend", "jax": "jax_backend", "torch": "torch_backend"}


def of(api: str):
    """The backend module of ``api`` (imported, but it imports its backend only in ``start``)."""
    return importlib.import_module(f"{__name__}.{MODULES[keras_api.backend_of(api)]}")


def named(backend: str):
    """The module of ``backend`` (``tensorflow``, ``jax`` or ``torch``)."""
    return importlib.import_module(f"{__name__}.{MODULES[backend]}")
