"""Keras 3 on JAX in a worker: XLA compiles every train step; no TensorFlow.

Keras 3's JAX trainer keeps the model's state (weights, optimizer and metric variables) outside
the model while it trains and threads it through a jitted, stateless train step. The stepper does
the same: it takes the state once, passes it through each step, waits for each step's logs (JAX
dispatches asynchronously; a step's time is known only once its result is) and hands the state
back to the model when the timing ends.
"""

import collections
import os
import re
import time

import numpy as np

from bench.config.settings import jit_compile_asked
from bench.measure import yardstick as fixed
from bench.measure.backends import numpy_data, nvidia
from bench.measure.backends.interface import OpCounts, Stepper
from bench.measure.instruments import layer_names, scopes_of

# The [device] settings cannot turn XLA off on JAX: Keras 3 without jit_compile runs a JAX
# train step op by op, which is not how anyone runs JAX.
XLA_NOTE = (
    "JAX compiles every train step with XLA, whatever [device] says: xla = {xla!r} and "
    "jit_compile = false do not apply"
)
STABLEHLO_OP = re.compile(r"\b(stablehlo|chlo|mhlo)\.([a-z_]+)")
LOCATION = re.compile(r'^(#loc\d+) = loc\("([^"]*)"', re.MULTILINE)  # a location and its name
OP_LOCATION = re.compile(r"loc\((#loc\d+)\)\s*$")  # the location an op's line ends with
# The ops whose layer the report's cause finder asks for: convolutions and matrix products.
SCOPED_OPS = ("stablehlo.convolution", "stablehlo.dot_general")
# The instructions of a compiled module that hold or pass values and launch nothing.
BOOKKEEPING = ("parameter", "constant", "get-tuple-element", "tuple", "bitcast", "after-all")


def environment(settings) -> dict:
    """JAX reads its platform and GPU memory settings while it initializes."""
    env = {"JAX_PLATFORMS": "cpu"} if settings.device == "cpu" else {}
    if settings.gpu_memory_limit_mb:
        fraction = _memory_fraction(settings.gpu_memory_limit_mb)
        if fraction:
            env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{fraction:.3f}"
    elif settings.memory_growth:
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"  # allocate as needed, as growth does
    if settings.deterministic_ops:
        flags = os.environ.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = f"{flags} --xla_gpu_deterministic_ops=true".strip()
    return env


def compile_cache_environment(path: str) -> dict:
    """JAX's persistent compilation cache in ``path``, for every compiled function however fast
    it compiled (JAX's default keeps only those that took a second or more, which would leave
    out some train steps on a CPU; docs/budget.md, "Outside the blocks"), and however small."""
    return {
        "JAX_COMPILATION_CACHE_DIR": path,
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1",
    }


def _memory_fraction(limit_mb: int):
    """The limit as the fraction of GPU 0's memory JAX takes (None: no GPU to read it from)."""
    rows = nvidia.query("memory.total", units=False)
    try:
        return min(1.0, limit_mb / float(rows[0][0]))
    except (IndexError, ValueError):
        return None


def start(device):
    import jax

    settings, notes = device.settings, device.notes
    gpus = _gpus(jax)
    if settings.device == "gpu" and not gpus:
        raise RuntimeError('[device] device = "gpu" but JAX sees no GPU')
    if not gpus and (settings.gpu_memory_limit_mb or settings.memory_growth):
        notes.append("no GPU present: GPU memory settings not applied")
    elif settings.gpu_memory_limit_mb and "XLA_PYTHON_CLIENT_MEM_FRACTION" not in os.environ:
        notes.append("GPU memory limit not applied: nvidia-smi gave no total to take a part of")
    if not jit_compile_asked(settings):
        notes.append(XLA_NOTE.format(xla=settings.xla))
    if settings.intra_op_threads or settings.inter_op_threads:
        notes.append("thread counts not applied: JAX's CPU runtime has no per-process setting")
    if settings.deterministic_ops and not gpus:
        notes.append("deterministic ops: XLA on CPU is deterministic already")
    return jax


def _gpus(jax) -> list:
    try:
        return jax.devices("gpu")
    except RuntimeError:  # no GPU platform
        return []


def network_jit_compile(settings) -> bool:
    return True


def has_gpu(jax) -> bool:
    return bool(_gpus(jax))


def read_back(jax, keras, model, device) -> dict:
    settings, gpus = device.settings, _gpus(jax)
    fraction = os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION")
    return {
        "device": "gpu" if gpus else "cpu",
        "visible_gpus": len(gpus),
        "gpu_memory_limit_mb": settings.gpu_memory_limit_mb if fraction and gpus else None,
        "memory_growth": bool(gpus) and os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE") == "false",
        "xla_autojit": False,
        "jit_compile": bool(model.jit_compile) if model is not None else None,
        "intra_op_threads": None,
        "inter_op_threads": None,
        "precision": keras.mixed_precision.global_policy().name,
        "deterministic_ops": bool(gpus) and "xla_gpu_deterministic_ops=true" in _flags(),
        "notes": list(device.notes),
    }


def _flags() -> str:
    return os.environ.get("XLA_FLAGS", "")


def fit_data(session, built, seed: int):
    return numpy_data.batches(session, built, seed)


fit = numpy_data.fit


def stepper(session, built, seed: int) -> Stepper:
    """The model's jitted train function, its state threaded through the calls."""
    import jax

    model = built.model
    model.make_train_function()
    batches = numpy_data.batches(session, built, seed)
    state = [_state(model)]

    def step():
        logs, state[0] = model.train_function(state[0], batches)
        jax.block_until_ready(numpy_data.first_value(logs))

    return Stepper(step, settle=lambda: _hand_back(model, state[0]))


def _state(model) -> tuple:
    return model._get_jax_state(
        trainable_variables=True,
        non_trainable_variables=True,
        optimizer_variables=True,
        metrics_variables=True,
    )


def _hand_back(model, state) -> None:
    """The state the steps reached, into the model's variables (as Keras does after ``fit``)."""
    names = ("trainable_variables", "non_trainable_variables")
    names += ("optimizer_variables", "metrics_variables")
    model._jax_state = dict(zip(names, state))
    model._jax_state_synced = False
    model.jax_state_sync()


def yardstick(session) -> Stepper:
    """The yardstick's step (``bench.measure.yardstick``): a jitted function of ``jax.lax``
    operations that computes the gradients of every weight, waited for."""
    import jax
    import jax.numpy as jnp

    weights, images = jax.device_put(fixed.weights()), jax.device_put(fixed.images())
    layout = ("NHWC", "HWIO", "NHWC")

    def loss(weights):
        encoder, (down, up), decoder = weights
        h = images
        for kernel, (_, stride) in zip(encoder, fixed.ENCODER):
            h = jax.lax.conv_general_dilated(
                h, kernel, (stride, stride), "SAME", dimension_numbers=layout
            )
            h = jax.nn.leaky_relu(h, fixed.LEAKY_SLOPE)
        size = fixed.encoded_size()
        h = (h.reshape(fixed.BATCH, -1) @ down @ up).reshape(fixed.BATCH, size, size, -1)
        for index, (kernel, (_, stride)) in enumerate(zip(decoder, fixed.DECODER)):
            strides = (stride, stride)
            h = jax.lax.conv_transpose(h, kernel, strides, "SAME", dimension_numbers=layout)
            if index < len(decoder) - 1:
                h = jax.nn.leaky_relu(h, fixed.LEAKY_SLOPE)
        # The sigmoid cross-entropy on logits, as TensorFlow computes it.
        return jnp.mean(jnp.maximum(h, 0) - h * images + jnp.log1p(jnp.exp(-jnp.abs(h))))

    gradients = jax.jit(jax.grad(loss))
    return Stepper(lambda: jax.block_until_ready(gradients(weights)))


def count_ops(session, built, seed: int) -> OpCounts:
    """The train step's ops as JAX lowers it for XLA (StableHLO, before XLA's optimizations: the
    program the step's Python traced, as TensorFlow's graph is counted), by type, and those of
    ``SCOPED_OPS`` by the layer whose name scope each carries (its location's name); besides,
    the instructions XLA's compiled step runs after fusion (``compiled_ops``)."""
    import jax

    model = built.model
    batch = next(numpy_data.batches(session, built, seed))
    lowered = jax.jit(model.train_step).lower(_state(model), batch)
    text = lowered.as_text(debug_info=True)
    typed_names = list(_typed_names(text))
    counts = collections.Counter(op_type for op_type, _ in typed_names)
    scopes = scopes_of(typed_names, SCOPED_OPS, layer_names(model))
    compiled = compiled_ops(lowered.compile().as_text())
    return OpCounts(sum(counts.values()), dict(counts), scopes, compiled)


def compiled_ops(hlo_text: str) -> int:
    """The instructions of a compiled module's entry computation (its HLO text) that run work:
    its fusions, custom calls (a GPU's convolutions and matrix products) and the ops XLA left
    unfused; parameters, constants, tuples and bitcasts (``BOOKKEEPING``) run nothing. A loop's
    or a condition's body counts as its one instruction."""
    entry = hlo_text[hlo_text.index("\nENTRY ") :] if "\nENTRY " in hlo_text else ""
    body = entry.split("\n}", 1)[0].splitlines()[1:]
    opcodes = (_opcode(line) for line in body if " = " in line)
    return sum(1 for opcode in opcodes if opcode and opcode not in BOOKKEEPING)


def _opcode(line: str) -> str:
    """The opcode of an HLO instruction's line ('%x = f32[2]{0} fusion(%y), ...' -> 'fusion');
    a tuple-shaped result's type is skipped by its parentheses."""
    rest = line.split(" = ", 1)[1].strip()
    if rest.startswith("("):
        depth = 0
        for index, char in enumerate(rest):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0:
                rest = rest[index + 1 :]
                break
    else:
        rest = rest.split(" ", 1)[-1]
    return rest.strip().split("(", 1)[0]


def _typed_names(text: str):
    """(op type, the name of its location) of each StableHLO op of a lowered module's text."""
    names = dict(LOCATION.findall(text))
    for line in text.splitlines():
        found = STABLEHLO_OP.search(line.split("loc(")[0])
        if found:
            where = OP_LOCATION.search(line)
            yield f"{found[1]}.{found[2]}", names.get(where[1], "") if where else ""


def slow_down(jax, model, milliseconds: float) -> None:
    """Each train step first waits ``milliseconds`` on the host, inside the compiled step."""
    from jax.experimental import io_callback

    original, seconds = model.train_step, milliseconds / 1000

    def sleep():
        time.sleep(seconds)
        return np.zeros((), np.float32)

    def slowed_train_step(state, data):
        # An ordered callback is a side effect XLA keeps and runs once per step.
        io_callback(sleep, jax.ShapeDtypeStruct((), "float32"), ordered=True)
        return original(state, data)

    model.train_step = slowed_train_step


def facts() -> dict:
    import jax

    gpus = _gpus(jax)
    return {
        "version": jax.__version__,
        "gpu": {"count": len(gpus), "names": [gpu.device_kind for gpu in gpus]} if gpus else None,
    }
