"""Users' own recipes: loaded from outside the repository, refused in one line when broken, and
written by `new-recipe` (no TensorFlow: every check here runs before a worker would start)."""

import os
import textwrap

import pytest

from bench import recipes
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
}


@pytest.mark.parametrize("case", BAD_INPUTS)
@pytest.mark.parametrize("verb", ["run", "verify"])
def test_a_bad_recipe_is_one_line_naming_the_file_exit_2_nothing_written(
    tmp_path, capsys, case, verb
):
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
