"""Each Keras backend's part of a worker process: ``of(api)`` is the module for ``api``'s backend.

A worker runs one API group (one Keras package on one backend, ``vae_impls.keras_api``). What
differs by backend lives in one module per backend, ``<name>_backend`` for each row of
``vae_impls.backends``, each providing the functions of ``interface.Backend``. Only the TensorFlow
module imports TensorFlow: a JAX or PyTorch worker runs where TensorFlow is not installed.
"""

import importlib

from vae_impls import backends, keras_api


def module_name(backend: str) -> str:
    """The module of ``backend``'s row (``vae_impls.backends``): ``<name>_backend`` here."""
    return f"{__name__}.{backends.of(backend).name}_backend"


def of(api: str):
    """The backend module of ``api`` (imported, but it imports its backend only in ``start``)."""
    return named(keras_api.backend_of(api))


def named(backend: str):
    """The module of ``backend`` (a name of ``vae_impls.backends``)."""
    return importlib.import_module(module_name(backend))
