"""The order a worker's blocks visit its models in: the recipes of each claim marked side by
side next to each other, every model once, the rest in the round's order; and the worker keeps
those chains whole between the floor's instances."""

import random

import pytest

from bench.analysis import neighbours
from bench.analysis.claims import CLAIMS
from bench.config import plan, settings
from bench.config.plan import PlannedRun
from bench.measure.timing import floor_instances, visiting_order
from bench.results.folder import ResultsFolder
from bench.results.records import ProcessSpec, RunSpec
from bench.run import runner

KERAS2 = [
    "plain_ae",
    "kl_layer",
    "tensor_transfer",
    "model_add_loss",
    "notebook_globals",
    "notebook_encoder_call",
    "notebook_rerun",
    "notebook_numpy_fit",
    "vae_loss_layer",
    "gradient_tape",
]
MARKED = [(claim.recipe, claim.baseline) for claim in CLAIMS if claim.side_by_side]


def shuffled(seed: int, api: str = "keras2") -> list:
    return [(recipe, api) for recipe in random.Random(seed).sample(KERAS2, len(KERAS2))]


def next_to_each_other(order: list, one, two) -> bool:
    return abs(order.index(one) - order.index(two)) == 1


@pytest.mark.parametrize("seed", range(8))
def test_each_marked_claims_recipes_are_visited_one_right_after_the_other(seed):
    models = shuffled(seed)
    chains = neighbours.visit_order(models)
    order = [model for chain in chains for model in chain]
    assert sorted(order) == sorted(models)
    assert MARKED  # the claims mark some pairs
    for recipe, baseline in MARKED:
        assert next_to_each_other(order, (recipe, "keras2"), (baseline, "keras2"))
    alone = [chain[0] for chain in chains if len(chain) == 1]
    assert alone == [model for model in models if model in alone]  # the round's order


def test_models_of_no_claim_and_pairs_on_two_apis_keep_the_rounds_order():
    models = [
        ("gradient_tape", "keras3"),
        ("kl_layer", "keras3-port"),
        ("vae_loss_layer", "keras3"),
    ]
    assert neighbours.visit_order(models) == tuple((model,) for model in models)
    ports = [("vae_loss_layer", "keras3-port"), ("plain_ae", "keras3"), ("kl_layer", "keras3-port")]
    assert neighbours.visit_order(ports) == (
        (("vae_loss_layer", "keras3-port"), ("kl_layer", "keras3-port")),
        (("plain_ae", "keras3"),),
    )


@pytest.mark.parametrize("seed", range(8))
def test_the_floors_instances_go_between_the_chains_not_inside_one(seed):
    chains = neighbours.visit_order(shuffled(seed))
    models = [model for chain in chains for model in chain if model[0] != "plain_ae"]
    instances = {model: 1 for model in models}
    instances["plain_ae", "keras2"] = floor_instances(len(models))
    order = visiting_order(instances, chains)
    for chain in chains:
        if len(chain) > 1:
            start = order.index(chain[0])
            assert order[start : start + len(chain)] == list(chain)
    floors = [index for index, model in enumerate(order) if model[0] == "plain_ae"]
    assert len(floors) == floor_instances(len(models))
    assert all(later - earlier > 1 for earlier, later in zip(floors, floors[1:]))


def test_a_workers_blocks_visit_the_chains_first_and_the_rest_in_their_order():
    instances = {("a", "k"): 1, ("b", "k"): 1, ("c", "k"): 1, ("d", "k"): 1}
    chains = ((("c", "k"), ("a", "k")),)
    assert visiting_order(instances, chains) == [("c", "k"), ("a", "k"), ("b", "k"), ("d", "k")]
    assert visiting_order(instances) == list(instances)


def test_a_process_spec_carries_its_chains_through_json():
    run = RunSpec(PlannedRun("kl_layer-keras2-r1", "kl_layer", "keras2", 1, 1), {}, {}, {})
    chains = ((("vae_loss_layer", "keras2"), ("kl_layer", "keras2")), (("plain_ae", "keras2"),))
    spec = ProcessSpec((run,), references=(("vae_loss_layer", "keras2"),), chains=chains)
    assert ProcessSpec.from_json(spec.to_json()) == spec
    assert ProcessSpec.from_json({**spec.to_json(), "chains": []}).chains == ()


def test_the_runner_gives_each_worker_its_models_in_chains(tmp_path):
    config = settings.load("default")
    recipes = ["notebook_encoder_call", "vae_loss_layer", "plain_ae", "model_add_loss"]
    runs = plan.round_runs(config, 1, [("", (recipe, "keras2")) for recipe in recipes])
    spec = runner._process_spec(config, runs, ResultsFolder(tmp_path), {})
    order = [model for chain in spec.chains for model in chain]
    assert ("kl_layer", "keras2") in spec.references  # vae_loss_layer's claim's baseline
    assert sorted(order) == sorted([*((run.recipe, run.api) for run in runs), *spec.references])
    for recipe, baseline in MARKED:
        assert next_to_each_other(order, (recipe, "keras2"), (baseline, "keras2"))
