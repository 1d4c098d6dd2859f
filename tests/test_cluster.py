"""The Ray executor: choosing it on the command line, and a benchmark over a two-node cluster.

The slow test starts a local Ray cluster of two nodes on this one machine, each offering one
``kl_bench_slot`` and named by KLBENCH_NODE_NAME (they share the real hostname), runs the fake
recipes on it through ``python -m bench run --executor ray``, and removes one node mid-benchmark.
"""

import os
import subprocess
import sys
import time

import pytest

from bench.__main__ import main
from bench.results.folder import ResultsFolder
from bench.results.records import OK
from bench.run.cluster import LOOPBACK_ONLY_ENV, SLOT
from bench.run.executors import NODE_NAME_ENV
from tests.builders import (
    HANG_GUARD_SECONDS,
    ROOT,
    bench_command,
    bench_environment,
    folder_of_records,
    record,
    run_bench,
    tiny_config,
)

NODE_MEMORY = 100 * 1024 * 1024  # each node's object store: runs send back only a few kB each


def refused(capsys, *argv) -> str:
    """The one-line error of a command line that must be refused with exit status 2."""
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


# --- choosing an executor ---------------------------------------------------------------------


def test_ray_without_ray_installed_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    results = tmp_path / "results"
    err = refused(
        capsys,
        "run",
        "--config",
        str(tiny_config(tmp_path, ["plain_ae"])),
        "--executor",
        "ray",
        "--results-dir",
        str(results),
    )
    assert ".[cluster]" in err and not results.exists()


@pytest.mark.parametrize(
    "argv, named",
    [
        (["--address", "auto"], "--executor ray"),
        (["--executor", "ray", "--address", "head-without-port"], "HOST:PORT"),
        (["--executor", "ray", "--address", "head:99999"], "HOST:PORT"),
        (
            ["--executor", "ray", "--address", "127.0.0.1:1"],
            "cannot connect to the Ray cluster at 127.0.0.1:1",
        ),
    ],
)
def test_bad_executor_options_are_refused_in_one_line(tmp_path, capsys, argv, named):
    results = tmp_path / "results"
    err = refused(
        capsys,
        "run",
        "--config",
        str(tiny_config(tmp_path, ["plain_ae"])),
        "--results-dir",
        str(results),
        *argv,
    )
    assert named in err and not results.exists()


def test_check_judging_folders_takes_no_executor(tmp_path, capsys):
    assert "--results" in refused(capsys, "check", "--results", str(tmp_path), "--executor", "ray")


def test_check_refuses_to_pool_runs_from_nodes_with_other_versions(tmp_path, capsys):
    def node(hostname, tensorflow):
        return {
            "host": {"hostname": hostname, "cpu_model": "CPU", "logical_cpus": 2},
            "versions": {"python": "3.11.7", "tensorflow": tensorflow, "keras": "3.15.1"},
        }

    folders = [
        folder_of_records(
            tmp_path,
            name,
            [record("plain_ae", "keras3", ms_per_step=100.0)],
            env={"nodes": {f"{name} (CPU, 2 CPUs)": node(name, tensorflow)}},
        )
        for name, tensorflow in (("node-a", "2.21.0"), ("node-b", "2.20.0"))
    ]
    err = refused(capsys, "check", "--results", *(str(folder.path) for folder in folders))
    assert "tensorflow" in err and "2.21.0 on node-a" in err and "2.20.0 on node-b" in err


def test_a_task_starts_its_worker_at_normal_priority_where_the_node_allows():
    """Ray's task processes run at niceness 15; a worker started from one would time a sliver of
    a core on a busy node. Root (this suite's machines) may raise a priority, others may not."""
    probe = "import os, bench.run.cluster as c; c._normal_priority(); print(os.nice(0))"
    done = subprocess.run(
        ["nice", "-n", "15", sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
        check=True,
    )
    assert int(done.stdout) == (0 if os.geteuid() == 0 else 15)


# --- a benchmark on a two-node cluster (slow) -------------------------------------------------


@pytest.fixture
def two_node_cluster(monkeypatch):
    """A head and one more node, each with one benchmark slot and a name of its own: (cluster, the
    second node), so that a test can remove it (the head holds the cluster's state). Both on the
    loopback address, as every Ray process of the tests: Ray would otherwise put the machine's
    network address in its place."""
    monkeypatch.setenv(LOOPBACK_ONLY_ENV, "0")  # for the processes the cluster starts
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    monkeypatch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)  # Ray imported already

    def node_args(name):
        return dict(
            node_ip_address="127.0.0.1",
            num_cpus=1,
            resources={SLOT: 1},
            object_store_memory=NODE_MEMORY,
            env_vars={NODE_NAME_ENV: name},
        )

    cluster = Cluster(
        initialize_head=True,
        connect=False,
        head_node_args={**node_args("node-a"), "include_dashboard": False},
    )
    try:
        yield cluster, cluster.add_node(**node_args("node-b"))
    finally:
        cluster.shutdown()


def records_so_far(results) -> list:
    folders = list(results.glob("*/runs.csv"))
    return ResultsFolder(folders[0].parent).run_records() if folders else []


def ran_on(node_name: str, runs: list) -> list:
    return [run for run in runs if run.host.startswith(f"{node_name} ")]


def assert_one_timed_run_at_a_time_per_host(runs: list) -> None:
    for host in {run.host for run in runs}:
        on_host = sorted((run for run in runs if run.host == host), key=lambda run: run.started_at)
        overlapping = [
            (before.run_id, after.run_id)
            for before, after in zip(on_host, on_host[1:])
            if before.ended_at > after.started_at
        ]
        assert not overlapping, f"{host} ran two timed runs at once: {overlapping}"


@pytest.mark.slow
def test_runs_spread_over_the_nodes_once_each_and_survive_a_lost_node(tmp_path, two_node_cluster):
    cluster, node_b = two_node_cluster
    assert cluster.address.startswith("127.0.0.1:")
    results = tmp_path / "results"
    config = tiny_config(
        tmp_path, ["fake_ok"], repeats=3, apis=("keras2", "keras3"), artifacts=True
    )
    on_the_cluster = ("--executor", "ray", "--address", cluster.address)
    benchmark = subprocess.Popen(
        bench_command("--config", config, "--results-dir", results, *on_the_cluster),
        cwd=ROOT,
        env=bench_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Once node-b has finished a run it is given the next one at once: remove it during that one.
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while not ran_on("node-b", records_so_far(results)):
        assert benchmark.poll() is None and time.monotonic() < deadline, (
            "node-b never finished a run"
        )
        time.sleep(0.2)
    finished_on_b = len(ran_on("node-b", records_so_far(results)))
    cluster.remove_node(node_b, allow_graceful=False)
    out, err = benchmark.communicate(timeout=HANG_GUARD_SECONDS)
    assert benchmark.returncode == 0, err
    (folder,) = results.iterdir()
    resumed = run_bench("--resume", folder, *on_the_cluster, timeout=HANG_GUARD_SECONDS)
    assert resumed.returncode == 0, resumed.stderr

    runs, planned = ResultsFolder(folder).run_records(), ResultsFolder(folder).planned_runs()
    assert sorted(run.run_id for run in runs) == sorted(
        run.run_id for run in planned
    )  # each exactly once
    assert {run.status for run in runs} == {OK}, (
        "a run lost with node-b is retried, or rerun by --resume"
    )
    assert len(ran_on("node-a", runs)) + finished_on_b == len(
        runs
    )  # node-b's last run ended on node-a
    assert_one_timed_run_at_a_time_per_host(runs)
    assert all(
        (folder / run.artifacts).is_file() for run in runs if run.repeat == 1
    )  # sent from the nodes
    assert " on node-a " in out and " on node-b " in out
    nodes = ResultsFolder(folder).read_env()["nodes"]
    assert {run.host for run in runs} == set(nodes)
    assert len({str(node["versions"]) for node in nodes.values()}) == 1
    baseline = (
        tmp_path / "baseline.json"
    )  # check pools the runs of both nodes: their versions agree
    assert (
        main(["check", "--results", str(folder), "--update-baseline", "--baseline", str(baseline)])
        == 0
    )
