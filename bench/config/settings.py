"""The settings profile of a benchmark: one TOML file, validated before anything runs.

A config has a top-level ``name`` and four tables. ``[device]`` and ``[training]`` and
``[network]`` are the settings every run of a benchmark shares (their hash is the
``settings_hash``); ``[matrix]`` says which recipes, APIs and how many repeats run.
Every problem is a ``UsageError`` with one line that names the key and what is valid.

Importing this module does not import TensorFlow: the manager process never does.
``[network]`` keys are the ``vae_impls.network_spec.NetworkSpec`` field names; a table is checked
by constructing the spec, which needs no TensorFlow either.

Numbers are bounded on both sides: a bound no real benchmark reaches still stops a typo or a
runaway ``--repeats`` from starting runs that fail, never end, or measure something else.
"""

import dataclasses
import hashlib
import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from bench import datasets, recipes
from bench.config import budget as budget_module
from bench.config import plan
from bench.errors import UsageError, quoted
from vae_impls import keras_api, registry
from vae_impls.keras_api import APIS
from vae_impls.network_spec import ACTIVATIONS, LAYER_TUPLES, OPTIMIZERS, NetworkSpec

CONFIG_DIR = Path(__file__).parent / "configs"

DEVICES = ("auto", "cpu", "gpu")
XLA_MODES = ("off", "autojit", "jit_compile")
PRECISIONS = ("float32", "mixed_float16")


@dataclass(frozen=True)
class DeviceSettings:
    device: str = "auto"
    gpu_memory_limit_mb: int = 0  # 0 = no limit
    memory_growth: bool = False
    xla: str = "off"
    # Keras' compile(jit_compile=True): XLA on TensorFlow, torch.compile on PyTorch; JAX compiles
    # every train step whatever it says (``jit_compile_asked``).
    jit_compile: bool = False
    intra_op_threads: int = 0  # 0 = TensorFlow's default
    inter_op_threads: int = 0
    precision: str = "float32"
    deterministic_ops: bool = False


@dataclass(frozen=True)
class TrainingSettings:
    dataset: str = "auto"
    mnist_path: str = ""  # "" = where Keras caches mnist.npz
    batch_size: int = 128
    epochs: int = 4
    warmup_epochs: int = 1  # timed, but left out of the run's ms/step
    steps_per_epoch: int = 0  # 0 = full passes over the training set
    seed: int = 0
    timeout_seconds: int = 600  # per run: its training, and the process's start-up or timing
    # The paired measurement: once its runs have trained, a worker times every trained model's
    # train step and its references' (the floor, a claim's baseline) in this many alternating
    # blocks; 0 = none.
    paired_blocks: int = 8
    paired_block_steps: int = 10  # timed steps of one model (of each floor instance) in one block
    # >0: a process starts no block after this many seconds of blocks (at least MIN_BLOCKS run),
    # so that a backend whose step takes seconds (JAX or PyTorch on a CPU) times fewer blocks
    # instead of taking minutes more, each visit taking fewer steps where the planned blocks
    # would not fit (timing.block_plan); 0 = every block.
    paired_seconds: int = 0
    # >paired_blocks: a process goes on timing blocks, up to this many, while its blocks have
    # taken less time than everything before them (start-up, building, training), so that on a
    # fast device, where a block takes milliseconds and a process seconds to start, a process
    # times for longer instead of more processes starting (docs/budget.md, "Blocks per
    # process"); 0 = paired_blocks exactly.
    paired_blocks_most: int = 0
    # Time a fixed computation of the backend's own beside the models in every block (the
    # yardstick, bench/measure/yardstick.py): the floor's ratio to it is what the gate compares
    # across machines, where the floor's own ms/step says only how fast the machine is.
    yardstick: bool = False
    profile_steps: int = 0  # >0: profile that many train steps after the timing (slow)


@dataclass(frozen=True)
class MatrixSettings:
    recipes: tuple = tuple(registry.RECIPES)
    # Left out: every API whose package and backend are installed (an extra's only where it is).
    apis: tuple = field(default_factory=keras_api.installed_apis)
    repeats: int = 5  # rounds, when there is no budget
    # A duration ("15m"): the runner plans the rounds that fit (bench.config.budget); "" = none.
    budget: str = ""
    # Pairs the registry marks "fails" raise the same error every time, yet each run costs a
    # worker start-up: by default they run in the first round only.
    repeat_expected_failures: bool = False
    # false: a round a budget adds times its runs without training them (bench.config.plan):
    # its ratios are what it is for, and a fit costs a slow backend as much as its blocks.
    train_later_rounds: bool = True
    save_artifacts: bool = False
    # Users' own recipes (bench.recipes): .py files or module names, whose recipes then join the
    # recipes above by name; files are kept as absolute paths (relative ones: to the cwd).
    recipe_paths: tuple = ()


# NetworkSpec fields a config may not set, and why.
NETWORK_FIXED = {
    "input_shape": "it is fixed by the data (28x28x1 digits)",
    "jit_compile": "it is set by [device] jit_compile",
    "sampling_noise": "the benchmark draws the sampling noise from the seed",
}


def field_defaults(cls) -> dict:
    """A dataclass's fields and their defaults, which give each config key's type."""
    return {
        spec_field.name: spec_field.default_factory()
        if spec_field.default is dataclasses.MISSING
        else spec_field.default
        for spec_field in dataclasses.fields(cls)
    }


NETWORK_DEFAULTS = {
    key: default for key, default in field_defaults(NetworkSpec).items() if key not in NETWORK_FIXED
}

CHOICES = {
    ("device", "device"): DEVICES,
    ("device", "xla"): XLA_MODES,
    ("device", "precision"): PRECISIONS,
    ("training", "dataset"): datasets.SOURCES,
    ("network", "activation"): ACTIVATIONS,
    ("network", "optimizer"): OPTIMIZERS,
}
POSITIVE = {
    ("training", "batch_size"),
    ("training", "epochs"),
    ("training", "timeout_seconds"),
    ("training", "paired_block_steps"),
    ("matrix", "repeats"),
    ("network", "z_dim"),
    ("network", "learning_rate"),
}
# The largest value of a key (of each entry, for layer sizes) and why nobody needs more.
MAXIMA = {
    ("device", "gpu_memory_limit_mb"): (1_048_576, "1 TiB, more memory than any GPU has"),
    ("device", "intra_op_threads"): (4096, "more threads than any machine has cores"),
    ("device", "inter_op_threads"): (4096, "more threads than any machine has cores"),
    ("training", "batch_size"): (60_000, "the size of MNIST's whole training set"),
    ("training", "epochs"): (10_000, "more epochs than a benchmark run can use"),
    ("training", "steps_per_epoch"): (
        1_000_000,
        "over 2,000 passes over MNIST at batch 128 in one epoch",
    ),
    ("training", "timeout_seconds"): (86_400, "a day for one run"),
    ("training", "paired_blocks"): (1000, "more blocks than a run can time"),
    ("training", "paired_blocks_most"): (1000, "more blocks than a run can time"),
    ("training", "paired_block_steps"): (10_000, "more steps per block than a run can time"),
    ("training", "paired_seconds"): (86_400, "a day of blocks in one process"),
    ("training", "profile_steps"): (1000, "a trace of more steps than anyone can read"),
    ("matrix", "repeats"): (
        1000,
        "more rounds than a benchmark can run, and seed * 1000 + round would "
        "reuse the next seed's round seeds",
    ),
    ("network", "z_dim"): (784, "more latent dimensions than a 28x28 image has pixels"),
    ("network", "fact"): (1000.0, "a KL term that large swamps the reconstruction loss"),
    ("network", "learning_rate"): (10.0, "steps that large diverge at once"),
    ("network", "encoder_filters"): (4096, "more filters per layer than a 28x28 image can use"),
    ("network", "decoder_filters"): (4096, "more filters per layer than a 28x28 image can use"),
    ("network", "encoder_kernel_sizes"): (28, "a kernel larger than the 28x28 image"),
    ("network", "decoder_kernel_sizes"): (28, "a kernel larger than the 28x28 image"),
    ("network", "encoder_strides"): (28, "a stride longer than the 28x28 image"),
    ("network", "decoder_strides"): (28, "a stride longer than the 28x28 image"),
}
MAX_NAME_LENGTH = 100  # the name is part of the results folder's name, which the file system limits
# keras.utils.set_random_seed hands each run's seed to numpy, which takes 0..2**32-1.
MAX_RUN_SEED = 2**32 - 1


@dataclass(frozen=True)
class Config:
    name: str
    device: DeviceSettings = DeviceSettings()
    training: TrainingSettings = TrainingSettings()
    network: dict = field(
        default_factory=lambda: dict(NETWORK_DEFAULTS)
    )  # NetworkSpec keyword arguments
    matrix: MatrixSettings = MatrixSettings()

    def to_dict(self) -> dict:
        """JSON-ready: what env.json and plan.json store, and what ``from_dict`` reads back."""
        return {
            "name": self.name,
            "device": dataclasses.asdict(self.device),
            "training": dataclasses.asdict(self.training),
            "network": _jsonable(self.network),
            "matrix": _jsonable(dataclasses.asdict(self.matrix)),
        }

    @property
    def settings_hash(self) -> str:
        """Hash of everything a run measures under; a benchmark's runs all share it. A key added
        after folders and baselines were hashed counts only where it is set to something else
        than what they ran under (``HASHED_WHEN_NOT``), so their hashes stay what they were."""
        settings = {
            table: {
                key: value
                for key, value in values.items()
                if HASHED_WHEN_NOT.get((table, key), _UNSET) != value
            }
            for table, values in self.to_dict().items()
            if table in ("device", "training", "network")
        }
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


_UNSET = object()
# Keys added to the hashed tables later, and the value that reproduces how runs were measured
# before them: every block, whatever it took; no yardstick; compiled only where xla said so.
HASHED_WHEN_NOT = {
    ("training", "paired_seconds"): 0,
    ("training", "paired_blocks_most"): 0,
    ("training", "yardstick"): False,
    ("device", "jit_compile"): False,
}


def jit_compile_asked(device: DeviceSettings) -> bool:
    """Whether [device] asks Keras to compile the train step (``compile(jit_compile=True)``):
    ``jit_compile = true``, or ``xla = "jit_compile"``, which said so before the key existed and
    still does, so that older configs and folders keep their meaning and their hash."""
    return device.jit_compile or device.xla == "jit_compile"


TABLES = {"device": DeviceSettings, "training": TrainingSettings, "matrix": MatrixSettings}


def available_names() -> list:
    return sorted(path.stem for path in CONFIG_DIR.glob("*.toml"))


def resolve(name_or_path: str) -> Path:
    """A path to a TOML file, or the stem of a file in bench/config/configs."""
    path = Path(name_or_path).expanduser()
    if _is_file(path):
        return path
    if _is_folder(path):
        raise UsageError(f"config {path} is a folder: give a TOML file")
    builtin = CONFIG_DIR / f"{name_or_path}.toml"
    if _is_file(builtin):
        return builtin
    raise UsageError(
        f"no config {quoted(name_or_path)}: not a file, and not one of "
        f"{', '.join(available_names())}"
    )


def _is_file(path: Path) -> bool:
    """Whether ``path`` is a file; False, not an OSError, for a name too long to look up."""
    try:
        return path.is_file()
    except OSError:
        return False


def _is_folder(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def load(name_or_path: str) -> Config:
    path = resolve(name_or_path)
    try:
        data = _parse_toml(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # ValueError: TOML, UTF-8 and nesting errors
        raise UsageError(f"cannot read config {path}: {' '.join(str(error).split())}") from None
    return from_dict(data, default_name=path.stem)


def _parse_toml(text: str) -> dict:
    """``tomllib.loads``, with every way TOML text can fail as a ValueError: tables or arrays
    nested too deeply for the parser, and integers of too many digits, included."""
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise ValueError("TOML nested too deeply") from None


def from_dict(data: dict, default_name: str = "custom") -> Config:
    """The config of ``data`` (a TOML file's tables, or a stored ``Config.to_dict()``), checked
    as a file's would be: a UsageError naming the first problem."""
    if not isinstance(data, dict):
        raise UsageError(f"a config must be a table of tables, got {_type_name(data)}")
    unknown = sorted(set(data) - {"name", "network", *TABLES}, key=str)
    if unknown:
        raise UsageError(
            f"unknown config entry {quoted(unknown[0])}; valid: name and the tables "
            f"[{'], ['.join(('device', 'training', 'network', 'matrix'))}]"
        )
    tables = {key: data.get(key, {}) for key in (*TABLES, "network")}
    for key, table in tables.items():
        if not isinstance(table, dict):
            raise UsageError(
                f"config entry {quoted(key)} must be a table [{key}], got {_type_name(table)}"
            )
    config = Config(
        name=_name(data.get("name", default_name)),
        device=_settings("device", tables["device"]),
        training=_settings("training", tables["training"]),
        network=_network(tables["network"]),
        matrix=_settings("matrix", tables["matrix"]),
    )
    _check_consistency(config)
    return config


def with_overrides(config: Config, recipes=None, apis=None, repeats=None, budget=None) -> Config:
    """The command line's --recipes/--apis/--repeats/--budget on top of a loaded config. Rounds
    asked for by number (--repeats) without a --budget run as asked: the config's budget is off."""
    if repeats is not None and budget is None:
        budget = ""
    changes = {
        key: value
        for key, value in (
            ("recipes", recipes),
            ("apis", apis),
            ("repeats", repeats),
            ("budget", budget),
        )
        if value is not None
    }
    if not changes:
        return config
    matrix = _settings("matrix", {**_jsonable(dataclasses.asdict(config.matrix)), **changes})
    updated = dataclasses.replace(config, matrix=matrix)
    _check_consistency(updated)
    return updated


SWEEPABLE_TABLES = (
    "device",
    "training",
    "network",
)  # what a run measures under; [matrix] is what runs


def with_setting(config: Config, setting: str, text: str) -> Config:
    """``config`` with one setting ("training.batch_size") set from its command-line text ("256"),
    checked like a config file's value."""
    table, _, key = setting.partition(".")
    if table not in SWEEPABLE_TABLES or not key:
        raise UsageError(
            f"cannot vary {quoted(setting)}: name a setting as TABLE.KEY with TABLE one of "
            f"{', '.join(SWEEPABLE_TABLES)} (e.g. training.batch_size)"
        )
    values = config.to_dict()
    if key not in values[table]:
        raise UsageError(
            f"cannot vary {quoted(setting)}: [{table}] has no key {quoted(key)}; valid keys: "
            f"{', '.join(values[table])}"
        )
    return from_dict({**values, table: {**values[table], key: _literal(text)}}, config.name)


def _literal(text: str):
    """A TOML literal (256, 5e-4, true, [1, 2]) as its value; anything else as a string."""
    try:
        return _parse_toml(f"value = {text}")["value"]
    except ValueError:
        return text


def check_batch_fits(training: TrainingSettings, data) -> None:
    """A UsageError when the loaded ``data`` (a ``datasets.Dataset``) has fewer training images than
    one batch. Loading the config checks the sources of fixed size; the runner calls this once it
    has loaded the data, for ``mnist`` and ``auto``, whose size is the file's."""
    _check_batch_size(training.batch_size, len(data.x_train), data.name)


def largest_seed(repeats: int) -> int:
    """The largest [training] seed whose every round seed (``plan.repeat_seed``) numpy accepts."""
    seed_stride = plan.repeat_seed(1, 0) - plan.repeat_seed(
        0, 0
    )  # repeat_seed is linear in the seed
    return (MAX_RUN_SEED - plan.repeat_seed(0, repeats)) // seed_stride


def _name(name) -> str:
    # The name becomes part of the results folder's name.
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise UsageError(f"config name {quoted(name)} must be letters, digits, '_', '.' or '-'")
    if len(name) > MAX_NAME_LENGTH:
        raise UsageError(
            f"config name must be at most {MAX_NAME_LENGTH} characters, got {len(name)}: "
            f"it is part of the results folder's name"
        )
    return name


def _settings(table: str, values: dict):
    cls = TABLES[table]
    defaults = field_defaults(cls)
    unknown = sorted(set(values) - set(defaults))
    if unknown:
        raise UsageError(
            f"unknown key {quoted(unknown[0])} in [{table}]; valid keys: {', '.join(defaults)}"
        )
    checked = {key: _checked(table, key, value, defaults[key]) for key, value in values.items()}
    return cls(**checked)


def _checked(table: str, key: str, value, default):
    """``value`` converted to the type of ``default``, or a UsageError naming ``[table] key``."""
    where = f"[{table}] {key}"
    if (table, key) == ("matrix", "recipe_paths"):
        return recipes.use(value)  # loads them: a bad one is a UsageError naming its file
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise UsageError(f"{where} must be true or false, got {quoted(value)}")
    elif isinstance(default, (int, float)):
        value = _checked_number(table, key, value, type(default))
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise UsageError(f"{where} must be a string, got {_type_name(value)} {quoted(value)}")
        choices = CHOICES.get((table, key))
        if choices and value not in choices:
            raise UsageError(
                f"{where} = {quoted(value)} is not valid; choose one of {', '.join(choices)}"
            )
    elif isinstance(default, tuple):
        if (
            not isinstance(value, list)
            or not all(isinstance(item, str) for item in value)
            or not value
        ):
            raise UsageError(f"{where} must be a non-empty list of strings, got {quoted(value)}")
        value = tuple(dict.fromkeys(value))  # repeated names would run twice per round
    return value


def _checked_number(table: str, key: str, value, kind: type):
    where = f"[{table}] {key}"
    if not _is_number(value, integer=kind is int):
        raise UsageError(
            f"{where} must be {'an integer' if kind is int else 'a number'}, "
            f"got {_type_name(value)} {quoted(value)}"
        )
    value = kind(value)
    if not math.isfinite(value):  # TOML allows nan and inf
        raise UsageError(f"{where} must be a finite number, got {value}")
    if (table, key) in POSITIVE and value <= 0:
        raise UsageError(f"{where} must be positive, got {value}")
    if value < 0:
        raise UsageError(f"{where} must not be negative, got {value}")
    _check_maximum(table, key, value, value)
    return value


def _check_maximum(table: str, key: str, largest, given, unit: str = "") -> None:
    """``largest`` (the value, or a list's largest entry) within ``MAXIMA``; ``given`` is what
    was set."""
    if (table, key) not in MAXIMA:
        return
    maximum, reason = MAXIMA[table, key]
    if largest > maximum:
        raise UsageError(
            f"[{table}] {key} must be at most {maximum}{unit}, got {quoted(given)}: {reason}"
        )


def _network(values: dict) -> dict:
    checked = {}
    for key, value in values.items():
        if key in NETWORK_FIXED:
            raise UsageError(f"[network] {key} cannot be set: {NETWORK_FIXED[key]}")
        if key not in NETWORK_DEFAULTS:
            raise UsageError(
                f"unknown key {quoted(key)} in [network]; valid keys: {', '.join(NETWORK_DEFAULTS)}"
            )
        default = NETWORK_DEFAULTS[key]
        if isinstance(default, tuple):
            checked[key] = _layer_sizes(key, value)
        else:
            checked[key] = _checked("network", key, value, default)
    network = {**NETWORK_DEFAULTS, **checked}  # complete, so that equal networks hash equally
    _check_network_spec(network)
    return network


def _check_network_spec(network: dict) -> None:
    """What NetworkSpec itself refuses: layer counts that disagree, an output of the wrong size."""
    try:
        NetworkSpec(**network)
    except (TypeError, ValueError) as error:
        raise UsageError(
            f"[network] is not a valid NetworkSpec: {' '.join(str(error).split())}"
        ) from None


def _layer_sizes(key: str, value):
    single = key in LAYER_TUPLES and _is_number(value, integer=True)
    items = [value] if single else value
    if (
        not isinstance(items, list)
        or not items
        or not all(_is_number(item, integer=True) for item in items)
    ):
        kind = "a list of integers or one integer" if key in LAYER_TUPLES else "a list of integers"
        raise UsageError(f"[network] {key} must be {kind}, got {quoted(value)}")
    if any(item <= 0 for item in items):
        raise UsageError(f"[network] {key} must be positive sizes, got {quoted(value)}")
    _check_maximum("network", key, max(items), value, unit=" per layer")
    return value if single else tuple(items)


def _check_consistency(config: Config) -> None:
    training, matrix = config.training, config.matrix
    if training.warmup_epochs >= training.epochs:
        raise UsageError(
            f"[training] warmup_epochs ({training.warmup_epochs}) must be less than epochs "
            f"({training.epochs}): at least one epoch has to be timed"
        )
    if 0 < training.paired_blocks_most < training.paired_blocks:
        raise UsageError(
            f"[training] paired_blocks_most ({training.paired_blocks_most}) must be 0 or at "
            f"least paired_blocks ({training.paired_blocks}): it is how far a process may go "
            f"past them"
        )
    _check_seed(training.seed, most_rounds(matrix))
    _check_data_settings(training)
    known = recipes.known()
    for recipe in matrix.recipes:
        if recipe not in known:
            raise UsageError(
                f"unknown recipe {quoted(recipe)} in [matrix] recipes; valid recipes: "
                f"{', '.join(known)}"
            )
    if not matrix.apis:
        raise UsageError(keras_api.none_installed_reason())
    for api in matrix.apis:
        if api not in APIS:
            raise UsageError(
                f"unknown API {quoted(api)} in [matrix] apis; valid APIs: {', '.join(APIS)}"
            )
        if missing := keras_api.not_installed_reason(api):
            raise UsageError(missing)
    if not plan.combinations(matrix.recipes, matrix.apis):
        raise UsageError(
            f"no recipe in [matrix] has a variant for the APIs {', '.join(matrix.apis)}: "
            f"nothing to run"
        )
    plan.check_plan_size(matrix)
    z_dim = config.network["z_dim"]
    if matrix.save_artifacts and z_dim != 2:
        raise UsageError(
            f"[matrix] save_artifacts needs [network] z_dim = 2 (the pictures are of a 2-D latent "
            f"space), got z_dim = {z_dim}"
        )


def most_rounds(matrix: MatrixSettings) -> int:
    """The most rounds ``matrix`` can run: its repeats, or under a budget the most a budget
    plans; a UsageError for a budget that is not a duration."""
    if budget_module.budget_seconds(matrix.budget) is None:
        return matrix.repeats
    return budget_module.MAX_BUDGET_ROUNDS


def _check_seed(seed: int, repeats: int) -> None:
    if plan.repeat_seed(seed, repeats) > MAX_RUN_SEED:
        raise UsageError(
            f"[training] seed must be at most {largest_seed(repeats)} with [matrix] repeats = "
            f"{repeats}, got {seed}: round r runs under seed * 1000 + r, and numpy takes seeds "
            f"up to {MAX_RUN_SEED}"
        )


def _check_data_settings(training: TrainingSettings) -> None:
    if training.mnist_path and training.dataset not in ("mnist", "auto"):
        raise UsageError(
            f'[training] mnist_path is read only for dataset = "mnist" or "auto", '
            f"but dataset = {quoted(training.dataset)}: remove one of them"
        )
    size = datasets.fixed_training_size(training.dataset)
    if size is not None:
        _check_batch_size(training.batch_size, size, training.dataset)


def _check_batch_size(batch_size: int, training_images: int, dataset: str) -> None:
    if batch_size > training_images:
        raise UsageError(
            f"[training] batch_size must be at most {training_images}, the training images of "
            f"dataset {quoted(dataset)}, got {batch_size}: every batch would be the whole set, "
            f"smaller than asked"
        )


def _is_number(value, integer: bool) -> bool:
    # TOML booleans are Python bools, which are ints: ``true`` is not a batch size.
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (not integer and isinstance(value, float))


def _type_name(value) -> str:
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        dict: "table",
    }.get(type(value), type(value).__name__)


def _jsonable(values: dict) -> dict:
    return {
        key: list(value) if isinstance(value, tuple) else value for key, value in values.items()
    }
