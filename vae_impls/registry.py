"""Every recipe, the post it reproduces, and where it runs as written.

Importing this module does not import TensorFlow: listing recipes stays instant. ``build``
imports the recipe module on demand.

API values: ``keras2`` (tf_keras, as the posts wrote the code), ``keras3`` (the same code on
Keras 3) and ``keras3-port`` (a separately written Keras 3 port of a recipe that cannot run on
Keras 3 as written; ``n/a`` for recipes that need none).
"""

import importlib
from dataclasses import dataclass, field

from vae_impls.keras_api import APIS

WORKS, FAILS, NOT_APPLICABLE = "works", "fails", "n/a"


@dataclass(frozen=True)
class Recipe:
    name: str
    post: str
    technique: str
    runs_as_written: frozenset
    has_keras3_port: bool = False
    # api -> text the error summary contains when the recipe fails there as written
    expected_errors: dict = field(default_factory=dict)
    includes_kl: bool = True
    # The recipe whose notebook cells the harness runs in a real Jupyter kernel instead of its
    # worker process ("" for every recipe the worker trains itself).
    kernel_of: str = ""

    @property
    def module(self) -> str:
        return f"vae_impls.{self.name}"


KERAS3_NO_INPUTS_KWARG = "unexpected keyword argument 'inputs'"
KERAS3_NO_SYMBOLIC_TF_OPS = "KerasTensor cannot be used as input to a TensorFlow function"

RECIPES = {
    r.name: r
    for r in (
        Recipe(
            "kl_layer",
            "V",
            "encoder layer add_loss()es the KL and returns its inputs",
            frozenset({"keras2"}),
            has_keras3_port=True,
            expected_errors={"keras3": KERAS3_NO_INPUTS_KWARG},
        ),
        Recipe(
            "tensor_transfer",
            "VI/VII",
            "mu/log_var as extra outputs with Keras loss functions",
            frozenset({"keras2", "keras3"}),
        ),
        Recipe(
            "model_add_loss",
            "VII",
            "model.add_loss() on the functional VAE, built in a class",
            frozenset({"keras2"}),
            has_keras3_port=True,
            expected_errors={"keras3": KERAS3_NO_SYMBOLIC_TF_OPS},
        ),
        Recipe(
            "notebook_globals",
            "VII",
            "model.add_loss() with notebook-level globals, no class",
            frozenset({"keras2"}),
            has_keras3_port=True,
            expected_errors={"keras3": KERAS3_NO_SYMBOLIC_TF_OPS},
        ),
        Recipe(
            "notebook_encoder_call",
            "VII",
            "the same notebook, VAE wired as decoder(encoder(x))",
            frozenset({"keras2"}),
            has_keras3_port=True,
            expected_errors={"keras3": KERAS3_NO_SYMBOLIC_TF_OPS},
        ),
        Recipe(
            "notebook_rerun",
            "VII",
            "the same notebook, cells re-run in one kernel before fit",
            frozenset({"keras2"}),
            has_keras3_port=True,
            expected_errors={"keras3": KERAS3_NO_SYMBOLIC_TF_OPS},
        ),
        Recipe(
            "notebook_numpy_fit",
            "VII",
            "the same notebook, fit on numpy arrays as the post calls it",
            frozenset({"keras2"}),
            has_keras3_port=True,
            expected_errors={"keras3": KERAS3_NO_SYMBOLIC_TF_OPS},
        ),
        Recipe(
            "notebook_kernel",
            "VII",
            "the numpy-fit notebook run in a real Jupyter kernel",
            frozenset({"keras2"}),
            has_keras3_port=True,
            expected_errors={"keras3": KERAS3_NO_SYMBOLIC_TF_OPS},
            kernel_of="notebook_numpy_fit",
        ),
        Recipe(
            "vae_loss_layer",
            "III/IV",
            "loss layer after the decoder, compile(loss=None)",
            frozenset({"keras2"}),
            has_keras3_port=True,
            expected_errors={"keras3": KERAS3_NO_INPUTS_KWARG},
        ),
        Recipe(
            "gradient_tape",
            "VIII",
            "custom train_step with tf.GradientTape",
            frozenset({"keras2", "keras3"}),
        ),
        Recipe(
            "closure_loss",
            "III",
            "loss function closing over symbolic mu/log_var",
            frozenset(),
            expected_errors={"keras2": "KerasTensor", "keras3": KERAS3_NO_SYMBOLIC_TF_OPS},
        ),
        Recipe(
            "plain_ae",
            "II",
            "the same network with z = mu and BCE only: the floor",
            frozenset({"keras2", "keras3"}),
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
    """``works``, ``fails`` (raises as written) or ``n/a`` (no port needed or written)."""
    recipe = get(name)
    if api == "keras3-port":
        return WORKS if recipe.has_keras3_port else NOT_APPLICABLE
    if api not in APIS:
        raise ValueError(f"unknown API {api!r}; valid APIs: {', '.join(APIS)}")
    return WORKS if api in recipe.runs_as_written else FAILS


def build(name: str, api: str, keras, net):
    """Build recipe ``name`` for ``api`` with the already imported ``keras`` package.

    Returns a ``vae_impls.common.Built``. A recipe that cannot run as written raises here or on
    its first training step, with the error the Keras version gives.
    """
    if status(name, api) == NOT_APPLICABLE:
        raise ValueError(f"recipe {name!r} has no {api} variant")
    module = importlib.import_module(get(name).module)
    if api == "keras3-port":
        return module.build_keras3_port(keras, net)
    return module.build(keras, net)
