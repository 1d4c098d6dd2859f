"""The local executor's rules for a worker that dies before it has answered for every run."""

from bench.results.records import ProcessSpec, RunResult, RunSpec
from bench.run import executors
from tests.test_plan import plan_of


def test_a_dead_worker_blames_the_run_it_was_training_and_leaves_the_later_ones_to_a_new_process():
    runs = plan_of(["plain_ae", "kl_layer", "gradient_tape"], ["keras2"], 1)
    spec = ProcessSpec(tuple(RunSpec(run, {}, {}, {}) for run in runs))
    first, second, third = (run.run_id for run in runs)
    cause = RunResult("killed", "killed by signal 9")
    assert executors.blame_unanswered(spec, {first: RunResult("ok")}, cause) == {second: cause}
    trained = {run_id: RunResult("ok") for run_id in (first, second, third)}
    lost = executors.blame_unanswered(spec, trained, cause)
    assert {result.reference_error for result in lost.values()} == {
        "paired timing lost: killed, killed by signal 9"
    }
    assert {result.status for result in lost.values()} == {"ok"}
