"""Every recipe, the post it reproduces, and where it runs as written or as a port.

Importing this module imports no Keras and no backend: listing recipes stays instant. ``build``
imports the recipe module on demand.

APIs (``vae_impls.keras_api``): ``keras2`` (tf_keras on TensorFlow, the code as the posts wrote
it); ``keras3``, ``keras3-jax`` and ``keras3-torch`` (the same code on Keras 3 with TensorFlow,
JAX or PyTorch); and beside each of these three a port API (``keras3-port``,
``keras3-jax-port``, ``keras3-torch-port``): a separately written Keras 3 port of a recipe that
cannot run as written there, ``n/a`` for recipes that have none.
"""

import importlib
from dataclasses import dataclass, field

from vae_impls.keras_api import APIS, backend_of, is_port, package_for

WORKS, FAILS, NOT_APPLICABLE = "works", "fails", "n/a"
KERAS3_PORTS = frozenset(api for api in APIS if is_port(api))


@dataclass(frozen=True)
class Recipe:
    name: str
    post: str
    technique: str
    # The as-written APIs it trains on; on the others it fails (or is n/a: needs_tensorflow).
    runs_as_written: frozenset
    # The port APIs where its ``build_keras3_port`` runs; n/a on the other port APIs.
    ports: frozenset = frozenset()
    # api -> text the error summary contains when the recipe fails there as written
    expected_errors: dict = field(default_factory=dict)
    includes_kl: bool = True
    # The recipe whose notebook cells the harness runs in a real Jupyter kernel instead of its
    # worker process ("" for every recipe the worker trains itself).
    kernel_of: str = ""
    # Its as-written code is TensorFlow code (tf.GradientTape, tf.function): n/a where Keras
    # computes with JAX or PyTorch, whose processes never import TensorFlow.
    needs_tensorflow: bool = False

    @property
    def module(self) -> str:
        return f"vae_impls.{self.name}"

    def status(self, api: str) -> str:
        """``works``, ``fails`` (raises as written) or ``n/a`` (no such variant)."""
        if api not in APIS:
            raise ValueError(f"unknown API {api!r}; valid APIs: {', '.join(APIS)}")
        if is_port(api):
            return WORKS if api in self.ports else NOT_APPLICABLE
        if api in self.runs_as_written:
            return WORKS
        if self.needs_tensorflow and backend_of(api) != "tensorflow":
            return NOT_APPLICABLE
        return FAILS


# The errors of recipes that fail as written on Keras 3, each the same on every backend unless
# keyed by one: a stable part of the error's one-line summary (``bench.errors``).
KERAS3_NO_INPUTS_KWARG = "unexpected keyword argument 'inputs'"
KERAS3_NO_SYMBOLIC_MODEL_ADD_LOSS = "NotImplementedError: (no message) in add_loss()"
KERNEL_NO_SYMBOLIC_MODEL_ADD_LOSS = "NotImplementedError: (no message)"
KERAS3_NO_SYMBOLIC_OPS = {
    "keras3": "KerasTensor cannot be used as input to a TensorFlow function",
    "keras3-jax": "KerasTensor cannot be used as input to a JAX function",
    "keras3-torch": "KerasTensor is symbolic",
}
KERAS3_WRITTEN = tuple(api for api in APIS if package_for(api) == "keras" and not is_port(api))


def on_keras3(error: str) -> dict:
    """``expected_errors`` of a recipe that fails as written with ``error`` on every backend."""
    return dict.fromkeys(KERAS3_WRITTEN, error)


RECIPES = {
    r.name: r
    for r in (
        Recipe(
            "kl_layer",
            "V",
            "encoder layer add_loss()es the KL and returns its inputs",
            frozenset({"keras2"}),
            ports=KERAS3_PORTS,
            expected_errors=on_keras3(KERAS3_NO_INPUTS_KWARG),
        ),
        Recipe(
            "tensor_transfer",
            "VI/VII",
            "mu/log_var as extra outputs with Keras loss functions",
            frozenset({"keras2", "keras3"}),
            ports=frozenset({"keras3-jax-port", "keras3-torch-port"}),
            needs_tensorflow=True,
        ),
        Recipe(
            "model_add_loss",
            "VII",
            "model.add_loss() on the functional VAE, built in a class",
            frozenset({"keras2"}),
            ports=KERAS3_PORTS,
            expected_errors=on_keras3(KERAS3_NO_SYMBOLIC_MODEL_ADD_LOSS),
        ),
        Recipe(
            "notebook_globals",
            "VII",
            "model.add_loss() with notebook-level globals, no class",
            frozenset({"keras2"}),
            ports=KERAS3_PORTS,
            expected_errors=on_keras3(KERAS3_NO_SYMBOLIC_MODEL_ADD_LOSS),
        ),
        Recipe(
            "notebook_encoder_call",
            "VII",
            "the same notebook, VAE wired as decoder(encoder(x))",
            frozenset({"keras2"}),
            ports=KERAS3_PORTS,
            expected_errors=on_keras3(KERAS3_NO_SYMBOLIC_MODEL_ADD_LOSS),
        ),
        Recipe(
            "notebook_rerun",
            "VII",
            "the same notebook, cells re-run in one kernel before fit",
            frozenset({"keras2"}),
            ports=KERAS3_PORTS,
            expected_errors=on_keras3(KERAS3_NO_SYMBOLIC_MODEL_ADD_LOSS),
        ),
        Recipe(
            "notebook_numpy_fit",
            "VII",
            "the same notebook, fit on numpy arrays as the post calls it",
            frozenset({"keras2"}),
            ports=KERAS3_PORTS,
            expected_errors=on_keras3(KERAS3_NO_SYMBOLIC_MODEL_ADD_LOSS),
        ),
        Recipe(
            "notebook_kernel",
            "VII",
            "the numpy-fit notebook run in a real Jupyter kernel",
            frozenset({"keras2"}),
            ports=KERAS3_PORTS,
            # A cell's error reaches the harness without the frame it was raised in.
            expected_errors=on_keras3(KERNEL_NO_SYMBOLIC_MODEL_ADD_LOSS),
            kernel_of="notebook_numpy_fit",
        ),
        Recipe(
            "vae_loss_layer",
            "III/IV",
            "loss layer after the decoder, compile(loss=None)",
            frozenset({"keras2"}),
            ports=KERAS3_PORTS,
            expected_errors=on_keras3(KERAS3_NO_INPUTS_KWARG),
        ),
        Recipe(
            "gradient_tape",
            "VIII",
            "custom train_step with tf.GradientTape",
            frozenset({"keras2", "keras3"}),
            ports=frozenset({"keras3-jax-port", "keras3-torch-port"}),
            needs_tensorflow=True,
        ),
        Recipe(
            "closure_loss",
            "III",
            "loss function closing over symbolic mu/log_var",
            frozenset(),
            expected_errors={"keras2": "KerasTensor", **KERAS3_NO_SYMBOLIC_OPS},
        ),
        Recipe(
            "plain_ae",
            "II",
            "the same network with z = mu and BCE only: the floor",
            frozenset({"keras2", *KERAS3_WRITTEN}),  # every backend's, a new one's too
            includes_kl=False,
        ),
    )
}

FLOOR = "plain_ae"


class UnknownRecipe(Exception):
    pass


def get(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise UnknownRecipe(
            f"unknown recipe {name!r}; valid recipes: {', '.join(RECIPES)}"
        ) from None


def status(name: str, api: str) -> str:
    """``works``, ``fails`` (raises as written) or ``n/a`` (no such variant)."""
    return get(name).status(api)


def build(name: str, api: str, keras, net):
    """Build recipe ``name`` for ``api`` with the already imported ``keras`` package.

    Returns a ``vae_impls.common.Built``. A recipe that cannot run as written raises here or on
    its first training step, with the error the Keras version and backend give.
    """
    if status(name, api) == NOT_APPLICABLE:
        raise ValueError(f"recipe {name!r} has no {api} variant")
    module = importlib.import_module(get(name).module)
    return module.build_keras3_port(keras, net) if is_port(api) else module.build(keras, net)
