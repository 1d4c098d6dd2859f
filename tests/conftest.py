import os

import pytest
from hypothesis import settings

from tests.builders import ROOT

# CI runs the generated inputs from a fixed seed: a red CI names an input anyone can replay;
# elsewhere each run explores new ones.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


# Files of the project a test may read but never change: a command a test runs with a default
# path (the gate's baseline, a config) must not write into the checkout.
GUARDED = [ROOT / "bench" / "baseline.json", *sorted((ROOT / "bench/config/configs").glob("*"))]


@pytest.fixture(autouse=True, scope="session")
def project_files_stay_unchanged():
    before = {path: path.read_bytes() for path in GUARDED}
    yield
    changed = [str(path) for path, content in before.items() if path.read_bytes() != content]
    assert not changed, f"the tests changed committed files: {', '.join(changed)}"


@pytest.fixture(autouse=True)
def no_declared_user_recipes():
    """Each test starts without user recipes a test before it loaded or read from a folder."""
    from bench import recipes

    recipes.forget()
    yield
    recipes.forget()
