"""Users' own recipes: loaded from outside the repository, refused in one line when broken, and
written by `new-recipe` (no TensorFlow: every check here runs before a worker would start)."""

import os
import textwrap

import pytest

from bench import recipe_import, recipes
from bench.__main__ import main
from bench.cli import new_recipe
from bench.config import settings
from vae_impls import registry

DECLARED = """
from vae_impls.registry import Recipe

RECIPE = Recipe(
    name={name!r}, post="own", technique="mine", runs_as_written=frozenset({{"keras2"}})
)
"""


@pytest.fixture(autouse=True)
def no_user_recipes(monkeypatch):
    """Each test starts, and leaves, without user recipes in the environment."""
    monkeypatch.delenv(recipes.RECIPE_PATHS_ENV, raising=False)


def recipe_file(folder, name="mine", body="def build(keras, net):\n    return None\n"):
    path = folder / f"{name}.py"
    path.write_text(f'"""A recipe."""\n{DECLARED.format(name=name)}\n{body}')
    return path


def test_a_recipe_file_outside_the_repository_joins_every_list(tmp_path):
    path = recipe_file(tmp_path)
    with recipes.loading_allowed():
        assert recipes.use([str(path)]) == (str(path.resolve()),)
    assert list(recipes.known())[-1] == "mine"
    assert recipes.status("mine", "keras2") == registry.WORKS
    assert recipes.status("mine", "keras3") == registry.FAILS
    assert recipes.status("mine", "keras3-port") == registry.NOT_APPLICABLE
    assert recipes.origins() == {"mine": str(path.resolve())}


def test_the_config_declares_recipes_once_for_a_project(tmp_path, monkeypatch):
    recipe_file(tmp_path)
    monkeypatch.chdir(tmp_path)
    with recipes.loading_allowed():
        config = settings.from_dict(
            {"matrix": {"recipes": ["plain_ae", "mine"], "recipe_paths": ["mine.py"]}}
        )
    assert config.matrix.recipe_paths == (str((tmp_path / "mine.py").resolve()),)
    assert config.to_dict()["matrix"]["recipe_paths"] == [str((tmp_path / "mine.py").resolve())]


def test_run_recipe_adds_it_to_the_configured_matrix(tmp_path):
    from bench.cli.common import with_user_recipes

    path = recipe_file(tmp_path)
    with recipes.loading_allowed():
        config = with_user_recipes(settings.load("quick"), [str(path)])
        assert config.matrix.recipes[-1] == "mine"
        assert set(registry.RECIPES) & set(config.matrix.recipes)
        assert config.matrix.recipe_paths == (str(path.resolve()),)
        narrowed = with_user_recipes(settings.load("quick"), [str(path)], asked=["plain_ae"])
        assert narrowed.matrix.recipes == ("plain_ae", "mine")
        by_name = with_user_recipes(settings.load("quick"), [str(path)], asked=["mine", "plain_ae"])
        assert by_name.matrix.recipes == ("mine", "plain_ae")


def test_an_importable_module_or_attribute_names_a_recipe_that_workers_import_too(
    tmp_path, monkeypatch
):
    package = tmp_path / "their_code"
    package.mkdir()
    (package / "__init__.py").write_text("")
    recipe_file(package, "warmup")
    (package / "grouped.py").write_text(
        "import types\n"
        "from their_code import warmup\n"
        "from vae_impls.registry import Recipe\n"
        "inner = types.SimpleNamespace(\n"
        "    build=warmup.build, RECIPE=Recipe(name='inner', post='own', technique='mine',\n"
        "    runs_as_written=frozenset({'keras2'})))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", "")
    with recipes.loading_allowed():
        assert recipes.use(["their_code.warmup", "their_code.grouped:inner"]) == (
            "their_code.warmup",
            "their_code.grouped:inner",
        )
    assert list(recipes.known())[-2:] == ["warmup", "inner"]
    assert str(tmp_path.resolve()) in os.environ["PYTHONPATH"].split(os.pathsep)


BAD_INPUTS = {
    "missing": (None, "no such recipe file"),
    "no_build": ("x = 1\n", "no build(keras, net) function"),
    "clash": (DECLARED.format(name="plain_ae") + "def build(keras, net):\n    pass\n", "clashes"),
    "raises": ("raise RuntimeError('broken at import')\n", "RuntimeError: broken at import"),
    "undeclared": ("def build(keras, net):\n    pass\n", "no RECIPE ="),
    "exits": ("import sys\nsys.exit(0)\n", "exits at import (sys.exit(0))"),
    "ends": ("import os\nos._exit(0)\n", "ended the process at import (exit status 0)"),
    "reads": ("input()\n", "EOFError"),  # no stdin: an import that asks never waits
    "hangs": ("import time\ntime.sleep(600)\n", "its import did not end within 1 s"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
@pytest.mark.parametrize("verb", ["run", "verify"])
def test_a_bad_recipe_is_one_line_naming_the_file_exit_2_nothing_written(
    tmp_path, capsys, monkeypatch, case, verb
):
    monkeypatch.setattr(recipe_import, "IMPORT_TIMEOUT_SECONDS", 1)  # the deadline of "hangs"
    body, problem = BAD_INPUTS[case]
    path = tmp_path / f"{case}.py"
    if body is not None:
        path.write_text(body)
    results = tmp_path / "results"
    argv = (
        ["run", "--quick", "--recipe", str(path), "--results-dir", str(results)]
        if verb == "run"
        else ["verify", str(path)]
    )
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert str(path) in lines[0] or str(path.resolve()) in lines[0]
    assert problem in lines[0]
    assert not results.exists()


def test_new_recipe_writes_a_loadable_module_and_never_overwrites(tmp_path, capsys):
    assert main(["new-recipe", "my_recipe", "--dir", str(tmp_path)]) == 0
    written = tmp_path / "my_recipe.py"
    user = recipes.load(str(written))
    assert user.recipe.name == "my_recipe"
    assert user.source_hash == recipes.source_hash(written)
    assert recipes.imported(str(written)).__doc__
    assert user.recipe.runs_as_written == {"keras2", "keras3"}
    before = written.read_text()
    assert main(["new-recipe", "my_recipe", "--dir", str(tmp_path)]) == 2
    assert written.read_text() == before
    for name in ("plain_ae", "9lives", "a-b"):
        with pytest.raises(Exception, match="recipe name|built-in"):
            new_recipe.target(name, tmp_path)


def test_the_template_imports_no_tensorflow_when_loaded(tmp_path):
    """The manager imports a user recipe to plan it; the template keeps TensorFlow in build."""
    source = new_recipe.TEMPLATE.format(name="x")
    top_level = textwrap.dedent(source.split("def build", 1)[0])
    assert "tensorflow" not in top_level and "vae_impls import network" not in top_level


def test_recipes_names_a_user_recipe_that_recipe_brings(tmp_path, monkeypatch, capsys):
    """`run --recipe FILE --recipes NAME plain_ae` plans exactly those two, the user's by name."""
    from bench.run import runner

    path = recipe_file(tmp_path)
    planned = {}

    def stop_before_the_work(config, *args, **kwargs):
        planned["recipes"] = config.matrix.recipes
        return 0

    monkeypatch.setattr(runner, "start", stop_before_the_work)
    argv = ["run", "--quick", "--recipe", str(path), "--recipes", "mine", "plain_ae"]
    assert main(argv) == 0
    assert planned["recipes"] == ("mine", "plain_ae")
    # without --recipe, the name is unknown: refused in one line that lists the known recipes
    recipes.forget()
    monkeypatch.delenv(recipes.RECIPE_PATHS_ENV, raising=False)
    assert main(["run", "--quick", "--recipes", "mine", "plain_ae"]) == 2
    assert "unknown recipe 'mine'" in capsys.readouterr().err


def test_list_recipe_shows_the_users_recipe_where_it_runs(tmp_path, capsys):
    path = recipe_file(tmp_path)
    assert main(["list", "--recipe", str(path)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["mine", "own", "mine"] in rows  # recipe, post, technique
    statuses = [row for row in rows if row[:1] == ["mine"] and row != ["mine", "own", "mine"]]
    assert statuses and statuses[0][1] == registry.WORKS  # keras2, the first API


def test_list_recipe_refuses_a_file_that_exits_at_import_in_one_line(tmp_path, capsys):
    path = tmp_path / "exits.py"
    path.write_text("import sys\nsys.exit(0)\n")
    assert main(["list", "--recipe", str(path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert str(path) in line and "exits at import (sys.exit(0))" in line


def new_recipe_refusal(capsys, *argv) -> str:
    assert main(["new-recipe", *map(str, argv)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    return line


def test_new_recipe_refuses_names_no_module_file_can_have(tmp_path, capsys):
    assert "at most 64 characters" in new_recipe_refusal(capsys, "a" * 300, "--dir", tmp_path)
    assert "Python keyword" in new_recipe_refusal(capsys, "class", "--dir", tmp_path)
    assert "letters, digits" in new_recipe_refusal(capsys, "a/b", "--dir", tmp_path)
    assert not list(tmp_path.iterdir())


def test_new_recipe_refuses_folders_it_cannot_write_in_one_line(tmp_path, capsys):
    assert "cannot write my_recipe.py there" in new_recipe_refusal(
        capsys, "my_recipe", "--dir", "/proc"
    )
    (tmp_path / "a-file").write_text("")
    assert "no such folder" in new_recipe_refusal(capsys, "my_recipe", "--dir", tmp_path / "a-file")


def test_new_recipe_never_writes_through_a_symlink_dangling_or_not(tmp_path, capsys):
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "dangling.py").symlink_to(outside / "target.py")
    assert "exists (a symlink)" in new_recipe_refusal(capsys, "dangling", "--dir", folder)
    assert not (outside / "target.py").exists()
    with pytest.raises(Exception, match="a symlink"):  # one that appears after the check
        new_recipe.write_new(folder / "dangling.py", "x = 1\n")
    assert not (outside / "target.py").exists()
