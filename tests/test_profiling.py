"""The optional profile of a train step: self times by op type, and a real capture end to end."""

import json

import pytest

from bench.measure import profiling
from bench.results.folder import TOP_OPS_FILE, ResultsFolder
from tests.builders import only_folder, run_bench, tiny_config


def test_self_time_is_an_events_time_less_what_ran_inside_it():
    events = [
        ("step:Outer", 0, 100),
        ("a:Conv2D", 10, 30),
        ("b:MatMul", 50, 20),
        ("c:Relu", 55, 5),
        ("Executor::Process", 80, 10),
        ("d:Conv2D", 200, 40),
    ]
    assert dict(profiling.self_times(events)) == {
        "step:Outer": 40,
        "a:Conv2D": 30,
        "b:MatMul": 15,
        "c:Relu": 5,
        "Executor::Process": 10,
        "d:Conv2D": 40,
    }
    assert [profiling.is_op(name) for name, *_ in events] == [True, True, True, True, False, True]


@pytest.mark.slow
def test_a_profiled_run_keeps_its_trace_and_its_top_ops(tmp_path):
    config = tiny_config(tmp_path, ["kl_layer"], apis=["keras3-port"])
    config.write_text(
        config.read_text().replace(
            "timeout_seconds = 120", "timeout_seconds = 120\nprofile_steps = 2"
        )
    )
    done = run_bench("--config", config, "--results-dir", tmp_path / "results")
    assert done.returncode == 0, done.stderr
    folder = ResultsFolder(only_folder(tmp_path / "results"))
    (run,) = folder.run_records()
    profile = folder.profile_dir(run.run_id)
    assert run.status == "ok" and list(profile.rglob("*.xplane.pb"))
    top = json.loads((profile / TOP_OPS_FILE).read_text())
    assert any("Conv2D" in op for op in top) and all(ms >= 0 for ms in top.values())
    assert (
        "| kl_layer-keras3-port-r1 |"
        in (folder.path / "report.md").read_text().split("## Profiles", 1)[1]
    )
