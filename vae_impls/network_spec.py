"""``NetworkSpec``: every parameter of the posts' ``MyVariationalAutoencoder`` class, validated.

It lives apart from ``vae_impls.network`` because that module imports TensorFlow: the benchmark
manager, which never does, constructs a spec to check a config's [network] table. This module
imports nothing but the standard library.
"""

import math
from dataclasses import dataclass

ACTIVATIONS = ("leaky_relu", "relu", "selu")
OPTIMIZERS = ("adam", "sgd")
LAYER_TUPLES = (
    "encoder_kernel_sizes",
    "encoder_strides",
    "decoder_kernel_sizes",
    "decoder_strides",
)


@dataclass(frozen=True)
class NetworkSpec:
    input_shape: tuple = (28, 28, 1)
    encoder_filters: tuple = (32, 64, 128)
    encoder_kernel_sizes: tuple = (3, 3, 3)
    encoder_strides: tuple = (1, 2, 2)
    decoder_filters: tuple = (64, 32, 1)
    decoder_kernel_sizes: tuple = (3, 3, 3)
    decoder_strides: tuple = (2, 2, 1)
    z_dim: int = 2
    activation: str = "leaky_relu"
    batch_norm: bool = False
    dropout: bool = False
    fact: float = 6.5e-4
    learning_rate: float = 5e-4
    optimizer: str = "adam"
    jit_compile: bool = False
    # Fixed sampling noise (one value per latent dimension) makes a step deterministic for tests.
    sampling_noise: tuple | None = None

    def __post_init__(self):
        for name in LAYER_TUPLES:
            value = getattr(self, name)
            n_layers = len(
                self.encoder_filters if name.startswith("encoder") else self.decoder_filters
            )
            if isinstance(value, int):
                object.__setattr__(self, name, (value,) * n_layers)
            elif len(value) != n_layers:
                raise ValueError(f"{name} has {len(value)} entries but there are {n_layers} layers")
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {self.activation!r}; valid: {', '.join(ACTIVATIONS)}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"unknown optimizer {self.optimizer!r}; valid: {', '.join(OPTIMIZERS)}"
            )
        if self.z_dim < 1:
            raise ValueError(f"z_dim must be positive, got {self.z_dim}")
        if self.decoder_filters[-1] != self.input_shape[-1]:
            raise ValueError("the last decoder filter count must equal the image channels")
        self._check_output_size()
        if self.sampling_noise is not None and len(self.sampling_noise) != self.z_dim:
            raise ValueError(
                f"sampling_noise needs {self.z_dim} values, got {len(self.sampling_noise)}"
            )

    def _check_output_size(self):
        # The decoder must give back images of the input's size, or no recipe's loss can compare
        # them.
        height, width = self.input_shape[:2]
        output = tuple(side * math.prod(self.decoder_strides) for side in self._encoded_size())
        if output != (height, width):
            raise ValueError(
                f"decoder_strides {list(self.decoder_strides)} after encoder_strides "
                f"{list(self.encoder_strides)} give {output[0]}x{output[1]} images, "
                f"not the input's {height}x{width}"
            )

    def _encoded_size(self) -> tuple:
        """Height and width after the encoder's "same"-padded convolutions."""
        height, width = self.input_shape[:2]
        for stride in self.encoder_strides:
            height, width = -(-height // stride), -(-width // stride)
        return height, width
