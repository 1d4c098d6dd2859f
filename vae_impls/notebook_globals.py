"""``model.add_loss()`` with the VAE built from notebook-level globals (post VII, last section).

Post VII ("A strange performance problem when no class is used") reports that the same
``model.add_loss()`` technique ran 1.3-1.5x slower when the encoder, decoder, VAE and the
``mu``/``log_var`` tensors were plain Jupyter variables instead of attributes of the VAE class,
and leaves the cause open. The post describes this notebook only in words; its cells are in
``notebook_globals_cells.py`` and ``run_cells`` executes them in one namespace dict, the way a
kernel runs cells: every name they make is a global of that namespace.

Fixed for every reading: the same shared network, built cell by cell at the top level with no
function or class around it; the KL from the post's ``get_kl_loss(mu, log_var)``, defined in a
cell and called with the global tensors as arguments (the post's rule for ``add_loss``), then
``vae.add_loss(kl)`` and ``vae.add_metric(kl, name="kl")``; ``compile(loss="binary_crossentropy")``.

Construction choices the text leaves open, and which variant or harness setting covers each:
- Wiring. ``decoder`` applied to the encoder's output tensor, as the class of post VII does:
  this recipe. ``decoder(encoder(encoder_input))``, the encoder model called on the input as in
  post IV and many notebooks: ``notebook_encoder_call``.
- Data. The tf.data pipeline every recipe gets here: this recipe. ``vae.fit(x_train, x_train,
  batch_size=128, shuffle=True)`` on numpy arrays, as the post shows: ``notebook_numpy_fit``.
- Batch size. 128, as in the post's cell, vs the 256 of its class timings: a setting of the run
  ([training] batch_size), the same for every recipe of a benchmark.
- Kernel state. A fresh kernel ("restart and run all"): this recipe, whose ``build`` runs the
  cells once in a new namespace. Cells run several times in one kernel before ``fit``, keeping
  Keras' global state: ``notebook_rerun``.
- Where it runs. The harness' worker process: every recipe but one. A real Jupyter kernel
  (``notebook_numpy_fit`` run as notebook cells in an IPython kernel): ``notebook_kernel``.

On Keras 3 symbolic ``Model.add_loss`` is gone (it raises ``NotImplementedError`` on every
backend), so the cells raise as written; the port cells, the same on every backend, hand the
global encoder and decoder to the model-level ``add_loss`` model that ``model_add_loss``'s Keras 3
port uses.
"""

import builtins
import contextlib
import importlib.util

from vae_impls.common import Built

CELLS = "vae_impls.notebook_globals_cells"

_real_kernel = None  # the namespace of a real kernel while ``cells_run_in`` holds it


@contextlib.contextmanager
def cells_run_in(namespace: dict):
    """While open, every reading's ``build`` runs the cells in ``namespace`` instead of a new
    dict: a Jupyter kernel's globals, which then hold ``encoder``, ``mu``, ``vae``... as the
    post's notebook does. The harness' notebook (``bench/measure/notebook_kernel.ipynb``) builds
    its reading so, through the registry, exactly as a worker builds it."""
    global _real_kernel
    previous, _real_kernel = _real_kernel, namespace
    try:
        yield namespace
    finally:
        _real_kernel = previous


def new_kernel(keras, net, port: bool, wiring: str) -> dict:
    """A kernel namespace holding what the cells expect to find already defined: a new one, or
    the real kernel's that ``cells_run_in`` holds."""
    kernel = {} if _real_kernel is None else _real_kernel
    kernel.setdefault("__name__", "__main__")
    kernel.setdefault("__builtins__", builtins)
    kernel.update(keras=keras, net=net, port=port, wiring=wiring)
    return kernel


def run_cells(kernel: dict) -> dict:
    """Run every cell once in ``kernel``, mutating it as a kernel's namespace; returns it."""
    exec(importlib.util.find_spec(CELLS).loader.get_code(CELLS), kernel)
    return kernel


def built_from(kernel: dict) -> Built:
    """What the harness trains, read from the globals the cells made."""
    return Built(
        model=kernel["vae"], mean_encoder=kernel["mean_encoder"], decoder=kernel["decoder"]
    )


def build(keras, net):
    return built_from(run_cells(new_kernel(keras, net, port=False, wiring="encoder_tensor")))


def build_keras3_port(keras, net):
    return built_from(run_cells(new_kernel(keras, net, port=True, wiring="encoder_tensor")))
