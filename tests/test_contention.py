"""Other work on the machine: the CPU pressure read around each timed step, the blocks in which a
neighbour came or went, set aside by the ratios and timed again by the worker (stand-in steps and
pressure: no TensorFlow, no neighbour)."""

import itertools
import time

import pytest

from bench.analysis import pairing
from bench.measure import pressure, timing
from bench.results import contention
from bench.results.records import BlockStep
from tests.builders import blocks_as_read

QUIET, BUSY = 0.1, 0.45  # pressure shares measured quietly and with a neighbour throughout


def steps_of(shares_by_block: dict, seconds_by_model: dict, steps: int = 3) -> list:
    """Block steps: {block: {model: pressure share}}, each model's step taking its seconds."""
    return [
        BlockStep(block, model, "keras2", step, seconds, seconds * shares[model])
        for block, shares in shares_by_block.items()
        for model, seconds in seconds_by_model.items()
        for step in range(1, steps + 1)
    ]


MODELS = {"kl_layer": 0.06, "plain_ae": 0.05}


def test_a_block_a_neighbour_came_into_is_uneven_and_quiet_or_busy_blocks_are_not():
    steps = steps_of(
        {
            1: {"kl_layer": QUIET, "plain_ae": QUIET + 0.05},
            2: {"kl_layer": BUSY, "plain_ae": BUSY - 0.05},
            3: {"kl_layer": QUIET, "plain_ae": BUSY},  # it came between the two
            4: {"kl_layer": BUSY, "plain_ae": QUIET},  # ... and went
        },
        MODELS,
    )
    assert contention.uneven_blocks(steps) == {3, 4}
    assert contention.set_aside(steps) == {3, 4}


def test_uneven_blocks_stay_where_setting_them_aside_would_leave_too_few():
    steps = steps_of(
        {1: {"kl_layer": QUIET, "plain_ae": QUIET}, 2: {"kl_layer": QUIET, "plain_ae": BUSY}},
        MODELS,
    )
    assert contention.uneven_blocks(steps) == {2}
    assert contention.set_aside(steps) == set()  # one even block is not a measurement


def test_steps_without_a_pressure_reading_make_no_block_uneven():
    steps = [BlockStep(1, model, "keras2", 1, seconds) for model, seconds in MODELS.items()]
    assert contention.uneven_blocks(steps) == set()


def test_the_pressure_is_read_from_the_kernels_some_line(tmp_path):
    psi = tmp_path / "cpu"
    psi.write_text(
        "some avg10=0.00 avg60=2.16 avg300=5.42 total=3275405804\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
    )
    assert pressure.waited_seconds(psi) == pytest.approx(3275.405804)
    assert pressure.waited_seconds(tmp_path / "absent") is None
    psi.write_text("some avg10=0.00 total=many\n")
    assert pressure.waited_seconds(psi) is None


def test_the_ratios_leave_out_the_blocks_a_neighbour_came_or_went_in():
    shares = {block: {"kl_layer": QUIET, "plain_ae": QUIET} for block in range(1, 6)}
    shares[4] = {"kl_layer": BUSY, "plain_ae": QUIET}
    steps = steps_of(shares, MODELS)
    # Block 4's kl_layer steps ran while the neighbour took half the machine: twice as long.
    slowed = {(4, "kl_layer"): 2}
    rows = [
        {
            "run_id": "kl_layer-keras2-r1",
            "recipe": "kl_layer",
            "api": "keras2",
            "repeat": 1,
            "process": "keras2-r1",
            **step.__dict__,
            "seconds": step.seconds * slowed.get((step.block, step.model), 1),
            "pressure_seconds": step.pressure_seconds * slowed.get((step.block, step.model), 1),
        }
        for step in steps
    ]
    blocks = blocks_as_read(rows)
    assert pairing.set_aside_blocks(blocks).values.tolist() == [["keras2-r1", 4]]
    ratios = pairing.block_ratios(blocks)
    assert sorted(ratios.block) == [1, 2, 3, 5]
    assert ratios.ratio.to_list() == pytest.approx([1.2] * 4)
    without_readings = blocks.assign(pressure_seconds=float("nan"))  # a kernel without PSI
    assert 4 in set(pairing.block_ratios(without_readings).block)


def test_the_worker_times_one_more_block_for_each_uneven_one(monkeypatch):
    # A neighbour is there only while kl_layer takes its steps of block 2.
    waited = [0.0]

    def stepper(neighbour_in_block: int = 0):
        calls = itertools.count()

        def step():
            block = next(calls) // 3 + 1
            time.sleep(0.01)
            waited[0] += 0.005 if block == neighbour_in_block else 0.001

        return step

    monkeypatch.setattr(pressure, "waited_seconds", lambda: waited[0])

    def steppers():
        return {("kl_layer", "keras2"): [stepper(2)], ("plain_ae", "keras2"): [stepper()]}

    timed = timing.time_blocks(steppers(), blocks=3, steps=3)
    assert sorted({step.block for step in timed}) == [1, 2, 3, 4]
    assert contention.uneven_blocks(timed) == {2}
    assert all(step.pressure_seconds is not None for step in timed)
    # ... but not past the seconds a process may spend on blocks (a block takes ~0.06 s): the
    # two blocks that always run took them, uneven block 2 is not timed again
    timed = timing.time_blocks(steppers(), blocks=3, steps=3, seconds=0.1)
    assert sorted({step.block for step in timed}) == [1, 2]
    assert contention.uneven_blocks(timed) == {2}
