"""What a worker sets up once and all its runs share: ``open_session(first) -> Session``.

The runs of one process share a Keras package, its backend and every setting (``ProcessSpec``), so
the process applies the device settings, imports the backend (TensorFlow, JAX or PyTorch:
``bench.measure.backends``) and the API's Keras, loads the data and builds the network spec once,
from its first run's spec. The notebook of the kernel path
(``notebook_kernel.ipynb``) opens its session with the same function, so that a run in a
Jupyter kernel is set up exactly as one in a worker.
"""

import os
from dataclasses import dataclass

from bench import datasets
from bench.config.settings import DeviceSettings, TrainingSettings
from bench.measure import backends
from bench.measure.device import Device
from bench.results.records import RunSpec
from vae_impls import keras_api
from vae_impls.network_spec import NetworkSpec

LEGACY_KERAS = "TF_USE_LEGACY_KERAS"


@dataclass(frozen=True)
class Session:
    """A worker's backend, Keras package, data and settings, set up once for all its runs."""

    first: RunSpec  # the spec whose settings every run shares; the references take its seed too
    backend: object  # the module of bench.measure.backends for the API's backend
    runtime: object  # the backend's own module: tf, jax or torch
    keras: object
    data: datasets.Dataset
    device: Device
    training: TrainingSettings
    net: NetworkSpec

    def read_back(self, model) -> dict:
        """The device settings a run of ``model`` (None: none was built) got, with the notes."""
        return self.backend.read_back(self.runtime, self.keras, model, self.device)

    @property
    def tf(self):
        """TensorFlow, for the code that only a TensorFlow worker runs (None elsewhere)."""
        return self.runtime if self.backend is backends.named("tensorflow") else None


def open_session(first: RunSpec) -> Session:
    """Set this process up for ``first``'s runs: the device settings before the backend's first
    op, then the API's Keras and its dtype policy before any layer, then the data.

    Raises what went wrong: then no run of the process can train.
    """
    settings, training = DeviceSettings(**first.device), TrainingSettings(**first.training)
    backend = backends.of(first.run.api)
    os.environ.update(backend_environment(first))
    applied = Device(settings)
    runtime = backend.start(applied)
    keras = keras_api.load(first.run.api)
    apply_precision(backend, runtime, keras, applied)
    data = datasets.load(training.dataset, mnist_path=training.mnist_path or None)
    net = network_spec(first, settings, backend.network_jit_compile(settings))
    return Session(first, backend, runtime, keras, data, applied, training, net)


def backend_environment(first: RunSpec) -> dict:
    """The environment variables the backend reads while it is imported, for ``first``'s
    process, and under Keras 2 ``tf.keras`` as tf_keras, as in the TensorFlow the posts used;
    TensorFlow then also skips importing Keras 3 at start-up. Where ``first`` has a compile
    cache (its process times runs only), the backend keeps and loads its compiled steps there."""
    legacy = {LEGACY_KERAS: "1"} if keras_api.package_for(first.run.api) == "tf_keras" else {}
    backend = backends.of(first.run.api)
    cache = backend.compile_cache_environment(first.compile_cache) if first.compile_cache else {}
    return {**backend.environment(DeviceSettings(**first.device)), **legacy, **cache}


def apply_precision(backend, runtime, keras, device: Device) -> None:
    """The global dtype policy of the Keras in use: before any layer is built."""
    keras.mixed_precision.set_global_policy(device.settings.precision)
    if device.settings.precision == "mixed_float16" and not backend.has_gpu(runtime):
        device.notes.append("no GPU present: mixed_float16 runs on CPU (slow, not representative)")


def network_spec(first: RunSpec, settings: DeviceSettings, jit_compile: bool) -> NetworkSpec:
    """The network of ``first``'s [network] table; its lists (from JSON) as the spec's tuples,
    and compilation as the backend takes the [device] settings (``network_jit_compile``)."""
    values = {
        key: tuple(value) if isinstance(value, list) else value
        for key, value in first.network.items()
    }
    return NetworkSpec(**values, jit_compile=jit_compile)
