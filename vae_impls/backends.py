"""The Keras backends kl-bench runs on: one row of facts per backend, importable without one.

A backend's row is everything the manager, the results and the APIs know of it without importing
it: its name (``KERAS_BACKEND``, and the Python package that must be importable), how tables
label it, the pip extra that installs it, the packages whose versions a results folder records,
and the names its traced train step gives a convolution. What runs inside a worker (start-up,
device settings, the stepper, the op count, the GPU check) is the backend's module of
``bench.measure.backends``, named ``<name>_backend``, which provides what
``bench.measure.backends.interface`` declares.

The rows live here, beside the APIs (``vae_impls.keras_api``) that are derived from them, because
both the recipes and every part of the harness read them, and ``vae_impls`` imports no ``bench``.
Adding a backend is a row here, its module there and its extra in pyproject.toml.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Backend:
    """What is known of a backend without importing it."""

    name: str  # KERAS_BACKEND's value and the package that must be importable
    label: str  # how API labels name it ("Keras 3 JAX port"); "" for Keras 3's default
    extra: str = ""  # the pip extra that installs it ("" = the default install)
    versioned: tuple = ()  # the packages whose versions a results folder records
    # Its traced train step's names for a convolution or a convolution's gradient.
    convolution_ops: tuple = ()


# Keras 3's default backend first: its APIs carry no suffix (``keras3``), and Keras 2 runs on it.
BACKENDS = (
    Backend(
        name="tensorflow",
        label="",
        versioned=("tensorflow",),
        # TensorFlow's graph ops.
        convolution_ops=("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"),
    ),
    Backend(
        name="jax",
        label="JAX",
        versioned=("jax", "jaxlib"),
        # StableHLO, before XLA's optimizations.
        convolution_ops=("stablehlo.convolution",),
    ),
    Backend(
        name="torch",
        label="PyTorch",
        extra="torch",
        versioned=("torch",),
        # ATen operators; one convolution_backward computes both gradients of a layer.
        convolution_ops=("convolution", "convolution_backward"),
    ),
)
DEFAULT = BACKENDS[0]
NAMES = tuple(backend.name for backend in BACKENDS)


def of(name: str) -> Backend:
    """The row of the backend ``name``; a ValueError naming the known ones for any other."""
    for backend in BACKENDS:
        if backend.name == name:
            return backend
    raise ValueError(f"unknown backend {name!r}; known backends: {', '.join(NAMES)}")


def versioned() -> tuple:
    """Every backend's recorded packages, in the rows' order."""
    return tuple(package for backend in BACKENDS for package in backend.versioned)


def convolution_ops() -> tuple:
    """Every backend's convolution op names, in the rows' order (they never collide)."""
    return tuple(op for backend in BACKENDS for op in backend.convolution_ops)
