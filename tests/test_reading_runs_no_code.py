"""Reading a results folder never runs code from it: a folder whose recorded recipe writes a
marker file when imported is read by every read-only verb, and no marker appears. `run --resume`,
which does run it, names the file first and refuses one whose source changed since the run."""

import json

import numpy as np
import pytest

from bench import recipes
from bench.__main__ import main
from bench.config import settings
from bench.results.folder import ResultsFolder
from tests.builders import append_result, new_folder, ok_result, planned_run

RECIPE = '''"""Writes a marker when imported: what a folder's reader must never do."""
from pathlib import Path

from vae_impls.registry import Recipe

Path({marker!r}).write_text("imported")

RECIPE = Recipe(
    name="marked", post="own", technique="mine", runs_as_written=frozenset({{"keras2"}})
)


def build(keras, net):
    raise AssertionError("never built here")
'''
FLOOR = "plain_ae"


@pytest.fixture
def marked(tmp_path, monkeypatch):
    """(a finished folder of plain_ae and the marked recipe, its recipe file, the marker)."""
    monkeypatch.delenv(recipes.RECIPE_PATHS_ENV, raising=False)
    marker = tmp_path / "imported.marker"
    source = tmp_path / "marked.py"
    source.write_text(RECIPE.format(marker=str(marker)))
    with recipes.loading_allowed():  # as `run --recipe` does: imported in a child process
        config = settings.from_dict(
            {
                "name": "marked",
                "training": {"dataset": "synthetic", "epochs": 2, "warmup_epochs": 1},
                "matrix": {
                    "recipes": [FLOOR, "marked"],
                    "apis": ["keras2"],
                    "repeats": 2,
                    "recipe_paths": [str(source)],
                },
            }
        )
    assert marker.exists()  # the recipe does write it when imported
    env = {
        "config": config.to_dict(),
        "host": {"hostname": "lab-1", "cores": 2},
        recipes.USER_RECIPES_KEY: recipes.records(config.matrix.recipe_paths),
    }
    folder, planned = new_folder(tmp_path / "results", "marked", env, config)
    rng = np.random.default_rng(0)
    for run in planned:
        ms = 50.0 if run.recipe == FLOOR else 60.0
        append_result(
            folder,
            planned_run(planned, run.recipe, run.api, run.repeat),
            ok_result(run.recipe, 0.7, ms * rng.normal(1, 0.01), rng),
        )
    marker.unlink()
    recipes.forget()
    monkeypatch.delenv(recipes.RECIPE_PATHS_ENV, raising=False)
    return folder, source, marker


READ_ONLY = {
    "report": lambda folder, tmp: ["report", folder],
    "report --answer": lambda folder, tmp: ["report", "--answer", folder],
    "compare": lambda folder, tmp: ["compare", folder, folder],
    "history": lambda folder, tmp: ["history", folder, folder, "--plot", f"{tmp}/h.png"],
    "check --results": lambda folder, tmp: [
        "check",
        "--results",
        folder,
        "--baseline",
        f"{tmp}/baseline.json",
    ],
    "check --update-baseline": lambda folder, tmp: [
        "check",
        "--update-baseline",
        "--results",
        folder,
        "--baseline",
        f"{tmp}/baseline.json",
    ],
    "list": lambda folder, tmp: ["list"],
}


def test_no_read_only_verb_imports_the_recipe_a_folder_records(marked, tmp_path, capsys):
    folder, _, marker = marked
    statuses = {}
    for verb in (
        "report",
        "report --answer",
        "compare",
        "history",
        "check --results",
        "check --update-baseline",
        "check --results",
        "list",
    ):
        statuses[verb] = main(READ_ONLY[verb](str(folder.path), tmp_path))
        assert not marker.exists(), f"{verb} imported the folder's recipe"
        recipes.forget()
    # A check that reads the folder, then refuses it (a baseline of other settings).
    other = json.loads((tmp_path / "baseline.json").read_text())
    (tmp_path / "other.json").write_text(json.dumps({**other, "settings_hash": "0" * 16}))
    refused = main(
        ["check", "--results", str(folder.path), "--baseline", str(tmp_path / "other.json")]
    )
    assert refused == 2 and not marker.exists()
    # Each read its folder: the reports, the answer, the baseline name the user's recipe.
    output = capsys.readouterr().out
    assert statuses["report"] == 0 and (folder.path / "report.md").is_file()
    assert "marked" in (folder.path / "report.md").read_text()
    assert statuses["report --answer"] == 0 and "marked" in output
    assert statuses["check --update-baseline"] == 0
    assert "marked" in (tmp_path / "baseline.json").read_text()


def test_a_folder_reads_its_recipe_from_its_record_even_once_the_file_is_gone(marked, capsys):
    folder, source, marker = marked
    source.unlink()
    assert main(["report", str(folder.path)]) == 0
    assert main(["report", "--answer", str(folder.path)]) == 0
    assert "marked" in capsys.readouterr().out
    assert not marker.exists()


def test_resume_names_the_recipe_file_and_refuses_it_changed(marked, capsys):
    folder, source, marker = marked
    source.write_text(source.read_text() + "\n# edited since the run\n")
    env_before = (folder.path / "env.json").read_text()
    assert main(["run", "--resume", str(folder.path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and str(source) in lines[0] and "--accept-changed-recipes" in lines[0]
    assert not marker.exists()  # refused before it was imported
    assert (folder.path / "env.json").read_text() == env_before

    # Accepted: named first, then imported (in a child process), the folder's record updated.
    assert main(["run", "--resume", str(folder.path), "--accept-changed-recipes"]) == 0
    out = capsys.readouterr().out
    assert f"resume imports the recipe file {source} (changed since the run)" in out
    env = ResultsFolder(folder.path).read_env()
    assert env[recipes.USER_RECIPES_KEY][0]["source_hash"] == recipes.source_hash(source)
    assert env["user_recipes_changed"][0]["source_hash"] != recipes.source_hash(source)
