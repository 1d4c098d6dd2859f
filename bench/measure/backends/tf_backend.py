"""TensorFlow in a worker: Keras 2 (tf_keras) and Keras 3 on TensorFlow.

The device settings live in ``bench.measure.device``, the tf.data pipeline and the stepper in
``bench.measure.steps``; the trace counter of ``bench.measure.instruments`` counts the train
step's graph ops while ``tf.function`` traces it, so ``count_ops`` has nothing to add.
"""

from bench.measure import device as tf_device
from bench.measure import injection, steps
from bench.measure import yardstick as fixed
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


def yardstick(session) -> Stepper:
    """The yardstick's step (``bench.measure.yardstick``): a traced function of TensorFlow ops
    that computes the gradients of every weight, waited for."""
    tf = session.tf
    encoder, (down, up), decoder = (
        [tf.Variable(kernel) for kernel in kernels] for kernels in fixed.weights()
    )
    images = tf.constant(fixed.images())
    variables = [*encoder, down, up, *decoder]

    @tf.function
    def gradients():
        with tf.GradientTape() as tape:
            h = images
            for kernel, (_, stride) in zip(encoder, fixed.ENCODER):
                h = tf.nn.leaky_relu(tf.nn.conv2d(h, kernel, stride, "SAME"), fixed.LEAKY_SLOPE)
            size = fixed.encoded_size()
            h = tf.matmul(tf.matmul(tf.reshape(h, (fixed.BATCH, -1)), down), up)
            h = tf.reshape(h, (fixed.BATCH, size, size, -1))
            for index, (kernel, (filters, stride)) in enumerate(zip(decoder, fixed.DECODER)):
                size *= stride
                shape = (fixed.BATCH, size, size, filters)
                # TensorFlow's transposed kernels are (height, width, out, in).
                flipped = tf.transpose(kernel, (0, 1, 3, 2))
                h = tf.nn.conv2d_transpose(h, flipped, shape, stride, "SAME")
                if index < len(decoder) - 1:
                    h = tf.nn.leaky_relu(h, fixed.LEAKY_SLOPE)
            loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(images, h))
        return tape.gradient(loss, variables)

    return Stepper(lambda: gradients()[0].numpy())


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
