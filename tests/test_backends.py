"""Keras 3 on JAX and PyTorch: workers that run where TensorFlow cannot be imported, the backend
modules' pure parts, and the input refused for a backend that is not installed.

The slow tests start real benchmarks of the tiny network with a ``tensorflow`` package first on
the path that raises on import: what a GPU machine without TensorFlow looks like to the worker.
PyTorch is an extra, so its worker is tested where it is installed; JAX is a default dependency.
"""

import importlib.util
import inspect
import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from bench.__main__ import main
from bench.analysis import causes, verdicts
from bench.analysis.tables import analyse
from bench.config.settings import DeviceSettings
from bench.measure import backends as backend_modules
from bench.measure.backends import interface, numpy_data
from bench.measure.device import Device
from bench.measure.training import check_compiled
from bench.report.backends import backend_blocks
from bench.report.cause_words import cause_text
from bench.results.folder import ResultsFolder
from bench.results.records import OK, OUTSIDE_LAYERS, convolutions, parse_scopes
from tests.builders import (
    ROOT,
    folder_of_records,
    only_folder,
    record,
    run_bench,
    tiny_config,
)
from vae_impls import backends, keras_api, registry

OTHER_BACKEND_GROUPS = [
    group for group in ("keras3-jax", "keras3-torch") if keras_api.installed(group)
]
BLOCKED = "TensorFlow is unimportable in this test"


def test_jax_is_installed_by_default():
    assert keras_api.installed("keras3-jax"), "jax[cpu] is a default dependency (pyproject.toml)"


def test_api_groups_and_backends():
    assert keras_api.process_group("keras3-jax-port") == "keras3-jax"
    assert keras_api.backend_of("keras3-torch-port") == "torch"
    assert keras_api.floor_api("keras3-torch-port") == "keras3-torch"
    assert keras_api.port_api("keras2") == ""
    assert keras_api.comparable_apis("keras3-jax-port") == ("keras3-jax-port", "keras3-jax")


@pytest.mark.parametrize("backend", backends.NAMES)
def test_every_backend_implements_the_whole_interface(backend):
    """Each function there, taking the interface's arguments (the runtime by its own name)."""
    module = backend_modules.named(backend)
    for name in interface.members():
        declared = inspect.signature(getattr(interface.Backend, name)).parameters
        assert callable(getattr(module, name, None)), f"{backend} lacks {name}"
        given = inspect.signature(getattr(module, name)).parameters
        assert len(given) == len(declared) - 1, f"{backend}.{name} takes {list(given)}"


def test_the_interface_lists_what_workers_call():
    assert {"network_jit_compile", "has_gpu", "stepper", "count_ops", "fit"} <= set(
        interface.members()
    )


def test_each_backends_facts_come_from_its_row_without_importing_a_backend():
    code = (
        "import sys\n"
        "from bench.results import env, records\n"
        "from vae_impls import backends, keras_api\n"
        "for row in backends.BACKENDS:\n"
        "    assert set(row.convolution_ops) <= set(records.CONVOLUTION_OPS)\n"
        "    assert set(row.versioned) <= set(env.VERSIONED)\n"
        "    assert keras_api.EXTRA_OF_BACKEND[row.name] == row.extra\n"
        "    assert row.name in keras_api.BACKEND_OF_API.values()\n"
        "print(sorted({'tensorflow', 'jax', 'torch', 'keras'} & set(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("backend", backends.NAMES)
def test_the_compile_switch_compiles_on_every_backend_and_jax_always(backend):
    module = backend_modules.named(backend)
    assert module.network_jit_compile(DeviceSettings(jit_compile=True))
    assert module.network_jit_compile(DeviceSettings()) == (backend == "jax")


def test_a_model_keras_would_not_compile_fails_its_run_when_compiling_is_asked():
    def session(**device):
        return SimpleNamespace(device=Device(DeviceSettings(**device)))

    uncompiled = SimpleNamespace(jit_compile=False)
    check_compiled(session(), uncompiled)
    with pytest.raises(RuntimeError, match="jit_compile = true, but Keras compiles this model"):
        check_compiled(session(jit_compile=True), uncompiled)
    check_compiled(session(jit_compile=True), SimpleNamespace(jit_compile=True))


def test_an_unknown_backend_is_named_with_the_known_ones():
    with pytest.raises(ValueError, match="unknown backend 'mlx'; known backends: tensorflow"):
        backends.of("mlx")


def test_numpy_batches_are_whole_seeded_and_reshuffled_each_pass():
    class Session:
        training = SimpleNamespace(batch_size=4, steps_per_epoch=0)
        data = SimpleNamespace(x_train=np.arange(10.0)[:, None])

    class Built:
        fit_on_arrays = False

        @staticmethod
        def fit_targets(x):
            return None

    first = numpy_data.batches(Session, Built, seed=3)
    again = numpy_data.batches(Session, Built, seed=3)
    batches = [next(first)[0] for _ in range(4)]
    assert all(len(batch) == 4 for batch in batches)  # the short last batch of a pass is dropped
    assert all((batch == next(again)[0]).all() for batch in batches)
    first_pass, second_pass = (np.concatenate(batches[i : i + 2]).ravel() for i in (0, 2))
    assert len(set(first_pass)) == 8 and not (first_pass == second_pass).all()


COMPILED_HLO = """HloModule jit_f

%fused_computation (param_0.1: f32[1,3,3,4]) -> f32[3,3,1,4] {
  %param_0.1 = f32[1,3,3,4]{3,2,1,0} parameter(0)
  ROOT %copy.3 = f32[3,3,1,4]{3,2,1,0} copy(%param_0.1)
}

ENTRY %main.2 (w.1: f32[3,3,1,4], x.1: f32[2,8,8,1]) -> (f32[3,3,1,4], s32[]) {
  %w.1 = f32[3,3,1,4]{3,2,1,0} parameter(0), metadata={op_name="w"}
  %x.1 = f32[2,8,8,1]{3,2,1,0} parameter(1), metadata={op_name="x"}
  %c = s32[] constant(0)
  %conv.2 = f32[2,8,8,4]{3,2,1,0} convolution(%x.1, %w.1), window={size=3x3 pad=1_1x1_1}
  %gemm = (f32[2,4]{1,0}, s8[0]{0}) custom-call(%x.1, %w.1), custom_call_target="__cublas$gemm"
  %g = f32[2,4]{1,0} get-tuple-element(%gemm), index=0
  %b = f32[1,3,3,4]{3,2,1,0} bitcast(%conv.2)
  %fusion = f32[3,3,1,4]{3,2,1,0} fusion(%b), kind=kLoop, calls=%fused_computation
  ROOT %t = (f32[3,3,1,4]{3,2,1,0}, s32[]) tuple(%fusion, %c)
}
"""


def test_jax_counts_the_instructions_its_compiled_step_runs():
    """The entry computation's fusion, custom call and unfused convolution; not the fused
    computation's own instructions, nor the parameters, constants, tuples and bitcasts."""
    jax_backend = backend_modules.named("jax")
    assert jax_backend.compiled_ops(COMPILED_HLO) == 3
    assert jax_backend.compiled_ops("HloModule empty") == 0


def test_convolutions_count_each_backends_names():
    assert convolutions({"Conv2D": 3, "Conv2DBackpropFilter": 3, "MatMul": 2}) == 6
    assert convolutions({"stablehlo.convolution": 18, "stablehlo.dot_general": 6}) == 18
    assert convolutions({"convolution": 6, "convolution_backward": 6}) == 12
    assert convolutions({}) is None


def test_an_api_whose_backend_is_not_installed_is_refused_in_one_line(
    tmp_path, capsys, monkeypatch
):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    results = tmp_path / "results"
    assert main(["run", "--quick", "--apis", "keras3-torch", "--results-dir", str(results)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "torch" in err and ".[torch]" in err
    assert not results.exists()


@pytest.mark.slow
@pytest.mark.parametrize("group", OTHER_BACKEND_GROUPS)
def test_a_worker_without_tensorflow_runs_its_recipes(tmp_path, group):
    blocker = tmp_path / "no_tensorflow"
    (blocker / "tensorflow").mkdir(parents=True)
    (blocker / "tensorflow" / "__init__.py").write_text(f"raise ImportError({BLOCKED!r})\n")
    port = keras_api.port_api(group)
    names = ["plain_ae", "kl_layer", "gradient_tape"]
    config = tiny_config(tmp_path, names, apis=(group, port))
    done = run_bench(
        "--config",
        config,
        "--results-dir",
        tmp_path / "results",
        env={"PYTHONPATH": f"{blocker}:{ROOT}"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    folder = only_folder(tmp_path / "results")
    runs = ResultsFolder(folder).read().runs
    for run in runs.itertuples():
        expected = registry.status(run.recipe, run.api)
        assert (run.status == OK) == (expected == registry.WORKS), (run.run_id, run.error)
        assert BLOCKED not in run.error
    assert {"plain_ae", "kl_layer", "gradient_tape"} <= set(runs[runs.status == OK].recipe)
    ok = runs[runs.status == OK]
    assert (ok.ops_convolutions > 0).all()  # the backend counted its train step's ops
    if keras_api.backend_of(group) == "jax":  # and what XLA runs of them once fused
        assert (ok.compiled_ops > 0).all() and (ok.compiled_ops < ok.graph_ops).all()
    else:
        assert ok.compiled_ops.isna().all()
    if keras_api.backend_of(group) == "jax":  # JAX's ops carry their layers' name scopes
        # ... those of a nested model's layers: the decoder is one in every recipe (the layers
        # of the outermost functional model lower without theirs: docs/backends.md)
        scopes = [parse_scopes(text) for text in ok.op_scopes]
        assert all("decoder_conv_t_0" in found for found in scopes)
    env = json.loads((folder / "env.json").read_text())
    assert list(env["backends"]) == [keras_api.backend_of(group)]
    ratios = ResultsFolder(folder).read_ratios()
    assert {"kl_layer", "gradient_tape"} <= set(ratios[ratios.api == port].recipe)


def test_the_reports_backend_section_compares_each_backend_with_its_own_floor(tmp_path):
    speeds = {"plain_ae": 100.0, "model_add_loss": 101.0, "notebook_encoder_call": 142.0}
    convolutions_of = {"plain_ae": 18, "model_add_loss": 18, "notebook_encoder_call": 27}
    rows = [
        record(
            recipe,
            api,
            repeat,
            ms_per_step=speeds[recipe] * scale * (1 + 0.01 * repeat),
            ops_convolutions=convolutions_of[recipe],
        )
        for scale, apis in ((1, ("keras3", "keras3-port")), (15, ("keras3-jax", "keras3-jax-port")))
        for api in apis
        for recipe in speeds
        if (recipe == "plain_ae") != keras_api.is_port(api)
        for repeat in (1, 2, 3)
    ]
    folder = folder_of_records(tmp_path, "backends", rows, env={"jax": "0.10", "torch": None})
    analysis = analyse(folder.path)
    blocks = dict(enumerate(block for block in backend_blocks(analysis.main, analysis.tables)))
    intro, floors, encoder = blocks[1][1], blocks[2][1], blocks[4][1]
    assert "torch (pip install -e '.[torch]')" in intro
    assert list(floors.backend) == ["tensorflow", "jax"]
    assert list(floors["floor ms/step of fit"]) == ["102.0", "1530.0"]
    twice = encoder[encoder.claim.str.contains("notebook_encoder_call")]
    assert set(twice.API) == {"keras3-port", "keras3-jax-port"}
    assert (twice.convolutions == "27 vs 18").all()
    assert twice["encoder twice"].str.startswith("yes").all()


def test_compare_and_history_say_that_backends_are_compared_within_themselves(tmp_path, capsys):
    rows = [
        record(recipe, api, repeat, ms_per_step=ms * (1 + 0.01 * repeat))
        for recipe, api, ms in (
            ("plain_ae", "keras3", 100.0),
            ("gradient_tape", "keras3", 101.0),
            ("plain_ae", "keras3-jax", 1400.0),
            ("gradient_tape", "keras3-jax-port", 1410.0),
        )
        for repeat in (1, 2, 3)
    ]
    a, b = (folder_of_records(tmp_path / side, side, rows) for side in ("a", "b"))
    for argv in (
        ["compare", a.path, b.path],
        ["history", a.path, b.path, "--plot", tmp_path / "h.png"],
    ):
        assert main([str(arg) for arg in argv]) == 0
        out = capsys.readouterr().out
        assert "backends: jax, tensorflow; a recipe is compared only with runs of its own" in out


@pytest.mark.slow
@pytest.mark.skipif(not keras_api.installed("keras3-torch"), reason="the .[torch] extra")
def test_pytorch_names_the_encoder_layers_a_recipe_runs_twice(tmp_path):
    """Keras layers are torch modules: each operator, forward or backward, is put down to the
    layer whose call made it, so the cause finder names the encoder run twice, layer by layer."""
    names = ["plain_ae", "notebook_encoder_call"]
    # a loaded machine may take a while over the three tiny runs and their counting
    apis = ("keras3-torch", "keras3-torch-port")
    config = tiny_config(tmp_path, names, apis=apis, timeout=300)
    done = run_bench("--config", config, "--results-dir", tmp_path / "results")
    assert done.returncode == 0, done.stderr[-3000:]
    runs = ResultsFolder(only_folder(tmp_path / "results")).read().runs
    ok = runs[runs.status == OK]
    floor = parse_scopes(ok[ok.recipe == "plain_ae"].op_scopes.iloc[0])
    twice = parse_scopes(ok[ok.recipe == "notebook_encoder_call"].op_scopes.iloc[0])
    encoder = [
        "encoder_conv_0",
        "encoder_conv_1",
        "encoder_conv_2",
        "mu",
    ]  # the floor has no log_var
    for layer in [*encoder, "decoder_conv_t_0"]:
        assert layer in floor and layer in twice, (layer, floor, twice)
    # backward operators too: each convolution layer's gradient is its own
    assert floor["encoder_conv_1"] == {"convolution": 1, "convolution_backward": 1}
    for layer in encoder:
        assert sum(twice[layer].values()) == 2 * sum(floor[layer].values()), layer
    assert sum(twice["decoder_conv_t_0"].values()) == sum(floor["decoder_conv_t_0"].values())
    cause = causes.find(
        "notebook_encoder_call",
        "keras3-torch-port",
        {"plain_ae": floor, "notebook_encoder_call": twice},
    )
    assert cause.encoder_twice and cause.floor.encoder.basis == verdicts.LAYER_COUNTS
    assert set(encoder) <= set(cause.floor.encoder.layers)
    assert "encoder_conv_0" in cause_text(cause, slower=True)


@pytest.mark.skipif(not keras_api.installed("keras3-torch"), reason="the .[torch] extra")
def test_pytorch_operators_go_to_the_layer_whose_forward_made_them():
    """Forward and backward: a named module called twice holds twice its matrix products; the
    product outside every module before it, and its gradient, stay outside (a later layer's call
    does not claim the autograd nodes it finds behind its input)."""
    import torch

    torch_backend = backend_modules.named("torch")
    torch.manual_seed(0)
    encoder, head = torch.nn.Linear(4, 4, bias=False), torch.nn.Linear(4, 1, bias=False)
    encoder.name, head.name = "encoder", "head"  # as Keras names its layers (TorchLayer)
    projection = torch.randn(4, 4, requires_grad=True)
    data = torch.randn(8, 4)

    def step():
        projected = data @ projection  # outside every layer
        twice = encoder(encoder(projected))
        head(twice).sum().backward()

    counted = torch_backend.count_step(step, {"encoder", "head"})
    scopes = counted.op_scopes
    # forward: one product a call; backward: the gradients of the weight and of the input
    assert scopes["encoder"] == {"mm": 2 + 4}
    assert scopes["head"] == {"mm": 1 + 2}
    # the projection's product, forward and its weight's gradient (data needs none)
    assert scopes[OUTSIDE_LAYERS] == {"mm": 1 + 1}
    assert counted.graph_ops == sum(counted.op_counts.values()) > 12
