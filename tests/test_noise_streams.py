"""Every recipe of a round trains with the same sampling noise on Keras 3, however many seed
generators its build made before its own: ``notebook_rerun``'s cells, run three times, make three
sampling layers, and its losses agree with a single build's again (they differed by 3e-5)."""

import json
import subprocess
import sys

import pytest

from bench.processes import worker_environment
from tests.builders import ROOT

# Two Adam steps of each recipe with its sampling layer's own noise (not fixed), in a Keras 3
# process: the losses of each step, and the sampling layer's generator state.
SCRIPT = """
import json, sys
import numpy as np
from vae_impls import keras_api, network, registry
from vae_impls.network_spec import NetworkSpec

keras = keras_api.load("keras3-port")
net = NetworkSpec(z_dim=3, fact=0.3)
x = np.random.default_rng(1).uniform(0, 1, (32, 28, 28, 1)).astype("float32")
found = {}
for name in sys.argv[1:]:
    keras.utils.set_random_seed(0)
    built = registry.build(name, "keras3-port", keras, net)
    network.set_seeded_weights(built.model, net, 3)
    history = built.model.fit(x, built.fit_targets(x), batch_size=16, epochs=1, verbose=0)
    found[name] = float(history.history["loss"][-1])
print(json.dumps(found))
"""


@pytest.mark.slow
def test_a_recipe_whose_build_made_more_generators_trains_with_the_same_noise():
    recipes = ("model_add_loss", "notebook_globals", "notebook_rerun")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *recipes],
        cwd=ROOT,
        env=worker_environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    losses = json.loads(done.stdout.strip().splitlines()[-1])
    reference = losses["model_add_loss"]
    for name in recipes:
        assert losses[name] == pytest.approx(reference, rel=1e-6), losses
