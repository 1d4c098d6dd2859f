"""``model.add_loss()`` with the VAE built from notebook-level globals (post VII, last section).

Post VII reports that the same ``model.add_loss()`` technique ran 1.3-1.5x slower when the
encoder, decoder, VAE and the ``mu``/``log_var`` tensors were plain Jupyter variables instead of
attributes of the VAE class, and leaves the cause open. The post describes this variant only in
words; the cells are in ``notebook_globals_cells.py`` and ``build`` runs them with ``runpy`` in a
fresh namespace, the way a kernel runs cells: every name they make is a global of that namespace.

Construction choices the text leaves open, and the ones taken:
- Layers: the same shared network as every recipe, built cell by cell at the top level; no
  function or class wraps the construction.
- KL term: the post's ``get_kl_loss(mu, log_var)`` function, defined in a cell and called with
  the global tensors as arguments (the post's rule for ``add_loss``), then
  ``vae.add_loss(kl)`` and ``vae.add_metric(kl, name="kl")``.
- Wiring: ``decoder`` is applied to the encoder's output tensor, as in the class version.
- Data: the post calls ``vae.fit(x_train, x_train, shuffle=True)`` on numpy arrays; here the
  harness feeds the same input pipeline as every recipe, so data handling cannot differ.
- Re-running: each ``build`` runs the cells again in a new namespace ("restart and run all").

On Keras 3 the symbolic KL computation and ``Model.add_loss`` are gone, so the cells raise as
written; the port cells hand the global encoder and decoder to the same model-level ``add_loss`` model
that ``model_add_loss``'s Keras 3 port uses.
"""
import runpy

from vae_impls.common import Built

CELLS = "vae_impls.notebook_globals_cells"


def _run_cells(keras, net, port):
    kernel = runpy.run_module(CELLS, init_globals={"keras": keras, "net": net, "port": port})
    return Built(model=kernel["vae"], mean_encoder=kernel["mean_encoder"], decoder=kernel["decoder"])


def build(keras, net):
    return _run_cells(keras, net, port=False)


def build_keras3_port(keras, net):
    return _run_cells(keras, net, port=True)
