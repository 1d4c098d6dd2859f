"""Config validation: every bad config is one line on stderr, exit status 2, and no results folder."""
import pytest

from bench import config, plan
from bench.__main__ import main
from bench.errors import UsageError

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


def run_cli(args, capsys):
    status = main(["run", *args])
    return status, capsys.readouterr().err


def assert_rejected(tmp_path, capsys, text, *fragments):
    results = tmp_path / "results"
    status, err = run_cli(["--config", str(write_config(tmp_path, text)), "--results-dir", str(results)], capsys)
    assert status == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err
    assert not results.exists(), "a rejected config must not create a results folder"


REJECTIONS = {
    "unknown recipe": (edited('"kl_layer"]', '"kl_layr"]'), "unknown recipe 'kl_layr'", "valid recipes: kl_layer"),
    "unknown API": (edited('apis = ["keras3"]', 'apis = ["keras4"]'), "unknown API 'keras4'",
                    "valid APIs: keras2, keras3, keras3-port"),
    "zero batch size": (edited("batch_size = 16", "batch_size = 0"), "[training] batch_size must be positive"),
    "negative epochs": (edited("epochs = 2", "epochs = -2"), "[training] epochs must be positive"),
    "zero repeats": (edited("repeats = 1", "repeats = 0"), "[matrix] repeats must be positive"),
    "zero z_dim": (edited("[network]", "[network]\nz_dim = 0"), "[network] z_dim must be positive"),
    "zero filters": (edited("[4, 8, 8]", "[4, 0, 8]"), "[network] encoder_filters must be positive sizes"),
    "negative steps": (edited("steps_per_epoch = 2", "steps_per_epoch = -1"), "must not be negative"),
    "unknown top-level key": ("colour = 'red'\n" + VALID, "unknown config entry 'colour'"),
    "unknown table": (VALID + "\n[optimizer]\nname = 'adam'\n", "unknown config entry 'optimizer'"),
    "unknown device key": (edited('device = "cpu"', 'device = "cpu"\ngpu = 1'), "unknown key 'gpu' in [device]"),
    "unknown training key": (edited("batch_size = 16", "bacth_size = 16"), "unknown key 'bacth_size' in [training]",
                             "valid keys: dataset"),
    "unknown network key": (edited("[network]", "[network]\nlayers = 3"), "unknown key 'layers' in [network]"),
    "unknown matrix key": (edited("repeats = 1", "repeat = 1"), "unknown key 'repeat' in [matrix]"),
    "string for an int": (edited("batch_size = 16", 'batch_size = "16"'), "[training] batch_size must be an integer"),
    "bool for an int": (edited("batch_size = 16", "batch_size = true"), "[training] batch_size must be an integer"),
    "float for an int": (edited("epochs = 2", "epochs = 2.5"), "[training] epochs must be an integer"),
    "string for a bool": (edited('device = "cpu"', 'device = "cpu"\nmemory_growth = "yes"'),
                          "[device] memory_growth must be true or false"),
    "string for a list": (edited('apis = ["keras3"]', 'apis = "keras3"'), "[matrix] apis must be a non-empty list"),
    "string for a number": (edited("[network]", '[network]\nlearning_rate = "fast"'),
                            "[network] learning_rate must be a number"),
    "string for layer sizes": (edited("[4, 8, 8]", '"4, 8, 8"'),
                               "[network] encoder_filters must be a list of integers"),
    "table as a value": (edited('device = "cpu"', "device = {kind = 'cpu'}"), "[device] device must be a string"),
    "value for a table": (edited("[device]\ndevice = \"cpu\"", "device = 'cpu'"), "'device' must be a table"),
    "unknown device": (edited('device = "cpu"', 'device = "tpu"'), "device = 'tpu' is not valid",
                       "cpu, gpu"),
    "unknown xla mode": (edited('device = "cpu"', 'device = "cpu"\nxla = "on"'), "xla = 'on' is not valid"),
    "unknown dataset": (edited('"synthetic"', '"cifar"'), "dataset = 'cifar' is not valid", "mnist5k"),
    "warm-up as long as training": (edited("warmup_epochs = 1", "warmup_epochs = 2"),
                                    "warmup_epochs (2) must be less than epochs (2)"),
    "fixed network field": (edited("[network]", "[network]\njit_compile = true"),
                            "[network] jit_compile cannot be set", "[device] xla"),
    "pictures of a 3-D latent space": (edited("repeats = 1", "repeats = 1\nsave_artifacts = true")
                                       .replace("[network]", "[network]\nz_dim = 3"), "save_artifacts needs"),
    "nothing to run": (edited('apis = ["keras3"]', 'apis = ["keras3-port"]').replace('"plain_ae", "kl_layer"',
                                                                                      '"plain_ae"'), "nothing to run"),
    "bad name": (edited('name = "tiny"', 'name = "../up"'), "config name '../up'"),
    "not TOML": ("name = \n", "cannot read config"),
}


@pytest.mark.parametrize("text, fragments", [(text, fragments) for text, *fragments in REJECTIONS.values()],
                         ids=list(REJECTIONS))
def test_bad_config_is_rejected_before_anything_runs(tmp_path, capsys, text, fragments):
    assert_rejected(tmp_path, capsys, text, *fragments)


# These two reach the preflight subprocess, which constructs the NetworkSpec with TensorFlow.
@pytest.mark.parametrize("line, fragment", [('activation = "tanh"', "unknown activation 'tanh'"),
                                            ("encoder_strides = [1, 2]", "encoder_strides has 2 entries")])
def test_invalid_network_spec_is_rejected_by_the_preflight(tmp_path, capsys, line, fragment):
    assert_rejected(tmp_path, capsys, edited("[network]", f"[network]\n{line}"),
                    "[network] is not a valid NetworkSpec", fragment)


def test_missing_config_lists_the_builtin_ones(tmp_path, capsys):
    status, err = run_cli(["--config", "no-such-config", "--results-dir", str(tmp_path / "r")], capsys)
    assert status == 2 and "default, " in err and "quick" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("args, fragment", [
    (["--quick", "--config", "default"], "either --quick or --config"),
    (["--resume", "somewhere", "--repeats", "2"], "cannot change it"),
    (["--recipes", "nope"], "unknown recipe 'nope'"),
    (["--apis", "keras4"], "unknown API 'keras4'"),
    (["--repeats", "0"], "repeats must be positive"),
])
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


def test_default_config_runs_every_pair_at_least_five_times():
    loaded = config.load("default")
    assert loaded.matrix.repeats >= 5
    assert set(loaded.matrix.recipes) == set(plan.known_recipes()) and len(loaded.matrix.apis) == 3


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
    assert {"encoder_filters", "z_dim", "fact", "learning_rate", "activation", "batch_norm",
            "dropout"} <= set(config.NETWORK_DEFAULTS)
    assert not set(config.NETWORK_FIXED) & set(config.NETWORK_DEFAULTS)


def test_one_integer_sets_every_layer(tmp_path):
    loaded = config.load(str(write_config(tmp_path, edited("[network]", "[network]\nencoder_strides = 2"))))
    assert loaded.network["encoder_strides"] == 2


def test_overrides_replace_the_matrix_only(tmp_path):
    loaded = config.load(str(write_config(tmp_path, VALID)))
    changed = config.with_overrides(loaded, recipes=["plain_ae"], apis=["keras2", "keras3"], repeats=3)
    assert changed.matrix.recipes == ("plain_ae",) and changed.matrix.apis == ("keras2", "keras3")
    assert changed.matrix.repeats == 3 and changed.training == loaded.training
    assert changed.settings_hash == loaded.settings_hash


def test_writing_out_a_default_keeps_the_settings_hash(tmp_path):
    implicit = config.load(str(write_config(tmp_path, VALID)))
    explicit = config.load(str(write_config(tmp_path, edited("[network]", "[network]\nz_dim = 2"), "explicit.toml")))
    assert explicit.settings_hash == implicit.settings_hash


def test_settings_hash_follows_the_settings(tmp_path):
    loaded = config.load(str(write_config(tmp_path, VALID)))
    same = config.from_dict(loaded.to_dict())
    other = config.load(str(write_config(tmp_path, edited("batch_size = 16", "batch_size = 32"), "other.toml")))
    assert same == loaded and same.settings_hash == loaded.settings_hash
    assert other.settings_hash != loaded.settings_hash


def test_not_applicable_pairs_are_dropped_but_failing_ones_run():
    pairs = plan.combinations(["plain_ae", "kl_layer", "closure_loss"], ["keras2", "keras3", "keras3-port"])
    assert ("plain_ae", "keras3-port") not in pairs and ("closure_loss", "keras3-port") not in pairs
    assert ("kl_layer", "keras3") in pairs and ("closure_loss", "keras2") in pairs  # "fails": run anyway
    assert ("kl_layer", "keras3-port") in pairs


def test_unknown_recipe_via_the_api_is_a_usage_error():
    with pytest.raises(UsageError, match="valid recipes"):
        config.from_dict({"matrix": {"recipes": ["nope"]}})
