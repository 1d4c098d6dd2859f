import os
import pickle
import subprocess
import sys

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


def _start_probe(package_api, out_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "recipe_probe.py"), package_api, str(out_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(scope="session")
def probes(tmp_path_factory):
    """Both Keras packages probed at once, each in its own process (they cannot share one)."""
    folder = tmp_path_factory.mktemp("probes")
    running = {api: _start_probe(api, folder / f"{api}.pkl") for api in ("keras2", "keras3")}
    results = {}
    for api, process in running.items():
        output, _ = process.communicate(timeout=900)
        assert process.returncode == 0, f"{api} probe failed:\n{output[-4000:]}"
        results[api] = pickle.loads((folder / f"{api}.pkl").read_bytes())
    return results
