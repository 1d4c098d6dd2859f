"""Step-time micro-benchmarks: one Keras package per pytest process, chosen by KLBENCH_API.

Keras 2 and Keras 3 cannot share a process, so ``make bench-pytest`` (and ``make test``, with
``--benchmark-disable``) runs this folder once per package.
"""

import os
import platform

import pytest

PACKAGE_API = os.environ.get("KLBENCH_API", "keras3")
if PACKAGE_API not in ("keras2", "keras3"):
    raise pytest.UsageError(f"KLBENCH_API must be keras2 or keras3, got {PACKAGE_API!r}")
APIS = ("keras3", "keras3-port") if PACKAGE_API == "keras3" else ("keras2",)


def pytest_benchmark_update_machine_info(config, machine_info):
    import tensorflow as tf

    from vae_impls import keras_api

    keras = keras_api.load(PACKAGE_API)
    gpus = tf.config.list_physical_devices("GPU")
    machine_info["kl_bench"] = {
        "keras_package": keras.__name__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "device": ", ".join(gpu.name for gpu in gpus)
        if gpus
        else f"CPU only ({platform.processor() or 'cpu'})",
        "cpu_count": os.cpu_count(),
    }
