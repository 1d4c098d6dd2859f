"""A worker's wall time accounted for: the stall watch (an idle stretch is found and located, a
busy one is not), the process's age, and the report's share of the wall time in each phase."""

import threading
import time

import pytest

from bench.analysis.wall_shares import wall_time_of
from bench.measure import phases
from bench.measure.stall import StallWatch
from bench.processes import read_stall_notes, write_stall_notes
from bench.report.walltime import walltime_blocks
from bench.results.folder import runs_frame
from bench.results.records import FAILED, TIMEOUT, RunResult
from bench.run import executors
from tests.builders import HANG_GUARD_SECONDS, blocks_frame, record

# Short stretches keep the tests quick; the worker's defaults are four times longer.
SAMPLE, STALL, STRETCH = 0.1, 0.5, 1.0


def _idle_on_an_event() -> None:
    """Block the calling thread on an Event no one sets: nothing computes meanwhile."""
    threading.Event().wait(STRETCH)


def _busy() -> None:
    ends = time.monotonic() + STRETCH
    while time.monotonic() < ends:
        pass


def test_an_idle_stretch_is_a_stall_located_where_the_watched_thread_waited():
    with StallWatch(SAMPLE, STALL) as watch:
        _idle_on_an_event()
    (stall,) = watch.stalls
    assert STRETCH - 2 * SAMPLE <= stall.seconds <= STRETCH + 2 * SAMPLE
    assert stall.started < STRETCH / 2
    assert "_idle_on_an_event" in stall.where and "tests/test_stall.py:" in stall.where
    assert watch.stalled_seconds == stall.seconds and watch.longest == stall
    assert str(stall).startswith(f"{stall.seconds:.1f} s idle from ")


def _idle_until(written) -> None:
    """Wait, idle, until the watch has noted a stall at ``written`` (the state, not a clock)."""
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while not written.exists() and time.monotonic() < deadline:
        threading.Event().wait(SAMPLE)


def test_a_stall_still_going_on_is_noted_for_a_process_that_a_signal_may_end(tmp_path):
    notes = tmp_path / "stalls.json"
    with StallWatch(SAMPLE, STALL, notes=notes):
        _idle_until(notes)
        noted = read_stall_notes(notes)  # as the runner reads it, the process still waiting
    assert noted["stalled_seconds"] >= STALL
    assert "_idle_until" in noted["stall"] and "tests/test_stall.py:" in noted["stall"]


def test_a_timed_out_run_gets_the_stalls_its_worker_noted(tmp_path):
    notes = tmp_path / "stalls.json"
    write_stall_notes(notes, 42.0, "42.0 s idle from 3.0 s: fake_recipes.py:40 build")
    timed_out = executors.with_stalls(RunResult(TIMEOUT, "killed at the 60 s time limit"), notes)
    assert (timed_out.status, timed_out.stalled_seconds) == (TIMEOUT, 42.0)
    assert timed_out.stall.endswith("fake_recipes.py:40 build")
    failed = RunResult(FAILED, "worker exited with status 1")
    assert executors.with_stalls(failed, notes) == failed
    assert executors.with_stalls(RunResult(TIMEOUT), tmp_path / "none").stall == ""


def test_a_busy_stretch_as_long_is_no_stall():
    with StallWatch(SAMPLE, STALL) as watch:
        _busy()
    assert watch.stalls == [] and watch.stalled_seconds == 0 and watch.longest is None


def test_the_process_age_counts_from_the_kernels_start_of_the_process():
    age = phases.process_age()
    assert age is not None and 0 < age < time.monotonic()
    assert phases.origin() == pytest.approx(time.monotonic() - age, abs=0.05)


def _process_rows(process: str, recipes: tuple, wall: float, **measured) -> list:
    """The run rows of one worker process of ``wall`` seconds, each with ``measured``."""
    return [
        record(recipe, "keras2", process=process, wall_seconds=wall, **measured)
        for recipe in recipes
    ]


def test_the_wall_time_report_shares_each_phase_of_the_processes_and_names_the_worst_stall():
    stall = "20.0 s idle from 40.0 s: bench/measure/worker.py:58 _run_here"
    measured = dict(
        build_seconds=1.0,
        train_seconds=2.0,
        startup_seconds=10.0,
        blocks_seconds=30.0,
        teardown_seconds=4.0,
        stalled_seconds=20.0,
        stall=stall,
    )
    runs = runs_frame(
        _process_rows("keras2-r1", ("plain_ae", "kl_layer"), 60.0, **measured)
        # a process from before the phases were recorded: all of its time is unrecorded
        + _process_rows("keras2-r2", ("plain_ae",), 40.0)
    )
    blocks = blocks_frame({("keras2-r1", "plain_ae"): [2.0] * 5, ("keras2-r1", "kl_layer"): [2.0]})
    heading, sentence, (_, table) = walltime_blocks(wall_time_of(runs, blocks))
    assert heading == ("h2", "Where the wall time went")
    shares = dict(zip(table.iloc[:, 0], table.iloc[:, 2]))
    # of 100 s: the timed steps 12 of the paired timing's 30, two runs' building 2 and epochs 4
    assert shares == {
        "timed train steps (blocks.csv)": "12.0%",
        "paired timing, untimed": "18.0%",
        "training (the epochs of fit)": "4.0%",
        "building": "2.0%",
        "start-up": "10.0%",
        "teardown": "4.0%",
        "processes that recorded no phases (runs in a Jupyter kernel, older folders)": "40.0%",
        "other": "10.0%",
    }
    assert "idle (stalled) for 20.0 s, 20.0% of it" in sentence[1]
    assert stall in sentence[1] and "keras2-r1" in sentence[1]


def test_a_folder_without_wall_times_says_so():
    heading, sentence = walltime_blocks(
        wall_time_of(runs_frame([record("plain_ae", "keras2")]), None)
    )
    assert sentence == ("p", "No worker process recorded its wall time.")
