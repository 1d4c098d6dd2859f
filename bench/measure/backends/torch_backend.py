"""Keras 3 on PyTorch in a worker: eager train steps (``torch.compile`` when asked); no TensorFlow.

Keras 3's PyTorch trainer runs its train step eagerly; ``jit_compile=True`` wraps it in
``torch.compile`` (TorchDynamo and Inductor, not XLA), which the [device] setting
``jit_compile = true`` asks for. The stepper calls the trainer's own train function, one batch a
call, and waits for its logs as ``fit`` does (on a GPU, a step's kernels run asynchronously).
"""

import collections
import time

from bench.config.settings import jit_compile_asked
from bench.measure import yardstick as fixed
from bench.measure.backends import numpy_data
from bench.measure.backends.interface import OpCounts, Stepper

AUTOJIT_NOTE = "xla = 'autojit' is TensorFlow's auto-clustering: not applied on PyTorch"
COMPILE_NOTE = "jit_compile on PyTorch is torch.compile (TorchDynamo + Inductor), not XLA"


def environment(settings) -> dict:
    return {"CUDA_VISIBLE_DEVICES": ""} if settings.device == "cpu" else {}


def start(device):
    import torch

    settings, notes = device.settings, device.notes
    gpu = torch.cuda.is_available()
    if settings.device == "gpu" and not gpu:
        raise RuntimeError('[device] device = "gpu" but PyTorch sees no GPU')
    if settings.intra_op_threads:
        torch.set_num_threads(settings.intra_op_threads)
    if settings.inter_op_threads:
        torch.set_num_interop_threads(settings.inter_op_threads)
    if settings.deterministic_ops:
        torch.use_deterministic_algorithms(True)
    _apply_gpu_memory(torch, device, gpu)
    if settings.xla == "autojit":
        notes.append(AUTOJIT_NOTE)
    if jit_compile_asked(settings):
        notes.append(COMPILE_NOTE)
    return torch


def _apply_gpu_memory(torch, device, gpu: bool) -> None:
    """A memory limit as the per-process fraction of each GPU's memory PyTorch may allocate."""
    settings, notes = device.settings, device.notes
    if not gpu:
        if settings.gpu_memory_limit_mb or settings.memory_growth:
            notes.append("no GPU present: GPU memory settings not applied")
        return
    if settings.gpu_memory_limit_mb:
        for index in range(torch.cuda.device_count()):
            total_mb = torch.cuda.get_device_properties(index).total_memory / 2**20
            fraction = min(1.0, settings.gpu_memory_limit_mb / total_mb)
            torch.cuda.set_per_process_memory_fraction(fraction, index)
    if settings.memory_growth:
        notes.append("memory growth: PyTorch's caching allocator always allocates as needed")


def network_jit_compile(settings) -> bool:
    """``torch.compile`` where [device] asks (``jit_compile_asked``)."""
    return jit_compile_asked(settings)


def has_gpu(torch) -> bool:
    return torch.cuda.is_available()


def read_back(torch, keras, model, device) -> dict:
    settings, gpu = device.settings, torch.cuda.is_available()
    return {
        "device": "gpu" if gpu else "cpu",
        "visible_gpus": torch.cuda.device_count() if gpu else 0,
        "gpu_memory_limit_mb": (settings.gpu_memory_limit_mb or None) if gpu else None,
        "memory_growth": gpu,
        "xla_autojit": False,
        "jit_compile": bool(model.jit_compile) if model is not None else None,
        "intra_op_threads": torch.get_num_threads(),
        "inter_op_threads": torch.get_num_interop_threads(),
        "precision": keras.mixed_precision.global_policy().name,
        "deterministic_ops": torch.are_deterministic_algorithms_enabled(),
        "notes": list(device.notes),
    }


def fit_data(session, built, seed: int):
    return numpy_data.batches(session, built, seed)


fit = numpy_data.fit


def stepper(session, built, seed: int) -> Stepper:
    """The trainer's train function on one batch a call (as ``fit`` passes it), waited for."""
    keras, model = session.keras, built.model
    train_function = model.make_train_function()
    batches = numpy_data.batches(session, built, seed)

    def step():
        batch = keras.tree.map_structure(keras.ops.convert_to_tensor, next(batches))
        logs = train_function([batch])
        keras.ops.convert_to_numpy(numpy_data.first_value(logs))

    return Stepper(step)


def yardstick(session) -> Stepper:
    """The yardstick's step (``bench.measure.yardstick``): PyTorch's functional convolutions and
    autograd's gradients of every weight, on the device Keras uses, waited for."""
    import torch
    import torch.nn.functional as functional

    device = "cuda" if torch.cuda.is_available() else "cpu"
    encoder, (down, up), decoder = fixed.weights()

    def weight(array, order=None):
        array = array if order is None else array.transpose(order)
        return torch.tensor(array, device=device, requires_grad=True)

    # PyTorch's kernels: (out, in, height, width) to convolve, (in, out, ...) to transpose.
    encoder = [weight(kernel, (3, 2, 0, 1)) for kernel in encoder]
    decoder = [weight(kernel, (2, 3, 0, 1)) for kernel in decoder]
    down, up = weight(down), weight(up)
    images = torch.tensor(fixed.images().transpose(0, 3, 1, 2), device=device)
    variables, padding = [*encoder, down, up, *decoder], fixed.KERNEL // 2

    def step():
        h = images
        for kernel, (_, stride) in zip(encoder, fixed.ENCODER):
            h = functional.conv2d(h, kernel, stride=stride, padding=padding)
            h = functional.leaky_relu(h, fixed.LEAKY_SLOPE)
        size = fixed.encoded_size()
        h = (h.reshape(fixed.BATCH, -1) @ down @ up).reshape(fixed.BATCH, -1, size, size)
        for index, (kernel, (_, stride)) in enumerate(zip(decoder, fixed.DECODER)):
            h = functional.conv_transpose2d(
                h, kernel, stride=stride, padding=padding, output_padding=stride - 1
            )
            if index < len(decoder) - 1:
                h = functional.leaky_relu(h, fixed.LEAKY_SLOPE)
        loss = functional.binary_cross_entropy_with_logits(h, images)
        torch.autograd.grad(loss, variables)[0].cpu()  # on a GPU: waits for the step

    return Stepper(step)


def count_ops(session, built, seed: int) -> OpCounts:
    """(ops, ops by type) of one train step: the ATen operators PyTorch dispatches (forward,
    backward and the optimizer's update), as a TorchDispatchMode sees them. The step is a real
    one: it is taken after the timing and the pictures, when the weights no longer matter."""
    from torch.utils._python_dispatch import TorchDispatchMode

    counts = collections.Counter()

    class CountOps(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            counts[func.overloadpacket.__name__] += 1
            return func(*args, **(kwargs or {}))

    step = stepper(session, built, seed)
    with CountOps():
        step()
    # The operators carry no layer scope: PyTorch's layers are Keras', not torch.nn modules.
    return OpCounts(sum(counts.values()), dict(counts), {})


def slow_down(torch, model, milliseconds: float) -> None:
    """Each train step first sleeps ``milliseconds``: an eager step runs its Python each time."""
    original, seconds = model.train_step, milliseconds / 1000

    def slowed_train_step(*args, **kwargs):
        time.sleep(seconds)
        return original(*args, **kwargs)

    model.train_step = slowed_train_step


def facts() -> dict:
    import torch

    gpu = torch.cuda.is_available()
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if gpu else []
    return {
        "version": torch.__version__,
        "cuda": torch.version.cuda,
        "gpu": {"count": len(names), "names": names} if gpu else None,
    }
