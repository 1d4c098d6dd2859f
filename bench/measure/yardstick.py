"""The yardstick: a fixed computation timed beside the models in every block, to measure the
machine rather than the harness.

Every ratio to the floor cancels the machine's speed, and with it a slowdown that falls on every
recipe alike (a change of the harness, of Keras or of its optimizer that slows each step): only
the floor's own ms/step shows one, and that differs between machines threefold. The yardstick is
the floor's network written in the backend's own operations, without Keras, the harness' data
pipeline or an optimizer: the encoder's three convolutions, the two-unit bottleneck, the decoder's
three transposed convolutions and the cross-entropy, with its gradient for every weight, on fixed
random images. A machine 3x slower steps both 3x slower; a slowdown of the floor's own step moves
the floor against the yardstick (``bench.analysis.gate``, docs/gate.md).

Each backend module's ``yardstick(session)`` builds it from ``weights()`` and ``images()``: the
same shapes and numbers everywhere, in each backend's layout.
"""

import numpy as np

BATCH = 128
IMAGE_SIZE, CHANNELS = 28, 1
KERNEL = 3  # every kernel is 3x3, padding "same"
ENCODER = ((32, 1), (64, 2), (128, 2))  # (filters, stride) of each convolution
BOTTLENECK = 2
DECODER = ((64, 2), (32, 2), (CHANNELS, 1))  # (filters, stride) of each transposed convolution
LEAKY_SLOPE = 0.2
SEED = 0


def encoded_size() -> int:
    """Height and width after the encoder's convolutions."""
    size = IMAGE_SIZE
    for _, stride in ENCODER:
        size = -(-size // stride)
    return size


def weights() -> tuple:
    """(encoder kernels, (down, up) matrices, decoder kernels) as float32 arrays; every kernel in
    (height, width, channels in, channels out) order."""
    rng = np.random.default_rng(SEED)

    def drawn(*shape):
        return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[:-1]))).astype(np.float32)

    encoder, channels = [], CHANNELS
    for filters, _ in ENCODER:
        encoder.append(drawn(KERNEL, KERNEL, channels, filters))
        channels = filters
    flat = encoded_size() ** 2 * channels
    dense = (drawn(flat, BOTTLENECK), drawn(BOTTLENECK, flat))
    decoder = []
    for filters, _ in DECODER:
        decoder.append(drawn(KERNEL, KERNEL, channels, filters))
        channels = filters
    return tuple(encoder), dense, tuple(decoder)


def images() -> np.ndarray:
    """One batch of fixed images in [0, 1], (batch, height, width, channels)."""
    shape = (BATCH, IMAGE_SIZE, IMAGE_SIZE, CHANNELS)
    return np.random.default_rng(SEED + 1).random(shape, dtype=np.float32)
