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
from bench.measure.instruments import layer_names
from bench.results.records import OUTSIDE_LAYERS

AUTOJIT_NOTE = "xla = 'autojit' is TensorFlow's auto-clustering: not applied on PyTorch"
COMPILE_NOTE = "jit_compile on PyTorch is torch.compile (TorchDynamo + Inductor), not XLA"
# The ops whose layer the report's cause finder asks for: convolutions, their gradients (one
# convolution_backward computes both of a layer's) and matrix products, forward and backward.
SCOPED_OPS = ("convolution", "convolution_backward", "mm", "addmm", "bmm")
# The key of an autograd node's metadata that names the layer whose forward created it.
LAYER_TAG = "kl_bench_layer"


def environment(settings) -> dict:
    return {"CUDA_VISIBLE_DEVICES": ""} if settings.device == "cpu" else {}


def compile_cache_environment(path: str) -> dict:
    """Nothing: eager PyTorch compiles nothing, and torch.compile keeps its own cache."""
    return {}


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
    """(ops, ops by type, ``SCOPED_OPS`` by layer) of one train step: the ATen operators PyTorch
    dispatches (forward, backward and the optimizer's update), as a TorchDispatchMode sees them.
    The step is a real one: it is taken after the timing and the pictures, when the weights no
    longer matter.

    Keras layers are ``torch.nn.Module``s on this backend (``TorchLayer``), called through
    ``Module.__call__``: global forward hooks keep the stack of the Keras layers whose call is
    running, and a forward operator belongs to the innermost. A backward operator belongs to the
    layer whose forward made the autograd node that runs it: a TorchFunctionMode tags each node a
    layer's call creates with the layer's name (``Node.metadata``), and the dispatch mode reads
    the running node's tag (``torch._C._current_autograd_node``). An operator outside every layer
    (the loss, the sampling, the optimizer's update) is in ``OUTSIDE_LAYERS``."""
    step = stepper(session, built, seed)
    return count_step(step, layer_names(built.model))


def count_step(step, names: set) -> OpCounts:
    """``count_ops`` of one call of ``step``, the layers being the modules whose ``name`` is one
    of ``names``."""
    import torch
    from torch.nn.modules import module as modules
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode

    counts, typed_layers, calls = collections.Counter(), [], LayerCalls(names)

    class TagNodes(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            outputs = func(*args, **(kwargs or {}))
            _tag_new_nodes(torch, outputs, calls.innermost())
            return outputs

    class CountOps(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            op_type = func.overloadpacket.__name__
            counts[op_type] += 1
            typed_layers.append((op_type, _layer_running(torch, calls)))
            return func(*args, **(kwargs or {}))

    hooks = (
        modules.register_module_forward_pre_hook(calls.enter),
        modules.register_module_forward_hook(calls.leave, always_call=True),
    )
    try:
        with TagNodes(), CountOps():
            step()
    finally:
        for hook in hooks:
            hook.remove()
    return OpCounts(sum(counts.values()), dict(counts), layer_scopes(typed_layers, SCOPED_OPS))


class LayerCalls:
    """The Keras layers (by name, of ``names``) whose forward call is running, innermost last;
    other modules (the outermost model, wrapped torch modules) are passed over."""

    def __init__(self, names: set):
        self.names, self.running = names, []

    def enter(self, module, args):
        if getattr(module, "name", None) in self.names:
            self.running.append(module.name)

    def innermost(self) -> str:
        """The layer a forward operator run now belongs to."""
        return self.running[-1] if self.running else OUTSIDE_LAYERS

    def leave(self, module, args, outputs):
        if getattr(module, "name", None) in self.names and self.running:
            self.running.pop()


def _tag_new_nodes(torch, outputs, layer: str) -> None:
    """Tag the autograd nodes behind ``outputs`` that no earlier call tagged (those this call
    created: every earlier call's were tagged as it returned, outside the layers too, so that a
    later layer's call never claims them) with ``layer``."""
    leaves = torch.utils._pytree.tree_leaves(outputs)
    pending = [leaf.grad_fn for leaf in leaves if isinstance(leaf, torch.Tensor)]
    while pending:
        node = pending.pop()
        if node is None or LAYER_TAG in node.metadata:
            continue
        node.metadata[LAYER_TAG] = layer
        pending.extend(next_node for next_node, _ in node.next_functions)


def _layer_running(torch, calls: LayerCalls) -> str:
    """The layer an operator dispatched now belongs to: in backward, the running node's tag."""
    node = torch._C._current_autograd_node()
    if node is not None:
        return node.metadata.get(LAYER_TAG, OUTSIDE_LAYERS)
    return calls.innermost()


def layer_scopes(typed_layers, types) -> dict:
    """layer -> op type -> count of the ops of ``types`` among (op type, layer) pairs."""
    found = collections.defaultdict(collections.Counter)
    for op_type, layer in typed_layers:
        if op_type in types:
            found[layer][op_type] += 1
    return {layer: dict(types_found) for layer, types_found in sorted(found.items())}


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
