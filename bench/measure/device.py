"""The [device] settings, applied inside a worker before TensorFlow initializes, then read back.

TensorFlow reads some settings from the environment while it is imported (``environment``)
and fixes its thread pools, visible devices and GPU memory configuration when its runtime starts
(the first op), so the rest runs between ``import tensorflow`` and the first op. What a run
actually got is read back from TensorFlow and Keras, not copied from the
config, and every setting that could not take effect says why in a note.
"""

from dataclasses import dataclass, field

from bench.config.settings import DeviceSettings, jit_compile_asked


@dataclass
class Device:
    """A process's [device] settings and a note for each one that could not take effect: what a
    run's read-back reports beside the values TensorFlow gives."""

    settings: DeviceSettings
    notes: list = field(default_factory=list)


def environment(settings: DeviceSettings) -> dict:
    """The environment variables TensorFlow reads while it is imported: its C++ logs quiet, and
    for ``device = "cpu"`` no GPU visible, so that CUDA never starts and takes no GPU memory."""
    hidden_gpus = {"CUDA_VISIBLE_DEVICES": ""} if settings.device == "cpu" else {}
    return {"TF_CPP_MIN_LOG_LEVEL": "2", **hidden_gpus}


def apply_runtime(tf, device: Device) -> None:
    """Threads, determinism, GPU memory and XLA auto-clustering: before any TensorFlow op."""
    settings = device.settings
    tf.config.threading.set_intra_op_parallelism_threads(settings.intra_op_threads)
    tf.config.threading.set_inter_op_parallelism_threads(settings.inter_op_threads)
    if settings.deterministic_ops:
        tf.config.experimental.enable_op_determinism()
    gpus = tf.config.list_physical_devices("GPU")
    if settings.device == "gpu" and not gpus:
        raise RuntimeError('[device] device = "gpu" but TensorFlow sees no GPU')
    _apply_gpu_memory(tf, device, gpus)
    if settings.xla == "autojit":
        tf.config.optimizer.set_jit(True)


def _apply_gpu_memory(tf, device: Device, gpus) -> None:
    """A memory limit, else memory growth, on every GPU; a note for each that cannot apply."""
    settings, notes = device.settings, device.notes
    if not gpus:
        if settings.gpu_memory_limit_mb:
            notes.append("no GPU present: GPU memory limit not applied")
        if settings.memory_growth:
            notes.append("no GPU present: memory growth not applied")
        return
    for gpu in gpus:
        if settings.gpu_memory_limit_mb:
            tf.config.set_logical_device_configuration(
                gpu,
                [tf.config.LogicalDeviceConfiguration(memory_limit=settings.gpu_memory_limit_mb)],
            )
        elif settings.memory_growth:
            tf.config.experimental.set_memory_growth(gpu, True)
    if settings.gpu_memory_limit_mb and settings.memory_growth:
        notes.append(
            "memory growth not applied: TensorFlow cannot combine it with a GPU memory limit"
        )


def read_back(tf, keras, model, device: Device) -> dict:
    """The settings in effect, as TensorFlow and Keras report them, plus the notes so far.

    A note is added at each read-back that finds it true, so a later run of a process also
    carries the notes of the runs before it."""
    from tensorflow.python.framework import (
        config as tf_config,  # the only getter for op determinism
    )

    settings, notes = device.settings, device.notes
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and settings.device == "auto":
        notes.append("no GPU present: device auto ran on the CPU")
    if jit_compile_asked(settings) and model is not None and not model.jit_compile:
        notes.append(
            "jit_compile requested but Keras compiled without XLA (Keras 3 turns it off under "
            "op determinism or for a layer without XLA support)"
        )
    return {
        "device": "gpu" if gpus else "cpu",
        "visible_gpus": len(gpus),
        "gpu_memory_limit_mb": _memory_limits(tf, gpus),
        "memory_growth": any(tf.config.experimental.get_memory_growth(gpu) for gpu in gpus),
        "xla_autojit": bool(tf.config.optimizer.get_jit()),
        "jit_compile": bool(model.jit_compile) if model is not None else None,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "precision": keras.mixed_precision.global_policy().name,
        "deterministic_ops": tf_config.is_op_determinism_enabled(),
        "notes": list(notes),
    }


def _memory_limits(tf, gpus):
    """The memory limit set on the GPUs' logical devices (the first), None where none is set."""
    limits = [
        config.memory_limit
        for gpu in gpus
        for config in tf.config.get_logical_device_configuration(gpu) or ()
    ]
    return limits[0] if limits else None
