"""Models timed by the worker that starts a kernel, in turns with it (bench/measure/beside.py):
a step asked for over the socket is taken where the model lives and timed by that clock, and a
model that cannot be built is named, not fatal. Steppers stand in for models; the worker's side
answers from a thread of this process."""

import time

import pytest

from bench.measure import beside, timing


class CountingStepper:
    """Takes a step by sleeping ``seconds``; counts steps and settles."""

    def __init__(self, seconds):
        self.seconds, self.steps, self.settled = seconds, 0, 0

    def __call__(self):
        time.sleep(self.seconds)
        self.steps += 1

    def settle(self):
        self.settled += 1


def test_a_kernels_steps_of_the_workers_models_are_taken_and_timed_by_the_worker(tmp_path):
    slow, fast = CountingStepper(0.02), CountingStepper(0.0)
    prepared = beside.Beside(
        {("model_add_loss", "keras2"): slow, ("notebook_numpy_fit", "keras2"): fast}
    )
    with beside.serving(prepared, tmp_path) as address:
        remote = beside.connect(address.to_json())
        assert list(remote) == [("model_add_loss", "keras2"), ("notebook_numpy_fit", "keras2")]
        (slow_remote,), (fast_remote,) = remote.values()
        seconds = [slow_remote.timed() for _ in range(3)]
        fast_remote()
        fast_remote.settle()
    assert (slow.steps, fast.steps, fast.settled, slow.settled) == (3, 1, 1, 0)
    assert all(0.02 <= value < 1.0 for value in seconds)


def test_the_kernels_blocks_visit_the_workers_models_as_their_own(tmp_path, monkeypatch):
    monkeypatch.setattr(timing.pressure, "waited_seconds", lambda: None)  # no block timed again
    worker_side = CountingStepper(0.0)
    prepared = beside.Beside({("model_add_loss", "keras2"): worker_side})
    with beside.serving(prepared, tmp_path) as address:
        steppers = {("notebook_kernel", "keras2"): [lambda: None]}
        steppers.update(beside.connect(address.to_json()))
        timed = timing.time_blocks(steppers, blocks=2, steps=3)
    assert worker_side.steps == 6
    assert [step.model for step in timed if step.block == 1] == ["notebook_kernel"] * 3 + [
        "model_add_loss"
    ] * 3


def test_a_step_that_raises_in_the_worker_raises_in_the_kernel_with_its_error(tmp_path):
    def broken():
        raise MemoryError("out of memory")

    prepared = beside.Beside({("model_add_loss", "keras2"): broken})
    with beside.serving(prepared, tmp_path) as address:
        ((remote,),) = beside.connect(address.to_json()).values()
        with pytest.raises(RuntimeError) as raised:
            remote.timed()
    assert str(raised.value) == (
        "model_add_loss (keras2), timed by the kernel's worker: MemoryError: out of memory"
    )


def test_nothing_to_time_beside_opens_no_socket(tmp_path):
    with beside.serving(beside.Beside(), tmp_path) as address:
        assert address is None and beside.connect(None) == {}
    assert list(tmp_path.iterdir()) == []


def test_a_model_that_cannot_be_built_is_named_and_the_others_are_kept(monkeypatch):
    def reference_stepper(session, recipe, api):
        if recipe == "broken":
            raise ValueError("no such layer")
        return CountingStepper(0.0)

    monkeypatch.setattr(timing, "reference_stepper", reference_stepper)
    prepared = beside.prepare(None, [("broken", "keras2"), ("model_add_loss", "keras2")])
    assert list(prepared.steppers) == [("model_add_loss", "keras2")]
    assert prepared.error == "broken (keras2): ValueError: no such layer"


@pytest.mark.parametrize("recipe, expected", [("notebook_kernel", 2), ("notebook_numpy_fit", 0)])
def test_only_a_kernel_run_has_models_timed_beside_it(recipe, expected):
    from bench.analysis import claims

    found = claims.beside(recipe, "keras2")
    assert len(found) == expected
    if expected:
        assert set(found) == {("model_add_loss", "keras2"), ("notebook_numpy_fit", "keras2")}
        assert set(found).isdisjoint(claims.references(recipe, "keras2"))
