"""The paired timing: how many instances of the floor, the order of the visits in a
block, and the steps each visit times (with stand-in steps: no TensorFlow); and where a worker
process's time went, phase by phase."""

from types import SimpleNamespace

import pytest

from bench.config.plan import PlannedRun
from bench.measure import phases, pressure, timing, worker
from bench.measure.backends.interface import OpCounts
from bench.measure.stall import StallWatch
from bench.measure.timing import MoreBlocks, floor_instances, time_blocks, visiting_order
from bench.results.records import OK, Epoch, ProcessSpec, RunResult, RunSpec


@pytest.mark.parametrize("others, floors", [(1, 1), (2, 1), (3, 2), (4, 2), (9, 3), (12, 3)])
def test_the_floor_has_about_sqrt_m_instances_visited_among_the_m_others(others, floors):
    instances = {(f"recipe_{index}", "keras2"): 1 for index in range(others)}
    instances["plain_ae", "keras2"] = floor_instances(others)
    order = visiting_order(instances)
    visits = [index for index, model in enumerate(order) if model == ("plain_ae", "keras2")]
    assert len(visits) == floors
    assert [model for model in order if model[0] != "plain_ae"] == list(instances)[:-1]
    assert all(later - earlier > 1 for earlier, later in zip(visits, visits[1:]))


def test_the_yardstick_is_visited_right_after_each_instance_of_the_floor():
    instances = {(f"recipe_{index}", "keras2"): 1 for index in range(4)}
    instances["plain_ae", "keras2"] = 2
    instances["yardstick", "keras2"] = 2
    order = [name for name, _ in visiting_order(instances)]
    assert order.count("yardstick") == 2
    assert all(
        order[index - 1] == "plain_ae" for index, name in enumerate(order) if name == "yardstick"
    )
    assert visiting_order({("plain_ae", "keras2"): 1, ("yardstick", "keras2"): 1}) == [
        ("plain_ae", "keras2"),
        ("yardstick", "keras2"),
    ]


def test_without_a_floor_every_model_is_visited_once_per_instance():
    instances = {("kl_layer", "keras2"): 1, ("vae_loss_layer", "keras2"): 2}
    assert (
        visiting_order(instances) == [("kl_layer", "keras2")] + [("vae_loss_layer", "keras2")] * 2
    )
    assert visiting_order({("plain_ae", "keras2"): 2}) == [("plain_ae", "keras2")] * 2


def test_blocks_visit_each_instance_once_reversed_every_other_block_numbering_a_models_steps(
    monkeypatch,
):
    monkeypatch.setattr(pressure, "waited_seconds", lambda: None)  # no block timed again
    called = []
    models = [(f"recipe_{index}", "keras3-port") for index in range(4)]
    steppers = {model: [lambda model=model: called.append(model)] for model in models}
    steppers["plain_ae", "keras3"] = [
        lambda instance=instance: called.append(("plain_ae", instance)) for instance in range(2)
    ]
    timed = time_blocks(steppers, blocks=2, steps=3)
    first = [called[index] for index in range(0, len(called) // 2, 3)]
    second = [called[index] for index in range(len(called) // 2, len(called), 3)]
    assert [model for model in first if model[0] == "plain_ae"] == [
        ("plain_ae", 0),
        ("plain_ae", 1),
    ]
    assert [model for model in second if model[0] == "plain_ae"] == [
        ("plain_ae", 0),
        ("plain_ae", 1),
    ]
    assert [model for model in second if model[0] != "plain_ae"] == models[::-1]
    floor_steps = [step.step for step in timed if step.block == 2 and step.model == "plain_ae"]
    assert floor_steps == list(range(1, 2 * 3 + 1))
    names = [name for name, _ in models] + ["plain_ae"]
    assert {(step.model, step.block) for step in timed} == {
        (name, block) for name in names for block in (1, 2)
    }


@pytest.mark.parametrize(
    "more, blocks_timed",
    [
        (MoreBlocks(), 2),  # paired_blocks exactly
        (MoreBlocks(most=10, before=0.0), 2),  # the planned blocks run whatever the clock says
        (MoreBlocks(most=10, before=9.0), 5),  # until the blocks took what came before them
        (MoreBlocks(most=4, before=100.0), 4),  # ... and no further than the most
    ],
)
def test_a_process_times_more_blocks_while_they_took_less_than_its_time_before(
    monkeypatch, more, blocks_timed
):
    monkeypatch.setattr(pressure, "waited_seconds", lambda: None)  # no block timed again
    clock = [0.0]  # each step takes one second of a clock of the test's own

    def step():
        clock[0] += 1.0

    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])
    steppers = {("kl_layer", "keras2"): [step], ("plain_ae", "keras2"): [step]}
    timed = time_blocks(steppers, blocks=2, steps=1, more=more)
    assert max(step.block for step in timed) == blocks_timed
    assert len(timed) == 2 * blocks_timed  # every block whole: both models, paired


@pytest.mark.parametrize(
    "one_step_block, plan",
    [
        (1.0, (15, 3)),  # 45 s of blocks: within the 90 s, as configured
        (2.0, (15, 3)),  # 90 s: still within
        (2.5, (23, 2)),  # 15 blocks of two steps fit in 90 s: the 45 steps in visits of two
        (30.0, (45, 1)),  # not even 15 of one fit: one a visit (paired_seconds stops the blocks)
        (0.0, (15, 3)),  # no warm step timed: as configured
    ],
)
def test_a_process_whose_blocks_would_outlast_its_seconds_takes_fewer_steps_a_visit(
    one_step_block, plan
):
    assert timing.block_plan(15, 3, 90, one_step_block) == plan
    assert timing.block_plan(15, 3, 0, one_step_block) == (15, 3)  # no paired_seconds: no limit


def test_warming_gives_the_seconds_of_a_block_of_one_step_a_visit(monkeypatch):
    clock = [0.0]  # a clock of the test's own: each instance's steps take their own time

    def stepper(seconds):
        def step():
            clock[0] += seconds

        return step

    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])
    steppers = {
        ("kl_layer", "keras3-jax-port"): [stepper(1.5)],
        ("plain_ae", "keras3-jax"): [stepper(1.0), stepper(1.25)],
    }
    assert timing._warm(steppers) == pytest.approx(3.75)
    assert clock[0] == pytest.approx(timing.WARMING_STEPS * 3.75)


def test_a_runs_training_phase_is_its_epochs_and_its_building_the_rest():
    epochs = tuple(Epoch(index, 1.5, 5, 300.0, index == 1, 1.0, 1.0, 0.1) for index in (1, 2))
    result = phases.of_run(RunResult(OK, epochs=epochs), 4.0)
    assert (result.train_seconds, result.build_seconds) == (3.0, 1.0)
    assert phases.of_run(RunResult(), 0.25).build_seconds == 0.25  # failed before any epoch


def test_each_run_of_a_process_carries_its_processs_phases_and_stalls():
    clock = phases.Phases()
    with clock.timed(phases.BLOCKS):
        pass
    clock.started_up()
    with StallWatch() as watch:
        pass
    result = clock.of_process(RunResult(OK, build_seconds=1.0), watch)
    assert result.build_seconds == 1.0 and result.startup_seconds > 0
    assert 0 <= result.blocks_seconds < 0.1 and result.teardown_seconds is None
    assert (result.stalled_seconds, result.stall) == (0, "")


def test_a_kernel_runs_start_up_counts_the_worker_that_started_the_kernel():
    recorded = RunResult(OK, startup_seconds=3.0, blocks_seconds=1.0, teardown_seconds=0.5)
    result = phases.with_own_startup(recorded, 2.0)
    assert (result.startup_seconds, result.blocks_seconds, result.teardown_seconds) == (5.0, 1, 0.5)
    # a kernel that recorded nothing (it failed first) is left as it was, not given a start-up
    assert phases.with_own_startup(RunResult(), 2.0).startup_seconds is None


def test_a_process_whose_session_cannot_open_still_says_how_long_it_took_to_start(monkeypatch):
    def cannot_open(first):
        raise RuntimeError("no TensorFlow here")

    monkeypatch.setattr(worker, "open_session", cannot_open)
    runs = tuple(
        RunSpec(PlannedRun(f"{name}-keras2-r1", name, "keras2", 1, 1), {}, {}, {})
        for name in ("plain_ae", "kl_layer")
    )
    results = worker.run(ProcessSpec(runs))
    assert [result.error for result in results.values()] == ["RuntimeError: no TensorFlow here"] * 2
    assert all(result.startup_seconds > 0 for result in results.values())
    assert all(result.stalled_seconds == 0 for result in results.values())


def test_a_kernels_worker_whose_session_cannot_open_names_the_variants_it_could_not_time(
    monkeypatch,
):
    def cannot_open(first):
        raise RuntimeError("no TensorFlow here")

    passed = {}

    def run_in_kernel(first, references, beside, chains):
        passed.update(beside=beside, references=references)
        return RunResult()

    monkeypatch.setattr(worker, "open_session", cannot_open)
    monkeypatch.setattr("bench.measure.kernel.run_in_kernel", run_in_kernel)
    run = RunSpec(
        PlannedRun("notebook_kernel-keras2-r1", "notebook_kernel", "keras2", 1, 1), {}, {}, {}
    )
    variants = (("model_add_loss", "keras2"), ("notebook_numpy_fit", "keras2"))
    worker.run(ProcessSpec((run,), references=(("plain_ae", "keras2"),), beside=variants))
    assert passed["beside"].steppers == {} and passed["references"] == (("plain_ae", "keras2"),)
    assert passed["beside"].error == (
        "model_add_loss (keras2), notebook_numpy_fit (keras2): RuntimeError: no TensorFlow here"
    )


def test_a_run_timed_only_is_not_counted_again_its_trained_run_has_its_ops():
    counted = []

    def count_ops(session, built, seed):
        counted.append(built)
        return OpCounts(7, {"Conv2D": 3}, {})

    session = SimpleNamespace(backend=SimpleNamespace(count_ops=count_ops))

    def after(built, **run):
        spec = RunSpec(
            PlannedRun(f"kl_layer-keras3-jax-r{run['repeat']}", "kl_layer", "keras3-jax", **run),
            {},
            {},
            {},
        )
        return worker._after_timing(session, RunResult(status=OK), built, spec)

    assert after("trained", repeat=1, seed=1).graph_ops == 7
    assert after("timed", repeat=2, seed=2, timed_only=True).graph_ops is None
    assert counted == ["trained"]
