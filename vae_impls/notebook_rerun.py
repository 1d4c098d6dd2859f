"""Post VII's class-free ``model.add_loss()`` notebook, its cells run repeatedly in one kernel.

A reading of the notebook that post VII ("A strange performance problem when no class is used")
describes only in words; ``notebook_globals`` lists the readings. While experimenting, one runs
the model cells several times in the same kernel before calling ``fit``. Here the cells of
``notebook_globals`` (same wiring: decoder applied to the encoder's output tensor) run
``RUNS`` times in one namespace dict and the last build is compiled and trained. Nothing is
reset between runs: the earlier models stay alive until their globals are rebound, and Keras'
process-wide state (Keras 2's global Keras graph and name counters, Keras 3's name counters, the
random generators that initialize weights) carries over, as it does in a kernel.

Names: every weighted layer has a fixed name, and neither Keras version renames explicitly named
layers or their variables on a re-run, so ``network.set_seeded_weights`` (weights keyed by
``layer/variable``) loads exactly the same initial weights as in a fresh kernel. Only
automatically named objects get suffixes: ``model_1``/``functional_1`` for the mean encoder,
``tf.math.square_1`` and the like for Keras 2's wrappers around the KL's TensorFlow ops.

Noise: each run makes a sampling layer whose Keras 3 ``SeedGenerator`` draws its seed from
Python's seeded ``random`` when it is made, so the last build's seed is the third draw, not the
first one that every other recipe's layer gets: its noise, and from the first step its losses,
differed from the other recipes' (0.683771 against 0.683743 at the end of a default run).
``network.set_seeded_weights`` starts every generator from the run's seed and its layer's name,
as it sets the initial weights, so the re-run trains with the same noise as a fresh kernel.

Keras 3: as ``notebook_globals``, the cells raise as written on the first run; the port re-runs
the port cells.
"""

from vae_impls.notebook_globals import built_from, new_kernel, run_cells

RUNS = 3


def _run_repeatedly(keras, net, port):
    """The cells run ``RUNS`` times in one kernel namespace; the last build is the one trained."""
    kernel = new_kernel(keras, net, port=port, wiring="encoder_tensor")
    for _ in range(RUNS):
        run_cells(kernel)
    return built_from(kernel)


def build(keras, net):
    return _run_repeatedly(keras, net, port=False)


def build_keras3_port(keras, net):
    return _run_repeatedly(keras, net, port=True)
