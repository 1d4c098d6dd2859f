"""Config validation: every bad config is one line on stderr, exit status 2, no results folder."""

import ast
import dataclasses
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import datasets, recipes
from bench.__main__ import main
from bench.config import plan
from bench.config import settings as config
from bench.errors import UsageError
from vae_impls import keras_api

VALID = """
name = "tiny"

[device]
device = "cpu"

[training]
dataset = "synthetic"
batch_size = 16
epochs = 2
warmup_epochs = 1
steps_per_epoch = 2
timeout_seconds = 60

[network]
encoder_filters = [4, 8, 8]
decoder_filters = [8, 4, 1]

[matrix]
recipes = ["plain_ae", "kl_layer"]
apis = ["keras3"]
repeats = 1
"""


def write_config(tmp_path, text, name="config.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def edited(old, new, text=VALID):
    assert old in text, old
    return text.replace(old, new, 1)


def with_line(table, line):
    """VALID with ``line`` added at the top of ``[table]``."""
    return edited(f"[{table}]\n", f"[{table}]\n{line}\n")


def run_cli(args, capsys):
    status = main(["run", *args])
    return status, capsys.readouterr().err


def assert_rejected(tmp_path, capsys, text, *fragments):
    results = tmp_path / "results"
    status, err = run_cli(
        ["--config", str(write_config(tmp_path, text)), "--results-dir", str(results)], capsys
    )
    assert status == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err
    assert not results.exists(), "a rejected config must not create a results folder"


REJECTIONS = {
    "unknown recipe": (
        edited('"kl_layer"]', '"kl_layr"]'),
        "unknown recipe 'kl_layr'",
        "valid recipes: kl_layer",
    ),
    "unknown API": (
        edited('apis = ["keras3"]', 'apis = ["keras4"]'),
        "unknown API 'keras4'",
        "valid APIs: keras2, keras3, keras3-port",
    ),
    "zero batch size": (
        edited("batch_size = 16", "batch_size = 0"),
        "[training] batch_size must be positive",
    ),
    "negative epochs": (edited("epochs = 2", "epochs = -2"), "[training] epochs must be positive"),
    "zero repeats": (edited("repeats = 1", "repeats = 0"), "[matrix] repeats must be positive"),
    "zero z_dim": (edited("[network]", "[network]\nz_dim = 0"), "[network] z_dim must be positive"),
    "zero filters": (
        edited("[4, 8, 8]", "[4, 0, 8]"),
        "[network] encoder_filters must be positive sizes",
    ),
    "negative steps": (
        edited("steps_per_epoch = 2", "steps_per_epoch = -1"),
        "must not be negative",
    ),
    "unknown top-level key": ("colour = 'red'\n" + VALID, "unknown config entry 'colour'"),
    "unknown table": (VALID + "\n[optimizer]\nname = 'adam'\n", "unknown config entry 'optimizer'"),
    "unknown device key": (
        edited('device = "cpu"', 'device = "cpu"\ngpu = 1'),
        "unknown key 'gpu' in [device]",
    ),
    "unknown training key": (
        edited("batch_size = 16", "bacth_size = 16"),
        "unknown key 'bacth_size' in [training]",
        "valid keys: dataset",
    ),
    "unknown network key": (
        edited("[network]", "[network]\nlayers = 3"),
        "unknown key 'layers' in [network]",
    ),
    "unknown matrix key": (edited("repeats = 1", "repeat = 1"), "unknown key 'repeat' in [matrix]"),
    "string for an int": (
        edited("batch_size = 16", 'batch_size = "16"'),
        "[training] batch_size must be an integer",
    ),
    "bool for an int": (
        edited("batch_size = 16", "batch_size = true"),
        "[training] batch_size must be an integer",
    ),
    "float for an int": (
        edited("epochs = 2", "epochs = 2.5"),
        "[training] epochs must be an integer",
    ),
    "string for a bool": (
        edited('device = "cpu"', 'device = "cpu"\nmemory_growth = "yes"'),
        "[device] memory_growth must be true or false",
    ),
    "string for a list": (
        edited('apis = ["keras3"]', 'apis = "keras3"'),
        "[matrix] apis must be a non-empty list",
    ),
    "string for a number": (
        edited("[network]", '[network]\nlearning_rate = "fast"'),
        "[network] learning_rate must be a number",
    ),
    "string for layer sizes": (
        edited("[4, 8, 8]", '"4, 8, 8"'),
        "[network] encoder_filters must be a list of integers",
    ),
    "table as a value": (
        edited('device = "cpu"', "device = {kind = 'cpu'}"),
        "[device] device must be a string",
    ),
    "value for a table": (
        edited('[device]\ndevice = "cpu"', "device = 'cpu'"),
        "'device' must be a table",
    ),
    "unknown device": (
        edited('device = "cpu"', 'device = "tpu"'),
        "device = 'tpu' is not valid",
        "cpu, gpu",
    ),
    "unknown xla mode": (
        edited('device = "cpu"', 'device = "cpu"\nxla = "on"'),
        "xla = 'on' is not valid",
    ),
    "unknown dataset": (
        edited('"synthetic"', '"cifar"'),
        "dataset = 'cifar' is not valid",
        "mnist5k",
    ),
    "warm-up as long as training": (
        edited("warmup_epochs = 1", "warmup_epochs = 2"),
        "warmup_epochs (2) must be less than epochs (2)",
    ),
    "more blocks at most than at least": (
        with_line("training", "paired_blocks = 8\npaired_blocks_most = 4"),
        "paired_blocks_most (4) must be 0 or at least paired_blocks (8)",
    ),
    "fixed network field": (
        edited("[network]", "[network]\njit_compile = true"),
        "[network] jit_compile cannot be set",
        "[device] jit_compile",
    ),
    "pictures of a 3-D latent space": (
        edited("repeats = 1", "repeats = 1\nsave_artifacts = true").replace(
            "[network]", "[network]\nz_dim = 3"
        ),
        "save_artifacts needs",
    ),
    "nothing to run": (
        edited('apis = ["keras3"]', 'apis = ["keras3-port"]').replace(
            '"plain_ae", "kl_layer"', '"plain_ae"'
        ),
        "nothing to run",
    ),
    "bad name": (edited('name = "tiny"', 'name = "../up"'), "config name '../up'"),
    "not TOML": ("name = \n", "cannot read config"),
    "unknown activation": (
        with_line("network", 'activation = "tanh"'),
        "activation = 'tanh' is not valid",
        "leaky_relu, relu, selu",
    ),
    "unknown optimizer": (
        with_line("network", 'optimizer = "rmsprop"'),
        "optimizer = 'rmsprop' is not valid",
        "adam, sgd",
    ),
    "layer counts that disagree": (
        with_line("network", "encoder_strides = [1, 2]"),
        "[network] is not a valid NetworkSpec",
        "encoder_strides has 2 entries",
    ),
    "decoder output of the wrong size": (
        with_line("network", "decoder_strides = [2, 2, 2]"),
        "[network] is not a valid NetworkSpec",
        "give 56x56 images",
        "not the input's 28x28",
    ),
}

# Values no benchmark needs, or that cannot run as asked: each refused with the reason.
MNIST5K = edited('"synthetic"', '"mnist5k"')
OUT_OF_RANGE = {
    "round seeds past 2**32-1": (
        with_line("training", "seed = 20240101"),
        "[training] seed must be at most 4294967 with [matrix] repeats = 1, got 20240101",
        "seed * 1000 + r",
        "up to 4294967295",
    ),
    "nan learning rate": (
        with_line("network", "learning_rate = nan"),
        "[network] learning_rate must be a finite number, got nan",
    ),
    "infinite learning rate": (
        with_line("network", "learning_rate = inf"),
        "[network] learning_rate must be a finite number, got inf",
    ),
    "nan fact": (
        with_line("network", "fact = nan"),
        "[network] fact must be a finite number, got nan",
    ),
    "minus infinite fact": (
        with_line("network", "fact = -inf"),
        "[network] fact must be a finite number",
    ),
    "negative fact": (with_line("network", "fact = -0.5"), "[network] fact must not be negative"),
    "huge fact": (
        with_line("network", "fact = 1e6"),
        "[network] fact must be at most 1000.0",
        "swamps the reconstruction loss",
    ),
    "huge learning rate": (
        with_line("network", "learning_rate = 100.0"),
        "[network] learning_rate must be at most 10.0",
        "diverge",
    ),
    "too many repeats": (
        edited("repeats = 1", "repeats = 1001"),
        "[matrix] repeats must be at most 1000, got 1001",
        "more rounds than a benchmark",
    ),
    "too many epochs": (
        edited("epochs = 2", "epochs = 100000"),
        "[training] epochs must be at most 10000",
    ),
    "too many steps": (
        edited("steps_per_epoch = 2", "steps_per_epoch = 1000000000"),
        "[training] steps_per_epoch must be at most 1000000",
    ),
    "batch beyond MNIST": (
        edited("batch_size = 16", "batch_size = 100000"),
        "[training] batch_size must be at most 60000",
        "MNIST's whole training set",
    ),
    "batch beyond the synthetic set": (
        edited("batch_size = 16", "batch_size = 513"),
        "[training] batch_size must be at most 512, the training images of "
        "dataset 'synthetic', got 513",
    ),
    "batch beyond mnist5k": (
        edited("batch_size = 16", "batch_size = 5000", MNIST5K),
        "[training] batch_size must be at most 4500",
        "dataset 'mnist5k'",
    ),
    "timeout over a day": (
        edited("timeout_seconds = 60", "timeout_seconds = 100000"),
        "[training] timeout_seconds must be at most 86400",
        "a day",
    ),
    "huge z_dim": (with_line("network", "z_dim = 1000"), "[network] z_dim must be at most 784"),
    "huge filter count": (
        edited("[4, 8, 8]", "[4, 100000, 8]"),
        "[network] encoder_filters must be at most 4096 per layer, got [4, 100000, 8]",
    ),
    "kernel beyond the image": (
        with_line("network", "encoder_kernel_sizes = 29"),
        "[network] encoder_kernel_sizes must be at most 28 per layer",
    ),
    "stride beyond the image": (
        with_line("network", "decoder_strides = [2, 2, 100]"),
        "[network] decoder_strides must be at most 28 per layer",
    ),
    "GPU memory beyond any GPU": (
        with_line("device", "gpu_memory_limit_mb = 2000000"),
        "[device] gpu_memory_limit_mb must be at most 1048576",
    ),
    "too many intra-op threads": (
        with_line("device", "intra_op_threads = 100000"),
        "[device] intra_op_threads must be at most 4096",
    ),
    "too many inter-op threads": (
        with_line("device", "inter_op_threads = 100000"),
        "[device] inter_op_threads must be at most 4096",
    ),
    "overlong name": (
        edited('name = "tiny"', f'name = "{"n" * 101}"'),
        "config name must be at most 100 characters",
    ),
    "mnist_path nobody reads": (
        with_line("training", 'mnist_path = "mnist.npz"'),
        "[training] mnist_path is read only for dataset",
        "dataset = 'synthetic'",
    ),
}


@pytest.mark.parametrize(
    "text, fragments",
    [(text, fragments) for text, *fragments in REJECTIONS.values()],
    ids=list(REJECTIONS),
)
def test_bad_config_is_rejected_before_anything_runs(tmp_path, capsys, text, fragments):
    assert_rejected(tmp_path, capsys, text, *fragments)


@pytest.mark.parametrize(
    "text, fragments",
    [(text, fragments) for text, *fragments in OUT_OF_RANGE.values()],
    ids=list(OUT_OF_RANGE),
)
def test_out_of_range_value_is_rejected_with_the_reason(tmp_path, capsys, text, fragments):
    assert_rejected(tmp_path, capsys, text, *fragments)


@pytest.mark.parametrize(
    "old, new",
    [
        ("batch_size = 16", "batch_size = 512"),  # the whole synthetic set
        ("repeats = 1", "repeats = 1000"),
        ("[training]", "[training]\nseed = 4294967"),  # round 1: 4294967001
        ("[network]", "[network]\nfact = 0\nlearning_rate = 10"),
        ("[network]", "[network]\nz_dim = 784\nencoder_kernel_sizes = 28"),
    ],
)
def test_values_at_the_bounds_are_accepted(tmp_path, old, new):
    config.load(str(write_config(tmp_path, edited(old, new))))


@pytest.mark.parametrize("repeats", [1, 5, 999, 1000])
def test_largest_seed_keeps_every_round_seed_within_numpy(repeats):
    largest = config.largest_seed(repeats)
    assert plan.repeat_seed(largest, repeats) <= 2**32 - 1 < plan.repeat_seed(largest + 1, repeats)


def test_more_repeats_on_the_command_line_are_checked_against_the_seed(tmp_path):
    loaded = config.load(str(write_config(tmp_path, with_line("training", "seed = 4294967"))))
    with pytest.raises(
        UsageError, match=r"seed must be at most 4294966 with \[matrix\] repeats = 1000"
    ):
        config.with_overrides(loaded, repeats=1000)


def test_batch_size_is_checked_against_the_loaded_training_set(tmp_path):
    training = config.load(str(write_config(tmp_path, VALID))).training  # batch_size = 16
    config.check_batch_fits(training, datasets.load("synthetic", synthetic_size=16))
    with pytest.raises(
        UsageError, match="batch_size must be at most 15, the training images of dataset"
    ):
        config.check_batch_fits(training, datasets.load("synthetic", synthetic_size=15))


def modules_imported_by(statement: str, watched: list) -> list:
    """Which of ``watched`` a fresh interpreter holds after running ``statement``."""
    probe = f"import sys; {statement}; print(sorted(set({watched!r}) & set(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return ast.literal_eval(done.stdout.strip())


def test_loading_a_config_imports_neither_tensorflow_nor_keras():
    loaded = modules_imported_by(
        "import bench.config.settings", ["tensorflow", "keras", "tf_keras"]
    )
    assert loaded == []


def test_network_spec_module_needs_neither_tensorflow_nor_numpy():
    assert modules_imported_by("import vae_impls.network_spec", ["tensorflow", "numpy"]) == []


def test_missing_config_lists_the_builtin_ones(tmp_path, capsys):
    status, err = run_cli(
        ["--config", "no-such-config", "--results-dir", str(tmp_path / "r")], capsys
    )
    assert status == 2 and "default, " in err and "quick" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--quick", "--config", "default"], "either --quick or --config"),
        (["--resume", "somewhere", "--repeats", "2"], "cannot change it"),
        (["--recipes", "nope"], "unknown recipe 'nope'"),
        (["--apis", "keras4"], "unknown API 'keras4'"),
        (["--repeats", "0"], "repeats must be positive"),
        (["--repeats", "1000000000"], "[matrix] repeats must be at most 1000, got 1000000000"),
    ],
)
def test_bad_command_line_is_rejected(tmp_path, capsys, args, fragment):
    status, err = run_cli([*args, "--results-dir", str(tmp_path / "r")], capsys)
    assert status == 2 and fragment in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("name", ["default", "quick", "ci"])
def test_builtin_configs_are_valid(name):
    loaded = config.load(name)
    assert loaded.name == name
    assert loaded.training.warmup_epochs == 1
    assert plan.make_plan(loaded)


def test_default_config_runs_every_pair_in_three_rounds_at_least():
    loaded = config.load("default")
    assert loaded.matrix.repeats >= 3
    assert set(loaded.matrix.recipes) == set(recipes.known())
    assert loaded.matrix.apis == keras_api.installed_apis()  # every installed backend


def test_config_is_found_by_path_and_by_name(tmp_path):
    path = write_config(tmp_path, VALID, name="mine.toml")
    assert config.load(str(path)).name == "tiny"
    assert config.load("quick").name == "quick"


def test_name_defaults_to_the_file_stem(tmp_path):
    path = write_config(tmp_path, edited('name = "tiny"\n', ""), name="unnamed.toml")
    assert config.load(str(path)).name == "unnamed"


def test_absent_keys_take_the_defaults(tmp_path):
    loaded = config.load(str(write_config(tmp_path, "")))
    assert loaded.training == config.TrainingSettings() and loaded.matrix == config.MatrixSettings()
    assert loaded.network == config.NETWORK_DEFAULTS


def test_network_keys_are_the_networkspec_fields():
    assert {
        "encoder_filters",
        "z_dim",
        "fact",
        "learning_rate",
        "activation",
        "batch_norm",
        "dropout",
    } <= set(config.NETWORK_DEFAULTS)
    assert not set(config.NETWORK_FIXED) & set(config.NETWORK_DEFAULTS)


def test_the_default_config_names_every_key_it_documents():
    """README and docs/method.md send readers to default.toml for every key: each section's
    fields appear there, set or commented out."""
    text = (config.CONFIG_DIR / "default.toml").read_text()
    named = set(re.findall(r"^#? ?(\w+) =", text, flags=re.MULTILINE))
    sections = (config.DeviceSettings, config.TrainingSettings, config.MatrixSettings)
    fields = {field.name for section in sections for field in dataclasses.fields(section)}
    assert fields - named == set()
    assert set(config.NETWORK_DEFAULTS) - named == set()


def test_one_integer_sets_every_layer(tmp_path):
    loaded = config.load(
        str(write_config(tmp_path, with_line("network", "encoder_kernel_sizes = 5")))
    )
    assert loaded.network["encoder_kernel_sizes"] == 5


def test_overrides_replace_the_matrix_only(tmp_path):
    loaded = config.load(str(write_config(tmp_path, VALID)))
    changed = config.with_overrides(
        loaded, recipes=["plain_ae"], apis=["keras2", "keras3"], repeats=3
    )
    assert changed.matrix.recipes == ("plain_ae",) and changed.matrix.apis == ("keras2", "keras3")
    assert changed.matrix.repeats == 3 and changed.training == loaded.training
    assert changed.settings_hash == loaded.settings_hash


def test_writing_out_a_default_keeps_the_settings_hash(tmp_path):
    implicit = config.load(str(write_config(tmp_path, VALID)))
    explicit = config.load(
        str(write_config(tmp_path, edited("[network]", "[network]\nz_dim = 2"), "explicit.toml"))
    )
    assert explicit.settings_hash == implicit.settings_hash


def test_the_compile_switch_is_hashed_only_when_on(tmp_path):
    """Folders and baselines from before the key keep their hash; compiling is another setting."""
    implicit = config.load(str(write_config(tmp_path, VALID)))
    off = config.load(str(write_config(tmp_path, with_line("device", "jit_compile = false"), "o")))
    on = config.load(str(write_config(tmp_path, with_line("device", "jit_compile = true"), "n")))
    assert off.settings_hash == implicit.settings_hash != on.settings_hash
    assert config.from_dict(on.to_dict()).device.jit_compile is True


def test_the_compile_switch_is_asked_by_the_key_or_by_xla_as_before():
    assert not config.jit_compile_asked(config.DeviceSettings())
    assert config.jit_compile_asked(config.DeviceSettings(jit_compile=True))
    assert config.jit_compile_asked(config.DeviceSettings(xla="jit_compile"))
    assert not config.jit_compile_asked(config.DeviceSettings(xla="autojit"))


def test_the_compile_switch_can_be_swept(tmp_path):
    loaded = config.load(str(write_config(tmp_path, VALID)))
    assert config.with_setting(loaded, "device.jit_compile", "true").device.jit_compile is True
    with pytest.raises(UsageError, match="jit_compile must be true or false"):
        config.with_setting(loaded, "device.jit_compile", "yes")


def test_without_keras_run_says_so_in_one_line(tmp_path, capsys, monkeypatch):
    """On a machine where Keras cannot be imported no API is installed: the run names what is
    missing, not an empty list of APIs."""
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args):
        return None if name in ("keras", "tf_keras") else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    status, err = run_cli(
        ["--config", str(write_config(tmp_path, edited('apis = ["keras3"]\n', "")))], capsys
    )
    assert status != 0 and len(err.strip().splitlines()) == 1
    # (torch is named too where the optional extra is not installed)
    assert "no Keras API can run here: tf_keras, keras" in err and "cannot be imported" in err


def test_settings_hash_follows_the_settings(tmp_path):
    loaded = config.load(str(write_config(tmp_path, VALID)))
    same = config.from_dict(loaded.to_dict())
    other = config.load(
        str(write_config(tmp_path, edited("batch_size = 16", "batch_size = 32"), "other.toml"))
    )
    assert same == loaded and same.settings_hash == loaded.settings_hash
    assert other.settings_hash != loaded.settings_hash


def test_not_applicable_pairs_are_dropped_but_failing_ones_run():
    pairs = plan.combinations(
        ["plain_ae", "kl_layer", "closure_loss"], ["keras2", "keras3", "keras3-port"]
    )
    assert ("plain_ae", "keras3-port") not in pairs and ("closure_loss", "keras3-port") not in pairs
    assert ("kl_layer", "keras3") in pairs and (
        "closure_loss",
        "keras2",
    ) in pairs  # "fails": run anyway
    assert ("kl_layer", "keras3-port") in pairs


def test_unknown_recipe_via_the_api_is_a_usage_error():
    with pytest.raises(UsageError, match="valid recipes"):
        config.from_dict({"matrix": {"recipes": ["nope"]}})
