"""The record types: what a worker is asked and answers, and the rows of a results folder.

In the manner of pyperf's ``Run``, each type owns its format: ``ProcessSpec`` and its
``RunSpec``s (manager -> worker) and ``RunResult`` (worker -> manager) own their JSON,
``RunRecord`` a row of runs.csv, ``Epoch`` a row of epochs.csv and ``BlockStep`` one of
blocks.csv. ``parse_row`` and ``typed_frame`` read those rows back, validating every value.
"""

import json
import math
import statistics
import typing
from dataclasses import asdict, dataclass, field, fields

from bench.config.injection import EVERY_RECIPE
from bench.config.plan import PlannedRun
from bench.errors import UsageError
from vae_impls import backends

OK, FAILED, TIMEOUT, DIVERGED, KILLED = "ok", "failed", "timeout", "diverged", "killed"
STATUSES = (OK, FAILED, TIMEOUT, DIVERGED, KILLED)
# Ends that say nothing of the recipe (a signal from outside, the time limit): resume runs them
# again.
RETRIED_ON_RESUME = (KILLED, TIMEOUT)


@dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs to train one planned run."""

    run: PlannedRun
    device: dict
    training: dict
    network: dict
    artifacts_path: str | None = None
    profile_dir: str | None = None  # where to keep a profiler trace of the run's train step
    # Where the backend may keep the steps it compiles, for this benchmark's later processes:
    # given to runs timed only, whose trace no figure reads (bench/run/runner.py).
    compile_cache: str | None = None
    injected: dict = field(
        default_factory=dict
    )  # "recipe/api" -> ms added to each step (gate tests)

    def injected_ms(self, recipe: str, api: str) -> float:
        every = self.injected.get(f"{EVERY_RECIPE}/{api}", 0.0)
        return self.injected.get(f"{recipe}/{api}", every)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "RunSpec":
        return cls(**{**data, "run": PlannedRun(**data["run"])})


@dataclass(frozen=True)
class ProcessSpec:
    """One worker process: the runs it trains, one after another, then times against each other
    and against its references in alternating blocks. Its runs share a Keras package and
    settings."""

    runs: tuple  # of RunSpec
    references: tuple = ()  # (recipe, api) models timed beside the runs' that no run trains
    # (recipe, api) models this process times in turns with the Jupyter kernel its run starts
    # (bench/measure/beside.py): a kernel reading's variants.
    beside: tuple = ()
    timeout_seconds: int = 0  # for the whole process, start-up included
    # The models ((recipe, api)) in the order a block visits them, as chains: the models of one
    # chain one right after the other (a claim's two recipes: bench/analysis/neighbours.py).
    chains: tuple = ()

    @property
    def process_id(self) -> str:
        return self.runs[0].run.process_id

    @property
    def first(self) -> RunSpec:
        """The spec whose settings every run of the process shares."""
        return self.runs[0]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "ProcessSpec":
        return cls(
            runs=tuple(RunSpec.from_json(run) for run in data["runs"]),
            references=tuple(tuple(pair) for pair in data.get("references", ())),
            beside=tuple(tuple(pair) for pair in data.get("beside", ())),
            timeout_seconds=data.get("timeout_seconds", 0),
            chains=tuple(
                tuple(tuple(model) for model in chain) for chain in data.get("chains", ())
            ),
        )


# A block's model that is no recipe: a fixed computation of the backend's own, timed beside the
# recipes to measure the machine (``[training] yardstick``, bench/measure/yardstick.py).
YARDSTICK = "yardstick"


@dataclass(frozen=True)
class BlockStep:
    """One timed train step of one model in a block of the paired measurement (blocks.csv)."""

    block: int
    model: str  # the recipe whose step this is: the run's own, a reference's, or YARDSTICK
    model_api: str
    step: int
    seconds: float
    # Seconds in which some task of the machine waited for a CPU during the step (the kernel's
    # /proc/pressure/cpu); empty where the kernel does not say (bench/results/contention.py).
    pressure_seconds: float | None = None


@dataclass(frozen=True)
class Epoch:
    """One epoch of ``fit``, timed at its boundaries; warm-up epochs are left out of ms/step."""

    epoch: int
    seconds: float
    steps: int
    ms_per_step: float
    warmup: bool
    loss: float
    bce: float
    kl: float


# The runs.csv columns of where a worker process's wall time went, the same fields of RunResult.
PHASE_COLUMNS = (
    "build_seconds",
    "train_seconds",
    "startup_seconds",
    "blocks_seconds",
    "teardown_seconds",
    "stalled_seconds",
    "stall",
)

# Op types counted in each traced train step, and their runs.csv columns: where a recipe's extra
# work shows (a second encoder pass adds convolutions and their gradients).
# The scope op_scopes gives an op that no layer's name scope holds: the loss, the sampling, the
# optimizer's update and whatever else a train step runs outside its layers.
OUTSIDE_LAYERS = "(no layer)"
OP_COUNT_COLUMNS = {
    "Conv2D": "ops_conv2d",
    "Conv2DBackpropInput": "ops_conv2d_backprop_input",
    "Conv2DBackpropFilter": "ops_conv2d_backprop_filter",
    "MatMul": "ops_matmul",
}

# Every op type that is a convolution or its gradient, as each backend names it in its traced
# train step (``vae_impls.backends``). Counted together per run (``ops_convolutions``): compared
# within one backend only, where it shows an encoder run twice.
CONVOLUTION_OPS = backends.convolution_ops()


def convolutions(op_counts: dict) -> int | None:
    """The convolutions of a train step's op counts (``CONVOLUTION_OPS``); None without counts."""
    return sum(op_counts.get(op, 0) for op in CONVOLUTION_OPS) if op_counts else None


@dataclass(frozen=True)
class RunResult:
    """What a worker reports; the run's summary numbers are derived from its epochs."""

    status: str = FAILED
    error: str = ""
    epochs: tuple = ()  # of Epoch
    blocks: tuple = ()  # of BlockStep: the paired measurement
    reference_error: str = ""  # why a reference could not be timed ("" when all were)
    trace_count: int | None = None
    graph_ops: int | None = None
    op_counts: dict = field(default_factory=dict)  # op type -> count in the traced train step
    # layer -> op type -> count of the OP_COUNT_COLUMNS types: which layers the step runs twice
    op_scopes: dict = field(default_factory=dict)
    # The instructions the compiled train step runs after the compiler fused the traced ops (JAX:
    # XLA's entry computation: fusions, custom calls, unfused ops); None: not counted.
    compiled_ops: int | None = None
    dataset: str | None = None
    dataset_origin: str | None = None
    device_settings: dict | None = None
    artifacts: str | None = None  # path of the run's artifacts file, once saved
    # Where the worker's wall time went (bench.measure.phases), in seconds; None: not measured.
    # The run's own: its building (its training phase less its epochs) and its epochs.
    build_seconds: float | None = None
    train_seconds: float | None = None
    # Its process's, the same on each of its runs: start-up, paired timing, teardown, stalls.
    startup_seconds: float | None = None
    blocks_seconds: float | None = None
    teardown_seconds: float | None = None
    stalled_seconds: float | None = None
    stall: str = ""  # the longest stall: its seconds, its start and where the main thread stood
    # How many times the sampling layer drew noise per train step of ``fit``: its seed generators'
    # counters, read before and after, over the steps. None where the backend keeps no counter
    # (Keras 2) or the run has no sampling layer.
    noise_draws: float | None = None

    @property
    def ms_per_step(self):
        """Median over the timed (not warm-up) epochs: the run's one timing."""
        timed = [epoch.ms_per_step for epoch in self.epochs if not epoch.warmup]
        return statistics.median(timed) if timed else None

    @property
    def first_epoch_seconds(self):
        return self.epochs[0].seconds if self.epochs else None

    def final(self, term: str):
        """The last epoch's ``loss``, ``bce`` or ``kl``."""
        return getattr(self.epochs[-1], term) if self.epochs else None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "RunResult":
        return cls(
            **{
                **data,
                "epochs": tuple(Epoch(**epoch) for epoch in data.get("epochs", ())),
                "blocks": tuple(BlockStep(**step) for step in data.get("blocks", ())),
            }
        )


@dataclass(frozen=True)
class RunRecord:
    """One row of runs.csv: a planned run, how it ended and its summary numbers."""

    run_id: str
    recipe: str
    api: str
    repeat: int
    status: str
    error: str = ""
    ms_per_step: float | None = None
    first_epoch_seconds: float | None = None
    trace_count: int | None = None
    graph_ops: int | None = None
    final_loss: float | None = None
    final_bce: float | None = None
    final_kl: float | None = None
    settings_hash: str = ""
    dataset: str = ""
    wall_seconds: float | None = None  # of the worker process the run was part of
    artifacts: str = ""  # relative to the results folder
    started_at: float | None = None  # Unix time the worker started
    ended_at: float | None = None
    load_average: float | None = None  # the machine's 1-minute load average as the worker started
    host: str = ""  # env.host_id of the machine the run ran on
    variant: str = ""  # a sweep's settings for the run (bench.config.sweep); "" otherwise
    process: str = ""  # the worker process it shared with the other runs of its round
    reference_error: str = ""
    ops_conv2d: int | None = None
    ops_conv2d_backprop_input: int | None = None
    ops_conv2d_backprop_filter: int | None = None
    ops_matmul: int | None = None
    op_scopes: str = ""  # RunResult.op_scopes as compact JSON (``scopes_text``); "" when unknown
    build_seconds: float | None = None  # PHASE_COLUMNS: where the process's wall time went
    train_seconds: float | None = None
    startup_seconds: float | None = None
    blocks_seconds: float | None = None
    teardown_seconds: float | None = None
    stalled_seconds: float | None = None
    stall: str = ""
    ops_convolutions: int | None = None  # CONVOLUTION_OPS in the traced train step
    noise_draws: float | None = None  # RunResult.noise_draws; empty: unknown
    compiled_ops: int | None = None  # RunResult.compiled_ops; empty: not counted
    # PlannedRun.timed_only: timed in its process's blocks without training, so an ok run with no
    # ms/step, first epoch or losses (round 1 has them); False in folders from before it.
    timed_only: bool = False

    @classmethod
    def of(
        cls,
        run: PlannedRun,
        result: RunResult,
        settings_hash: str,
        wall_seconds: float,
        artifacts: str = "",
        **timing,
    ) -> "RunRecord":
        """``timing``: started_at, ended_at, load_average and host, which only the runner sees."""
        return cls(
            run.run_id,
            run.recipe,
            run.api,
            run.repeat,
            result.status,
            result.error,
            ms_per_step=result.ms_per_step,
            first_epoch_seconds=result.first_epoch_seconds,
            trace_count=result.trace_count,
            graph_ops=result.graph_ops,
            final_loss=result.final("loss"),
            final_bce=result.final("bce"),
            final_kl=result.final("kl"),
            settings_hash=settings_hash,
            dataset=result.dataset or "",
            wall_seconds=wall_seconds,
            artifacts=artifacts,
            reference_error=result.reference_error,
            op_scopes=scopes_text(result.op_scopes),
            ops_convolutions=convolutions(result.op_counts),
            noise_draws=result.noise_draws,
            compiled_ops=result.compiled_ops,
            variant=run.variant,
            process=run.process_id,
            timed_only=run.timed_only,
            **{column: getattr(result, column) for column in PHASE_COLUMNS},
            **timing,
            **{
                column: result.op_counts.get(op)
                for op, column in OP_COUNT_COLUMNS.items()
                if result.op_counts
            },
        )


def scopes_text(scopes: dict) -> str:
    """``RunResult.op_scopes`` as one CSV cell: JSON, keys sorted, no spaces."""
    return json.dumps(scopes, sort_keys=True, separators=(",", ":")) if scopes else ""


def parse_scopes(text: str) -> dict:
    """A runs.csv ``op_scopes`` cell back as layer -> op type -> count; {} for none or garbage."""
    try:
        scopes = json.loads(text) if text else {}
    except ValueError:
        return {}
    valid = isinstance(scopes, dict) and all(
        isinstance(types, dict)
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in types.values())
        for types in scopes.values()
    )
    return scopes if valid else {}


RUN_COLUMNS = tuple(field.name for field in fields(RunRecord))
RUN_KEY = RUN_COLUMNS[:4]  # run_id, recipe, api, repeat: which planned run a row belongs to
EPOCH_COLUMNS = (*RUN_KEY, *(field.name for field in fields(Epoch)))
BLOCK_COLUMNS = (*RUN_KEY, "process", *(field.name for field in fields(BlockStep)))


def _base_type(annotation) -> type:
    """``float | None`` -> float."""
    return (
        next(arg for arg in typing.get_args(annotation) if arg is not type(None))
        if typing.get_args(annotation)
        else annotation
    )


_TYPES = {
    field.name: _base_type(field.type)
    for cls in (RunRecord, Epoch, BlockStep)
    for field in fields(cls)
}
_KIND_NAMES = {int: "an integer", float: "a number", bool: "True or False"}
# Numbers that are durations or sizes: a negative one is not a measurement.
_NON_NEGATIVE = {
    "seconds",
    "pressure_seconds",
    "ms_per_step",
    "first_epoch_seconds",
    "wall_seconds",
    *(column for column in PHASE_COLUMNS if column.endswith("_seconds")),
    "trace_count",
    "graph_ops",
    "compiled_ops",
    "steps",
    "noise_draws",
}
_POSITIVE = {"repeat", "epoch", "steps", "block", "step"}


def epoch_rows(run: PlannedRun, result: RunResult) -> list:
    return [{**_key(run), **asdict(epoch)} for epoch in result.epochs]


def block_rows(run: PlannedRun, result: RunResult) -> list:
    return [{**_key(run), "process": run.process_id, **asdict(step)} for step in result.blocks]


def _key(run: PlannedRun) -> dict:
    return dict(zip(RUN_KEY, (run.run_id, run.recipe, run.api, run.repeat)))


def parse_row(header: list, line: list, columns: list, where: str) -> dict:
    if len(line) != len(header):
        raise UsageError(f"{where}: {len(line)} values under {len(header)} columns")
    row = dict(zip(header, line))
    parsed = {column: _value(column, row[column], where) for column in columns}
    if "status" in parsed and parsed["status"] not in STATUSES:
        raise UsageError(
            f"{where}: status {parsed['status']!r} is not one of {', '.join(STATUSES)}"
        )
    if (
        parsed.get("status") == OK
        and parsed.get("ms_per_step") is None
        and "ms_per_step" in columns
        and not parsed.get("timed_only")
    ):
        raise UsageError(f"{where}: an ok run without ms_per_step (and not timed only)")
    return parsed


def _value(column: str, text: str, where: str):
    kind = _TYPES[column]
    if kind is str:
        return text
    if text == "":
        return None
    try:
        value = {"True": True, "False": False}[text] if kind is bool else float(text)
    except (KeyError, ValueError):
        raise UsageError(f"{where}: {column} = {text!r} is not {_KIND_NAMES[kind]}") from None
    if kind is bool:
        return value
    if kind is int and not value.is_integer():
        raise UsageError(f"{where}: {column} = {text!r} is not {_KIND_NAMES[kind]}")
    if (
        not math.isfinite(value)
        or (column in _NON_NEGATIVE and value < 0)
        or (column in _POSITIVE and value < 1)
    ):
        raise UsageError(f"{where}: {column} = {text!r} is out of range")
    return int(value) if kind is int else value


def typed_frame(frame):
    """Text columns as str ("" for missing), numbers as float (NaN for missing), flags as bool."""
    import pandas as pd

    for column in frame.columns:
        kind = _TYPES[column]
        if kind is bool:
            frame[column] = frame[column].fillna(False).astype(bool)
        elif kind is str:
            frame[column] = frame[column].fillna("").astype(str)
        else:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame
