"""What a backend's module provides a worker (``Backend``), and the two things it hands back.

A backend's module (``bench.measure.backends.<name>_backend``) is a module of plain functions that
satisfies ``Backend`` structurally; ``tests/test_backends.py`` checks every backend of
``vae_impls.backends`` against it. Its facts that the manager reads without importing the backend
(its name, extra, recorded versions, convolution op names) are its row in ``vae_impls.backends``.
"""

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class OpCounts:
    """A train step's ops as a backend counts them: in all, by type, by layer for the types
    the cause finder reads (layer -> op type -> count), and, where a compiler fuses them, the
    instructions its compiled step runs (None: not compiled by a backend that says)."""

    graph_ops: int
    op_counts: dict
    op_scopes: dict
    compiled_ops: int | None = None


@dataclass
class Stepper:
    """One train step per call; ``settle()`` hands the state the steps changed back to the model
    (a backend that threads its state through the steps keeps it outside the model meanwhile)."""

    step: object
    settle: object = lambda: None

    def __call__(self):
        self.step()


class Backend(Protocol):
    """A worker's part that differs by backend. ``runtime`` is the backend's own module (``tf``,
    ``jax``, ``torch``: what ``start`` returns); ``settings`` a ``DeviceSettings``; ``device`` a
    ``bench.measure.device.Device``; ``session`` a ``bench.measure.session.Session``; ``built`` a
    recipe's ``Built``."""

    def environment(self, settings) -> dict:
        """The environment variables the backend reads while it is imported."""

    def compile_cache_environment(self, path: str) -> dict:
        """The environment variables that have the backend keep the steps it compiles in the
        folder ``path`` and load them from there in a later process ({}: nothing to keep)."""

    def start(self, device):
        """Import the backend and apply the [device] settings it takes at run time, before any
        Keras layer; returns the backend's module."""

    def network_jit_compile(self, settings) -> bool:
        """Whether Keras compiles the train step (``compile(jit_compile=...)``) under
        ``settings``."""

    def has_gpu(self, runtime) -> bool:
        """Whether the backend computes on a GPU."""

    def read_back(self, runtime, keras, model, device) -> dict:
        """The device settings in effect for ``model`` (None: none was built), with a note for
        each that could not take effect."""

    def fit_data(self, session, built, seed: int):
        """What a run's ``fit`` trains on: the same batches in the same order for every recipe
        of a round."""

    def fit(self, session, built, seed: int, callbacks: list) -> None:
        """A run's ``fit`` on ``fit_data``, ``epochs`` epochs, with ``callbacks``."""

    def stepper(self, session, built, seed: int) -> Stepper:
        """One train step per call on the batches ``fit`` takes, its result waited for."""

    def count_ops(self, session, built, seed: int) -> OpCounts | None:
        """The train step's ops, for a backend whose ops the trace counter of
        ``bench.measure.instruments`` cannot see (None where it can)."""

    def yardstick(self, session) -> Stepper:
        """The step of the yardstick (``bench.measure.yardstick``) in the backend's own ops."""

    def slow_down(self, runtime, model, milliseconds: float) -> None:
        """The deliberate slowdown inside each train step (``KLBENCH_INJECT_SLOWDOWN``)."""

    def facts(self) -> dict:
        """The backend's version and GPUs, for env.json (the preflight)."""


def members() -> tuple:
    """The names of the functions every backend provides."""
    return tuple(
        name
        for name, value in vars(Backend).items()
        if callable(value) and not name.startswith("_")
    )
