"""The paired timing: how many instances of the floor, the order of the visits in a
block, and the steps each visit times (with stand-in steps: no TensorFlow)."""

import pytest

from bench.measure.timing import floor_instances, time_blocks, visiting_order


@pytest.mark.parametrize("others, floors", [(1, 1), (2, 1), (3, 2), (4, 2), (9, 3), (12, 3)])
def test_the_floor_has_about_sqrt_m_instances_visited_among_the_m_others(others, floors):
    instances = {(f"recipe_{index}", "keras2"): 1 for index in range(others)}
    instances["plain_ae", "keras2"] = floor_instances(others)
    order = visiting_order(instances)
    visits = [index for index, model in enumerate(order) if model == ("plain_ae", "keras2")]
    assert len(visits) == floors
    assert [model for model in order if model[0] != "plain_ae"] == list(instances)[:-1]
    assert all(later - earlier > 1 for earlier, later in zip(visits, visits[1:]))


def test_without_a_floor_every_model_is_visited_once_per_instance():
    instances = {("kl_layer", "keras2"): 1, ("vae_loss_layer", "keras2"): 2}
    assert (
        visiting_order(instances) == [("kl_layer", "keras2")] + [("vae_loss_layer", "keras2")] * 2
    )
    assert visiting_order({("plain_ae", "keras2"): 2}) == [("plain_ae", "keras2")] * 2


def test_blocks_visit_each_instance_once_reversed_every_other_block_numbering_a_models_steps():
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
