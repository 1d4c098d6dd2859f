"""TensorFlow in a worker: Keras 2 (tf_keras) and Keras 3 on TensorFlow.

The device settings live in ``bench.measure.device``, the tf.data pipeline and the stepper in
``bench.measure.steps``; the trace counter of ``bench.measure.instruments`` counts the train
step's graph ops while ``tf.function`` traces it, so ``count_ops`` has nothing to add.
"""

from bench.measure import device as tf_device
from bench.measure import injection, steps
from bench.measure.backends import nvidia
from bench.measure.backends.numpy_data import Stepper

environment = tf_device.environment


def start(device):
    import tensorflow as tf

    tf_device.apply_runtime(tf, device)
    return tf


def network_jit_compile(settings) -> bool:
    return settings.xla == "jit_compile"


read_back = tf_device.read_back


def fit_data(session, built, seed: int):
    return steps.pipeline(session, built, seed)


def stepper(session, built, seed: int) -> Stepper:
    return Stepper(steps.stepper(session, built, seed))


def count_ops(session, built, seed: int):
    return None


slow_down = injection.slow_down


def facts() -> dict:
    import tensorflow as tf

    return tensorflow_facts(tf)


def tensorflow_facts(tf) -> dict:
    """TensorFlow's version and what it sees of the GPUs (None: no GPU), for env.json."""
    return {"tensorflow": tf.__version__, "gpu": _gpu_facts(tf)}


def _gpu_facts(tf):
    """The GPUs' count and names, memory and driver, and the CUDA/cuDNN TensorFlow was built
    with: what a GPU result is read against."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    build = tf.sysconfig.get_build_info()
    return {
        "count": len(gpus),
        "names": [
            tf.config.experimental.get_device_details(gpu).get("device_name") for gpu in gpus
        ],
        **_nvidia_smi(),
        "cuda": build.get("cuda_version"),
        "cudnn": build.get("cudnn_version"),
    }


def _nvidia_smi() -> dict:
    """Memory and driver version, which TensorFlow does not report."""
    rows = nvidia.query("memory.total,driver_version")
    return {"memory": [row[0] for row in rows] or None, "driver": rows[0][1] if rows else None}
