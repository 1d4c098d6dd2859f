"""TensorFlow in a worker: Keras 2 (tf_keras) and Keras 3 on TensorFlow.

The device settings live in ``bench.measure.device``. A run's ``fit`` takes either the harness'
tf.data pipeline or, for a recipe that trains as post VII's notebook calls ``fit``, numpy arrays
from which Keras builds its own pipeline; the stepper feeds the model's own train function the
same batches outside ``fit``: what the paired timing and the profile call. The trace counter of
``bench.measure.instruments`` counts the train step's graph ops while ``tf.function`` traces it,
so ``count_ops`` has nothing to add.
"""

from bench.config.settings import jit_compile_asked
from bench.measure import device as tf_device
from bench.measure import injection
from bench.measure import yardstick as fixed
from bench.measure.backends import numpy_data, nvidia
from bench.measure.backends.interface import Stepper
from vae_impls import keras_api

environment = tf_device.environment


def compile_cache_environment(path: str) -> dict:
    """Nothing: a ``tf.function`` is traced again in each process, and TensorFlow keeps no
    compiled graph across processes."""
    return {}


def start(device):
    import tensorflow as tf

    tf_device.apply_runtime(tf, device)
    return tf


def network_jit_compile(settings) -> bool:
    """XLA compiles the train step where [device] asks (``jit_compile_asked``)."""
    return jit_compile_asked(settings)


read_back = tf_device.read_back


def has_gpu(tf) -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


def fit_data(session, built, seed: int):
    return pipeline(session, built, seed)


def fit(session, built, seed: int, callbacks: list) -> None:
    """``fit`` on the pipeline: a capped epoch as ``steps_per_epoch``, else whole passes."""
    training = session.training
    built.model.fit(
        pipeline(session, built, seed),
        epochs=training.epochs,
        steps_per_epoch=training.steps_per_epoch or None,
        callbacks=callbacks,
        verbose=0,
    )


def pipeline(session, built, seed: int, endless: bool = False):
    """The same batches in the same order for every recipe of a round: the round's seed shuffles."""
    training, x = session.training, session.data.x_train
    targets = built.fit_targets(x)
    dataset = session.tf.data.Dataset.from_tensor_slices(x if targets is None else (x, targets))
    dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True).batch(
        training.batch_size
    )
    if endless or training.steps_per_epoch:
        dataset = dataset.repeat()  # a capped epoch must never run out of batches
    return dataset.prefetch(session.tf.data.AUTOTUNE)


def arrays_pipeline(session, built):
    """The tf.data pipeline ``fit(x, y, batch_size=..., shuffle=True)`` builds from the arrays
    (Keras' own data adapter: a gather of each batch from a permutation, reshuffled each pass),
    repeated without end. Keras keeps that adapter internal under both APIs."""
    x = numpy_data.fit_arrays(session)
    y = built.fit_targets(x)
    batch_size = session.training.batch_size
    if keras_api.package_for(session.first.run.api) == "tf_keras":
        from tf_keras.src.engine import data_adapter

        adapter = data_adapter.select_data_adapter(x, y)
        return adapter(x, y, batch_size=batch_size, epochs=None, shuffle=True).get_dataset()
    from keras.src.trainers.data_adapters import get_data_adapter

    return get_data_adapter(x, y, batch_size=batch_size, shuffle=True).get_tf_dataset().repeat()


def stepper(session, built, seed: int) -> Stepper:
    """One train step per call: the model's own train function on an endless iterator of the
    batches its ``fit`` takes: the harness' pipeline, or the one Keras builds from numpy arrays."""
    tf, train_function = session.tf, built.model.make_train_function()
    if built.fit_on_arrays:
        batches = iter(arrays_pipeline(session, built))
    else:
        batches = iter(pipeline(session, built, seed, endless=True))

    def step():
        logs = train_function(batches)
        # Wait for the step, as fit does for its logs.
        next(iter(tf.nest.flatten(logs))).numpy()

    return Stepper(step)


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
