"""What a worker sets up once and all its runs share: ``open_session(first) -> Session``.

The runs of one process share a Keras package and every setting (``ProcessSpec``), so the
process applies the device settings, imports TensorFlow and the API's Keras, loads the data and
builds the network spec once, from its first run's spec. The notebook of the kernel path
(``notebook_kernel.ipynb``) opens its session with the same function, so that a run in a
Jupyter kernel is set up exactly as one in a worker.
"""

import os
from dataclasses import dataclass

from bench import datasets
from bench.config.settings import DeviceSettings, TrainingSettings
from bench.measure import device
from bench.measure.device import Device
from bench.results.records import RunSpec
from vae_impls import keras_api
from vae_impls.network_spec import NetworkSpec

LEGACY_KERAS = "TF_USE_LEGACY_KERAS"


@dataclass(frozen=True)
class Session:
    """A worker's TensorFlow, Keras package, data and settings, set up once for all its runs."""

    first: RunSpec  # the spec whose settings every run shares; the references take its seed too
    tf: object
    keras: object
    data: datasets.Dataset
    device: Device
    training: TrainingSettings
    net: NetworkSpec

    def read_back(self, model) -> dict:
        """The device settings a run of ``model`` (None: none was built) got, with the notes."""
        return device.read_back(self.tf, self.keras, model, self.device)


def open_session(first: RunSpec) -> Session:
    """Set this process up for ``first``'s runs: the device settings before TensorFlow's first
    op, then the API's Keras and its dtype policy before any layer, then the data.

    Raises what went wrong: then no run of the process can train.
    """
    settings, training = DeviceSettings(**first.device), TrainingSettings(**first.training)
    os.environ.update(tensorflow_environment(first))
    import tensorflow as tf

    applied = Device(settings)
    device.apply_runtime(tf, applied)
    keras = keras_api.load(first.run.api)
    device.apply_precision(tf, keras, applied)
    data = datasets.load(training.dataset, mnist_path=training.mnist_path or None)
    return Session(first, tf, keras, data, applied, training, network_spec(first, settings))


def tensorflow_environment(first: RunSpec) -> dict:
    """The environment variables TensorFlow reads while it is imported, for ``first``'s process:
    the device's (``device.environment``), and under Keras 2 ``tf.keras`` as tf_keras, as in the
    TensorFlow the posts used; TensorFlow then also skips importing Keras 3 at start-up."""
    legacy = {LEGACY_KERAS: "1"} if keras_api.package_for(first.run.api) == "tf_keras" else {}
    return {**device.environment(DeviceSettings(**first.device)), **legacy}


def network_spec(first: RunSpec, settings: DeviceSettings) -> NetworkSpec:
    """The network of ``first``'s [network] table; its lists (from JSON) as the spec's tuples,
    and XLA compilation as the [device] settings ask."""
    values = {
        key: tuple(value) if isinstance(value, list) else value
        for key, value in first.network.items()
    }
    return NetworkSpec(**values, jit_compile=settings.xla == "jit_compile")
