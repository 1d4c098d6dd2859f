"""Every verb's command line with generated arguments and generated folders: each either runs or
is refused with exit status 2 and one line on stderr (argparse's usage errors included); never a
traceback, and a command that is refused (or that stops where a benchmark would start) changes
no file.

The work itself never starts: where a benchmark would begin (the preflight, a resume, a Ray
connection) a stand-in raises ``WouldRun``, which counts as accepted. Everything before it (every
check of every argument) runs for real, in this process, without TensorFlow. The generated
values are well-formed words, numbers and paths, most of them wrong in what they mean
(tests/test_usage_errors.py generates what argparse itself refuses).
"""

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bench.__main__ import main
from bench.analysis import baseline_file
from bench.cli import common
from bench.config import settings as config
from bench.results.folder import ResultsFolder, pooled, write_json
from bench.results.records import TIMEOUT, RunResult
from bench.run import environment, runner
from tests.builders import append_result, new_folder, ok_result, tiny_config


class WouldRun(Exception):
    """Raised where the work would start: every input was accepted."""


@pytest.fixture
def before_the_work(monkeypatch):
    """Stops every command where its work would start, with ``WouldRun``."""

    def would_run(*args, **kwargs):
        raise WouldRun()

    monkeypatch.setattr(environment, "preflight", would_run)
    monkeypatch.setattr(runner, "resume", would_run)
    monkeypatch.setattr(common, "_connected", would_run)


def examples(count: int):
    """Hypothesis settings of one verb's test: few examples, each building its own folders."""
    return settings(
        max_examples=count,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


# --- generated files and folders ----------------------------------------------------------------

FOLDER_KINDS = (
    "missing",
    "a file",
    "empty",
    "results",
    "results of other settings",
    "timed out",
    "no runs",
    "garbled runs.csv",
    "garbled plan.json",
    "env.json nested deeply",
    "plan.json nested deeply",
)
DEEP_JSON = "[" * 50_000 + "]" * 50_000
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats()
    | st.sampled_from(["works", "fails", "x", "plain_ae/keras3"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
ENV_KEYS = ("config", "host", "gpu", "nodes", "git", "python", "keras", "injected_slowdown")
PLAN_KEYS = ("config", "runs", "variants", "settings_hash")
# A results folder whose env.json or plan.json holds generated JSON, each part of any type.
FUZZED_FILES = st.one_of(
    st.tuples(
        st.just(name),
        st.dictionaries(st.sampled_from(keys), JSON, max_size=4) | JSON,
    )
    for name, keys in (("env.json", ENV_KEYS + ("resumed_by",)), ("plan.json", PLAN_KEYS))
)


def make_folder(base: Path, kind) -> Path:
    """A folder of ``kind`` (one of ``FOLDER_KINDS``, or a results folder with one file's
    content replaced: (file name, JSON content)) in a new folder under ``base``."""
    parent = _new_dir(base, "folders")
    if isinstance(kind, tuple):
        name, content = kind
        folder = _results(parent)
        (folder / name).write_text(json.dumps(content))
        return folder
    if kind == "missing":
        return parent / "missing"
    if kind == "a file":
        (parent / "a-file").write_text("not a folder\n")
        return parent / "a-file"
    if kind == "empty":
        (parent / "empty").mkdir()
        return parent / "empty"
    ends = [RunResult(TIMEOUT, "time limit")] * 2 if kind == "timed out" else None
    folder = _results(parent, epochs=3 if kind == "results of other settings" else 2, ends=ends)
    damage = {
        "no runs": ("runs.csv", (folder / "runs.csv").read_text().splitlines()[0] + "\n"),
        "garbled runs.csv": ("runs.csv", "run_id,recipe\n\x00\xff,\n"),
        "garbled plan.json": ("plan.json", "{"),
        "env.json nested deeply": ("env.json", DEEP_JSON),
        "plan.json nested deeply": ("plan.json", DEEP_JSON),
    }
    if kind in damage:
        name, text = damage[kind]
        (folder / name).write_text(text)
    return folder


def _new_dir(base: Path, stem: str) -> Path:
    number = sum(1 for _ in base.glob(f"{stem}-*"))
    path = base / f"{stem}-{number}"
    path.mkdir()
    return path


def _results(parent: Path, epochs: int = 2, ends=None) -> Path:
    """A results folder of a tiny config (plain_ae and kl_layer, 2 rounds), its runs ended ok or
    as ``ends`` says."""
    loaded = config.load(str(tiny_config(parent, ["plain_ae", "kl_layer"], 2, epochs)))
    folder, planned = new_folder(
        parent / "results", loaded.name, {"config": loaded.to_dict()}, loaded
    )
    rng = np.random.default_rng(len(str(parent)))
    for index, run in enumerate(planned):
        ms = 50.0 * (1.1 if run.recipe == "kl_layer" else 1.0) * rng.normal(1, 0.01)
        result = ends[index % len(ends)] if ends else ok_result(run.recipe, 0.6, ms, rng)
        append_result(folder, run, result)
    return folder.path


CONFIG_KINDS = (
    "tiny",
    "quick",
    "missing",
    "a folder",
    "nested deeply",
    "not TOML",
    "a huge value",
    "mnist_path a folder",
    "too many runs",
)


# Valid configs drawn more often than each wrong one, so that a fair share of commands is accepted.
CONFIGS = st.sampled_from(("tiny",) * 4 + CONFIG_KINDS)
FOLDERS = st.sampled_from(("results",) * 4 + FOLDER_KINDS) | FUZZED_FILES


def make_config(base: Path, kind: str) -> str:
    parent = _new_dir(base, "configs")
    if kind == "quick":
        return "quick"
    if kind == "missing":
        return str(parent / "missing.toml")
    if kind == "a folder":
        return str(parent)
    tiny = tiny_config(parent, ["plain_ae", "kl_layer"])
    text = tiny.read_text()
    edits = {
        "nested deeply": "[device]\nx = " + "[" * 3000 + "]" * 3000 + "\n",
        "not TOML": "[device\n\x00",
        "a huge value": text.replace('device = "cpu"', f'device = "{"c" * 100_000}"'),
        "mnist_path a folder": text.replace(
            'dataset = "synthetic"', f'dataset = "mnist"\nmnist_path = "{parent}"'
        ),
        "too many runs": text.replace("repeats = 1", "repeats = 1000").replace(
            '["keras3"]', '["keras2", "keras3", "keras3-port"]'
        ),
    }
    if kind in edits:
        tiny.write_text(edits[kind])
    return str(tiny)


WORDS = ("plain_ae", "kl_layer", "gradient_tape", "keras2", "keras3", "nope", "é", "x" * 300)
NUMBERS = ("0", "1", "-1", "0.06", "1e308", "nan", "inf", "-inf", "1e-9", "10%", "ten")
TEXT = st.sampled_from(WORDS + NUMBERS) | st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00-"), max_size=12
)


def output_path(base: Path, kind: str, suffix: str) -> Path:
    parent = _new_dir(base, "outputs")
    (parent / "a-file").write_text("")
    (parent / "a-folder.png").mkdir()
    return {
        "new": parent / f"out{suffix}",
        "upper case": parent / f"out{suffix.upper()}",
        "no extension": parent / "out",
        "unknown extension": parent / "out.banana",
        "a folder": parent / "a-folder.png",
        "in a missing folder": parent / "no" / "such" / f"out{suffix}",
        "under a file": parent / "a-file" / f"out{suffix}",
    }[kind]


OUTPUT_KINDS = st.sampled_from(
    [
        "new",
        "upper case",
        "no extension",
        "unknown extension",
        "a folder",
        "in a missing folder",
        "under a file",
    ]
)


def make_baseline(base: Path, kind: str) -> list:
    """--baseline's argument for a baseline of ``kind``; [] for the committed one."""
    if kind == "committed":
        return []
    path = output_path(base, "new", ".json")
    if kind == "of a results folder":
        results = ResultsFolder(make_folder(base, "results")).read()
        runs, blocks = pooled([results])
        settings_hash = results.folder.settings_hash(results.env)
        write_json(
            path, baseline_file.make_baseline(runs, results.env, ["r"], blocks, settings_hash)
        )
    elif kind in ("garbage", "nested deeply", "not a baseline"):
        text = {"garbage": "\xff{", "nested deeply": DEEP_JSON, "not a baseline": "[1, 2]"}
        path.write_text(text[kind])
    elif kind != "missing":
        path = output_path(base, kind, ".json")
    return ["--baseline", str(path)]


BASELINE_KINDS = st.sampled_from(
    [
        "committed",
        "of a results folder",
        "missing",
        "garbage",
        "nested deeply",
        "not a baseline",
        "a folder",
        "in a missing folder",
        "under a file",
        "fuzzed",
        "fuzzed",
    ]
)
ENTRY = st.fixed_dictionaries(
    {"status": st.sampled_from(["works", "fails", "x"])},
    optional={
        key: st.none() | st.floats(0, 3) | JSON for key in ("ratio", "ms_per_step", "final_loss")
    },
)
# A baseline's content near a valid one, each part of it sometimes of another type.
FUZZED_BASELINES = st.fixed_dictionaries(
    {
        "version": st.sampled_from([1, 1, 1, 2, "1"]),
        "entries": st.dictionaries(
            st.sampled_from(["plain_ae/keras3", "kl_layer/keras3", "x", "a/b/c"]),
            ENTRY | JSON,
            max_size=3,
        )
        | JSON,
    },
    optional={key: JSON for key in ("machine", "host", "settings_hash", "config")},
)


def fuzzed_baseline(base: Path, content: dict) -> list:
    """--baseline's argument for a baseline file of generated ``content``."""
    path = output_path(base, "new", ".json")
    path.write_text(json.dumps(content))
    return ["--baseline", str(path)]


# --- the property -------------------------------------------------------------------------------


def files_in(path: Path) -> dict:
    return {
        str(item.relative_to(path)): item.read_bytes()
        for item in sorted(path.rglob("*"))
        if item.is_file()
    }


def runs_or_refuses(argv: list, base: Path, accepted: tuple = (0,)) -> None:
    """``python -m bench ARGV`` in this process: accepted (a status in ``accepted``, or stopped
    where the work would start) or refused in one line with status 2, changing no file."""
    before = files_in(base)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main([str(arg) for arg in argv])
        except WouldRun:
            status = "would run"
        except SystemExit as stop:  # a usage error: one line too
            status = stop.code
    err = err.getvalue()
    event(f"{argv[0]}: {status}")
    assert "Traceback" not in err, err
    if status in (2, "would run"):
        assert files_in(base) == before, f"{argv} changed a file and exited {status}"
    if status == 2:
        assert err.startswith("error: ") and err.count("\n") == 1, err
    elif status != "would run":
        assert status in accepted, (argv, status, err)


# --- the verbs ----------------------------------------------------------------------------------


def executor_args(draw) -> list:
    return draw(
        st.sampled_from(
            [
                [],
                [],
                [],
                ["--address", "auto"],
                ["--executor", "ray"],
                ["--executor", "ray", "--address", "head:6379"],
                ["--executor", "ray", "--address", "head"],
                ["--executor", "ray", "--address", "x" * 5000],
            ]
        )
    )


def results_dir_args(draw, base: Path) -> list:
    kind = draw(st.sampled_from(["default", "default", "new", "a file", "under a file"]))
    if kind == "default":
        return ["--results-dir", base / "results"]
    parent = _new_dir(base, "results-dirs")
    (parent / "a-file").write_text("")
    where = {"new": parent / "r", "a file": parent / "a-file", "under a file": parent / "a-file/r"}
    return ["--results-dir", where[kind]]


RECIPES = st.sampled_from(("plain_ae", "kl_layer", "gradient_tape") * 3 + WORDS)
APIS = st.sampled_from(("keras2", "keras3") * 3 + WORDS)
REPEATS = st.sampled_from((1, 2, 3) * 3 + (-1, 0, 999, 1000, 1001))


def matrix_args(draw) -> list:
    """--recipes, --apis, --repeats, each given or not, most often a value they take."""
    args = []
    if draw(st.integers(0, 2)) == 0:
        args += ["--recipes", *draw(st.lists(RECIPES, min_size=1, max_size=3))]
    if draw(st.integers(0, 2)) == 0:
        args += ["--apis", *draw(st.lists(APIS, min_size=1, max_size=2))]
    if draw(st.integers(0, 2)) == 0:
        args += ["--repeats", draw(REPEATS)]
    return args


@examples(60)
@given(data=st.data())
def test_run(tmp_path_factory, before_the_work, data):
    base = tmp_path_factory.mktemp("run")
    draw = data.draw
    argv = ["run", "--config", make_config(base, draw(CONFIGS))]
    if draw(st.integers(0, 4)) == 0:
        argv = ["run", "--quick", *(argv[1:] if draw(st.booleans()) else [])]
    if draw(st.integers(0, 3)) == 0:
        argv += ["--resume", make_folder(base, draw(FOLDERS))]
    argv += matrix_args(draw) + results_dir_args(draw, base) + executor_args(draw)
    runs_or_refuses(argv, base)


SETTINGS = ("training.seed", "training.batch_size", "device.xla", "network.fact", "matrix.repeats")
SETTING_NAMES = st.sampled_from(SETTINGS + ("training.nope", "bogus.key", "a,b", "", "training"))


GOOD_VALUES = {
    "training.seed": st.integers(0, 10**6).map(str),
    "training.batch_size": st.integers(1, 64).map(str),
    "device.xla": st.sampled_from(["off", "autojit", "jit_compile"]),
    "network.fact": st.floats(0, 10).map(repr),
}


@st.composite
def vary_texts(draw) -> str:
    """A --vary text: most often a setting and values it takes, else anything near one."""
    if draw(st.integers(0, 2)):
        setting = draw(st.sampled_from(sorted(GOOD_VALUES)))
        values = draw(st.lists(GOOD_VALUES[setting], min_size=1, max_size=4, unique=True))
        return f"{setting}={','.join(values)}"
    setting = draw(SETTING_NAMES)
    if draw(st.booleans()):
        values = [str(value) for value in range(draw(st.integers(1, 300)))]
    else:
        values = draw(st.lists(st.sampled_from(WORDS + NUMBERS), max_size=4))
    return f"{setting}={','.join(values)}" if draw(st.integers(0, 9)) else setting


@examples(60)
@given(data=st.data())
def test_sweep(tmp_path_factory, before_the_work, data):
    base = tmp_path_factory.mktemp("sweep")
    draw = data.draw
    argv = ["sweep", "--config", make_config(base, draw(CONFIGS))]
    for text in draw(st.lists(vary_texts(), min_size=1, max_size=3)):
        argv += ["--vary", text]
    argv += matrix_args(draw) + results_dir_args(draw, base) + executor_args(draw)
    runs_or_refuses(argv, base)


FRACTIONS = st.sampled_from(NUMBERS[:-2]) | st.floats(-1, 2).map(repr)


@examples(60)
@given(data=st.data())
def test_check(tmp_path_factory, before_the_work, data):
    base = tmp_path_factory.mktemp("check")
    draw = data.draw
    kind = draw(BASELINE_KINDS)
    if kind == "fuzzed":
        argv = ["check", *fuzzed_baseline(base, draw(FUZZED_BASELINES))]
    else:
        argv = ["check", *make_baseline(base, kind)]
    for flag in ("--tolerance", "--floor-tolerance", "--yardstick-tolerance"):
        if draw(st.booleans()):
            argv.append(f"{flag}={draw(FRACTIONS)}")  # "=": a value may begin with "-"
    if kind != "committed" and draw(st.booleans()):  # the committed baseline is only ever read
        argv.append("--update-baseline")
    folders = draw(st.lists(FOLDERS, max_size=2))
    if folders:
        argv += ["--results", *(make_folder(base, kind) for kind in folders)]
    else:
        argv += ["--config", make_config(base, draw(CONFIGS))]
        argv += results_dir_args(draw, base)
    argv += executor_args(draw)
    runs_or_refuses(argv, base, accepted=(0, 1))


@examples(40)
@given(data=st.data())
def test_compare(tmp_path_factory, before_the_work, data):
    base = tmp_path_factory.mktemp("compare")
    draw = data.draw
    argv = ["compare", *(make_folder(base, draw(FOLDERS)) for _ in "ab")]
    if draw(st.booleans()):
        argv.append(f"--fail-slower={draw(FRACTIONS | TEXT)}")
    runs_or_refuses(argv, base, accepted=(0, 1))


@examples(40)
@given(data=st.data())
def test_history(tmp_path_factory, before_the_work, data):
    base = tmp_path_factory.mktemp("history")
    draw = data.draw
    kinds = draw(st.lists(FOLDERS, min_size=1, max_size=3))
    plot = output_path(base, draw(OUTPUT_KINDS), draw(st.sampled_from([".png", ".svg", ".pdf"])))
    argv = ["history", *(make_folder(base, kind) for kind in kinds), "--plot", plot]
    runs_or_refuses(argv, base)


@examples(12)
@given(data=st.data())
def test_report(tmp_path_factory, before_the_work, data):
    base = tmp_path_factory.mktemp("report")
    kind = data.draw(FOLDERS)
    runs_or_refuses(["report", make_folder(base, kind)], base)


def test_the_generated_inputs_cover_every_kind(tmp_path):
    """Each folder, config and output kind is what its name says (the property relies on it)."""
    for kind in FOLDER_KINDS:
        folder = make_folder(tmp_path, kind)
        assert folder.exists() == (kind != "missing")
    assert json.loads((make_folder(tmp_path, "results") / "plan.json").read_text())["runs"]
    for kind in CONFIG_KINDS:
        make_config(tmp_path, kind)
