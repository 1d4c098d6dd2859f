"""Time one training step of every recipe that runs, already built and traced.

``benchmark.pedantic`` calls the model's own train function on a prepared batch iterator (no
data conversion in the timed call) and waits for the result, after warm-up rounds that trace.
"""

import numpy as np
import pytest

from tests.benchmarks.conftest import APIS, PACKAGE_API
from vae_impls import keras_api, network, registry

BATCH_SIZE = 128
NET = network.NetworkSpec()
COMBINATIONS = [
    (recipe, api)
    for api in APIS
    for recipe in registry.RECIPES
    if registry.status(recipe, api) == registry.WORKS
]


@pytest.fixture(scope="module")
def keras():
    return keras_api.load(PACKAGE_API)


def traced_step(keras, recipe, api):
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    built = registry.build(recipe, api, keras, NET)
    network.set_seeded_weights(built.model, NET, seed=0)
    images = np.random.default_rng(0).random((BATCH_SIZE, *NET.input_shape), np.float32)
    targets = built.fit_targets(images)
    batch = (images,) if targets is None else (images, targets)
    iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())
    built.model.make_train_function()

    def step():
        logs = built.model.train_function(iterator)
        return float(next(iter(logs.values())))

    return step


@pytest.mark.slow
@pytest.mark.parametrize(
    "recipe,api", COMBINATIONS, ids=[f"{api}-{recipe}" for recipe, api in COMBINATIONS]
)
def test_train_step(benchmark, keras, recipe, api):
    benchmark.group = api
    benchmark.extra_info.update({"recipe": recipe, "api": api, "batch_size": BATCH_SIZE})
    loss = benchmark.pedantic(
        traced_step(keras, recipe, api), rounds=20, iterations=1, warmup_rounds=3
    )
    assert np.isfinite(loss)
