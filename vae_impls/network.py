"""The posts' convolutional VAE, defined once for every recipe, Keras API and backend.

``NetworkSpec`` (defined in ``vae_impls.network_spec``, which needs no Keras) carries every
parameter of the posts' ``MyVariationalAutoencoder`` class.
The builders below create layers with fixed names, so that a weight is called the same in every
recipe and ``set_seeded_weights`` can give all recipes, under every API, identical initial
weights drawn with numpy. Importing this module imports no backend: TensorFlow is imported only
for Keras 2's sampling layer.
"""

import hashlib

import numpy as np

from vae_impls.common import is_keras2
from vae_impls.network_spec import (
    NetworkSpec,  # recipes construct it as network.NetworkSpec
)

SAMPLING_LAYER = "z_sampling"  # the name of every recipe's sampling layer: verify looks for it
SEEDED_VARIABLES = ("kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance")


def make_optimizer(keras, net: NetworkSpec):
    if net.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=net.learning_rate)
    return keras.optimizers.Adam(learning_rate=net.learning_rate)


def compile_options(keras, net: NetworkSpec) -> dict:
    """Optimizer and XLA switch, identical for every recipe's ``compile()``."""
    return {"optimizer": make_optimizer(keras, net), "jit_compile": net.jit_compile}


def _activation(keras, net, name):
    if net.activation == "leaky_relu":
        return keras.layers.LeakyReLU(name=name)
    if net.activation == "relu":
        return keras.layers.ReLU(name=name)
    return keras.layers.Activation("selu", name=name)


def _regularize(keras, net, x, prefix, i):
    """BatchNormalization before the activation, dropout after it, as in the posts."""
    if net.batch_norm:
        x = keras.layers.BatchNormalization(name=f"{prefix}_bn_{i}")(x)
    x = _activation(keras, net, f"{prefix}_act_{i}")(x)
    if net.dropout:
        dropout = keras.layers.AlphaDropout if net.activation == "selu" else keras.layers.Dropout
        x = dropout(0.25, name=f"{prefix}_dropout_{i}")(x)
    return x


def _kernel_initializer(net):
    # SELU self-normalizes only with LeCun-normal weights.
    return "lecun_normal" if net.activation == "selu" else "glorot_uniform"


def encoder_body(keras, net: NetworkSpec, x):
    """Conv2D stack, flatten, and the two Dense heads: returns (mu, log_var)."""
    layers = keras.layers
    specs = zip(net.encoder_filters, net.encoder_kernel_sizes, net.encoder_strides)
    for i, (filters, kernel, stride) in enumerate(specs):
        x = layers.Conv2D(
            filters,
            kernel,
            strides=stride,
            padding="same",
            name=f"encoder_conv_{i}",
            kernel_initializer=_kernel_initializer(net),
        )(x)
        x = _regularize(keras, net, x, "encoder", i)
    x = layers.Flatten(name="encoder_flatten")(x)
    mu = layers.Dense(net.z_dim, name="mu")(x)
    log_var = layers.Dense(net.z_dim, name="log_var")(x)
    return mu, log_var


def shape_before_flattening(net: NetworkSpec) -> tuple:
    height, width = net.input_shape[:2]
    for stride in net.encoder_strides:
        height, width = -(-height // stride), -(-width // stride)
    return height, width, net.encoder_filters[-1]


def decoder_body(keras, net: NetworkSpec, z):
    """Dense, reshape, Conv2DTranspose stack, sigmoid output."""
    layers = keras.layers
    shape = shape_before_flattening(net)
    x = layers.Dense(int(np.prod(shape)), name="decoder_dense")(z)
    x = layers.Reshape(shape, name="decoder_reshape")(x)
    specs = list(zip(net.decoder_filters, net.decoder_kernel_sizes, net.decoder_strides))
    for i, (filters, kernel, stride) in enumerate(specs):
        x = layers.Conv2DTranspose(
            filters,
            kernel,
            strides=stride,
            padding="same",
            name=f"decoder_conv_t_{i}",
            kernel_initializer=_kernel_initializer(net),
        )(x)
        if i < len(specs) - 1:
            x = _regularize(keras, net, x, "decoder", i)
    return layers.Activation("sigmoid", name="decoder_output")(x)


def encoder_input(keras, net: NetworkSpec):
    return keras.Input(shape=net.input_shape, name="encoder_input")


def decoder_model(keras, net: NetworkSpec):
    z = keras.Input(shape=(net.z_dim,), name="decoder_input")
    return keras.Model(z, decoder_body(keras, net, z), name="decoder")


def sampling_layer(keras, net: NetworkSpec):
    """z = mu + exp(log_var / 2) * epsilon, with epsilon fixed when the spec says so."""
    if is_keras2(keras):
        return _keras2_sampling(keras, net)(name=SAMPLING_LAYER)
    return _keras3_sampling(keras, net)(name=SAMPLING_LAYER)


def _keras2_sampling(keras, net):
    import tensorflow as tf

    class Sampling(keras.layers.Layer):
        def call(self, inputs):
            mu, log_var = inputs
            if net.sampling_noise is None:
                epsilon = tf.random.normal(tf.shape(mu))
            else:
                epsilon = tf.broadcast_to(tf.constant(net.sampling_noise, mu.dtype), tf.shape(mu))
            return mu + tf.exp(log_var / 2) * epsilon

    return Sampling


def _keras3_sampling(keras, net):
    ops = keras.ops

    class Sampling(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            # A layer-owned generator is state the model carries: JAX's traced step takes and
            # returns it. Without a seed it draws one from Python's ``random``, which
            # ``keras.utils.set_random_seed`` seeds before a recipe is built.
            self.seed_generator = keras.random.SeedGenerator()

        def call(self, inputs):
            mu, log_var = inputs
            if net.sampling_noise is None:
                epsilon = keras.random.normal(ops.shape(mu), seed=self.seed_generator)
            else:
                noise = ops.convert_to_tensor(net.sampling_noise, dtype=self.compute_dtype)
                epsilon = ops.broadcast_to(noise, ops.shape(mu))
            return mu + ops.exp(log_var / 2) * epsilon

    return Sampling


def weight_key(variable) -> str:
    """``layer/variable`` under both APIs (Keras 2 names end in ``:0``; Keras 3 has ``.path``)."""
    name = getattr(variable, "path", None) or variable.name
    return "/".join(name.split(":")[0].split("/")[-2:])


def _fans(shape):
    receptive_field = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def _seeded_value(key, shape, net, seed):
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    rng = np.random.default_rng([seed, digest])
    variable = key.split("/")[-1]
    if variable not in SEEDED_VARIABLES:
        return None
    if variable in ("bias", "beta", "moving_mean"):
        return np.zeros(shape, np.float32)
    if variable in ("gamma", "moving_variance"):
        return np.ones(shape, np.float32)
    fan_in, fan_out = _fans(shape)
    if net.activation == "selu" and "conv" in key:
        # Keras' lecun_normal: a normal truncated at 2 sigma, rescaled to keep variance 1/fan_in.
        values = rng.standard_normal(shape)
        while (outside := np.abs(values) > 2).any():
            values[outside] = rng.standard_normal(int(outside.sum()))
        return (values * np.sqrt(1.0 / fan_in) / 0.87962566103423978).astype(np.float32)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape).astype(np.float32)


def _network_weights(model) -> dict:
    """Layer weights by key; RNG state variables (Keras 3 dropout, optimizers) are left alone."""
    weights = {}
    for variable in model.weights:
        key = weight_key(variable)
        if key.split("/")[-1] in SEEDED_VARIABLES:
            if key in weights and weights[key] is not variable:
                raise ValueError(
                    f"two weights are called {key!r}; every weighted layer needs a fixed name"
                )
            weights[key] = variable
    return weights


def seeded_weights(model, net: NetworkSpec, seed: int) -> dict:
    """Initial weights keyed by ``weight_key``: the same arrays for every recipe and API."""
    return {
        key: _seeded_value(key, tuple(v.shape), net, seed)
        for key, v in _network_weights(model).items()
    }


def get_weights(model) -> dict:
    # np.array reads a TensorFlow variable and a Keras 3 variable on any backend alike.
    return {key: np.array(v) for key, v in _network_weights(model).items()}


def assign_weights(model, values: dict) -> None:
    for key, variable in _network_weights(model).items():
        variable.assign(values[key])


def set_seeded_weights(model, net: NetworkSpec, seed: int) -> None:
    """Initial weights and noise streams drawn from ``seed`` alone: the same for every recipe of
    a round, however many models its build made before (``seed_noise``)."""
    assign_weights(model, seeded_weights(model, net, seed))
    seed_noise(model, seed)


def seed_noise(model, seed: int) -> None:
    """Start each Keras 3 seed generator of ``model``'s layers (the sampling layer's, dropout's)
    from ``seed`` and its layer's name, instead of the seed it drew at construction.

    An unseeded ``SeedGenerator`` draws its seed from Python's ``random`` when it is made, so the
    noise a recipe trains with would depend on how many generators were made before its own:
    ``notebook_rerun``'s cells make three sampling layers, and the last one's noise differed from
    every other recipe's. Keras 2 draws its noise from op seeds that do not depend on that; it
    has no such generators and is left as it is.
    """
    for key, generator in _seed_generators(model).items():
        digest = int.from_bytes(hashlib.sha256(f"noise/{key}".encode()).digest()[:8], "little")
        start = int(np.random.default_rng([seed, digest]).integers(1, 10**9))
        state = generator.state
        state.assign(np.array([start, 0], dtype=str(state.dtype).split(".")[-1]))


def sampling_draws(keras, model) -> int | None:
    """How many times ``model``'s sampling layer has drawn noise: on Keras 3 each draw advances
    its seed generator's counter by one (``SeedGenerator.next``), so two calls of the encoder in
    one train step advance it by two. None where there is no such counter: Keras 2 draws from
    op seeds, and a model without a layer named ``SAMPLING_LAYER`` draws elsewhere."""
    counters = [
        int(keras.ops.convert_to_numpy(generator.state.value)[1])
        for key, generator in _seed_generators(model).items()
        if key.rsplit("/", 1)[0] == SAMPLING_LAYER
    ]
    return sum(counters) if counters else None


def _seed_generators(model) -> dict:
    """Keras 3 seed generators of ``model`` and its nested layers, keyed by layer name."""
    found = {}
    for layer in model._flatten_layers(include_self=True, recursive=True):
        for index, generator in enumerate(getattr(layer, "_seed_generators", ())):
            found[f"{layer.name}/{index}"] = generator
    return found
