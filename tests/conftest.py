import os
import pickle
import subprocess
import sys

import pytest

from tests.builders import ROOT


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
