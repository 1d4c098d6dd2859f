"""bench.analysis.verdicts: one rule per question, and every place that asks it says the same."""

import math
from types import SimpleNamespace

import pytest

from bench.analysis import answer_data, verdicts
from bench.analysis.verdicts import LAYER_COUNTS, OP_TYPES, StepCounts
from bench.report import answer_table
from bench.report.sections import write_report
from bench.results.records import scopes_text
from tests.builders import folder_of_records, record


def ratio(value, low, high):
    return SimpleNamespace(ratio=value, ci_low=low, ci_high=high)


@pytest.mark.parametrize(
    "found, slower, faster",
    [
        (ratio(1.2, 1.1, 1.3), True, False),
        (ratio(0.8, 0.7, 0.9), False, True),
        (ratio(1.0, 0.9, 1.1), False, False),
        (ratio(1.2, math.nan, math.nan), False, False),  # a single run: no CI, no verdict
        (None, False, False),
    ],
)
def test_slower_and_faster_than_the_floor_are_the_whole_ci_on_one_side_of_1(found, slower, faster):
    assert (verdicts.slower(found), verdicts.faster(found)) == (slower, faster)


def test_a_ratio_rose_when_past_the_tolerance_and_its_whole_ci_lies_above_the_baseline():
    assert verdicts.rose(ratio(1.30, 1.21, 1.40), 1.2, 0.05)
    assert not verdicts.rose(ratio(1.30, 1.19, 1.40), 1.2, 0.05)  # the CI holds the baseline
    assert not verdicts.rose(ratio(1.25, 1.21, 1.30), 1.2, 0.05)  # within the tolerance
    assert verdicts.fell(ratio(1.10, 1.05, 1.15), 1.2, 0.05)
    assert not verdicts.fell(ratio(1.10, 1.05, 1.25), 1.2, 0.05)


CONV = {"Conv2D": 1, "Conv2DBackpropFilter": 1}


def scoped(encoder_times: int) -> StepCounts:
    scopes = {
        **{f"encoder_conv_{i}": {op: encoder_times for op in CONV} for i in range(3)},
        "decoder_conv_t_0": CONV,
    }
    return verdicts.counts_of_scopes(scopes)


def test_the_encoder_twice_by_layer_counts_where_both_sides_name_the_encoders_layers():
    found = verdicts.encoder_twice(scoped(2), scoped(1), encoder_layers=3)
    assert (found.twice, found.basis) == (True, LAYER_COUNTS)
    assert set(found.layers) == {"encoder_conv_0", "encoder_conv_1", "encoder_conv_2"}
    assert not verdicts.encoder_twice(scoped(1), scoped(1), encoder_layers=3)


def test_the_encoder_twice_by_convolutions_where_a_backend_scopes_no_encoder_layer():
    unscoped = {"(no layer)": {"stablehlo.convolution": 8}, "decoder_conv_t_0": {"conv": 1}}
    floor = verdicts.counts_of_scopes(
        {
            "(no layer)": {"stablehlo.convolution": 8},
            "decoder_conv_t_0": {"stablehlo.convolution": 9},
        }
    )
    twice = verdicts.counts_of_scopes(
        {
            **unscoped,
            "decoder_conv_t_0": {"stablehlo.convolution": 9},
            "encoder_conv_0": {"stablehlo.convolution": 8},
        }
    )
    found = verdicts.encoder_twice(twice, floor, encoder_layers=3)
    assert (found.twice, found.basis, found.extra_convolutions) == (True, OP_TYPES, 8)
    # PyTorch: all convolutions counted together, no scopes
    torch = verdicts.encoder_twice(StepCounts({}, math.nan, 18), StepCounts({}, math.nan, 12), 3)
    assert (torch.twice, torch.basis) == (True, OP_TYPES)
    # TensorFlow's forward convolutions counted apart: they must be the encoder's layers
    tf = verdicts.encoder_twice(StepCounts({}, 9, 27), StepCounts({}, 6, 18), encoder_layers=2)
    assert (tf.twice, tf.basis) == (False, OP_TYPES)
    unknown = verdicts.encoder_twice(StepCounts({}, math.nan, 18), verdicts.NO_COUNTS, 3)
    assert (unknown.twice, unknown.basis) == (None, "")


# A JAX run as one came from a GPU (2026-12-05): JAX leaves the floor's encoder unscoped, so its
# ops sit in "(no layer)"; vae_loss_layer's second encoder pass is scoped to the encoder's layers.
# The old rules disagreed there: the answer and the causes read the per-layer counts alone
# ("(no layer) run 1.27273 times as often as in the floor"), the Backends table the convolutions
# ("encoder twice: yes").
JAX_DECODER = {
    "decoder_conv_t_0": {"stablehlo.convolution": 3},
    "decoder_conv_t_1": {"stablehlo.convolution": 3},
    "decoder_conv_t_2": {"stablehlo.convolution": 3},
    "decoder_dense": {"stablehlo.dot_general": 3},
}
JAX_FLOOR = {"(no layer)": {"stablehlo.convolution": 8, "stablehlo.dot_general": 3}, **JAX_DECODER}
JAX_KL = {"(no layer)": {"stablehlo.convolution": 8, "stablehlo.dot_general": 6}, **JAX_DECODER}
JAX_TWICE = {
    **JAX_KL,
    "encoder_conv_0": {"stablehlo.convolution": 2},
    "encoder_conv_1": {"stablehlo.convolution": 3},
    "encoder_conv_2": {"stablehlo.convolution": 3},
}
JAX_RUNS = {  # recipe: (api, ms/step, scopes, convolutions)
    "plain_ae": ("keras3-jax", 100.0, JAX_FLOOR, 17),
    "kl_layer": ("keras3-jax-port", 101.0, JAX_KL, 17),
    "vae_loss_layer": ("keras3-jax-port", 130.0, JAX_TWICE, 25),
}


@pytest.fixture(scope="module")
def jax_folder(tmp_path_factory):
    rows = [
        record(
            recipe,
            api,
            repeat,
            ms_per_step=ms * (1 + 0.01 * repeat),
            op_scopes=scopes_text(scopes),
            ops_convolutions=convolutions,
        )
        for recipe, (api, ms, scopes, convolutions) in JAX_RUNS.items()
        for repeat in (1, 2, 3)
    ]
    folder = folder_of_records(tmp_path_factory.mktemp("jax"), "jax", rows)
    write_report(folder.path)
    return folder


def section(markdown: str, title: str) -> str:
    return markdown.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_answer_the_backends_table_and_the_causes_agree_on_the_encoder_twice(jax_folder):
    markdown = (jax_folder.path / "report.md").read_text(encoding="utf-8")
    answer = answer_data.read_answer(jax_folder.path)
    full = answer_table.why_table(answer)  # the why in full, as the report's details give it
    why = dict(zip(full.recipe, full.why))
    assert why["vae_loss_layer"].startswith("encoder in the graph twice: +8 convolutions")
    # kl_layer's KL term adds matrix products outside the layers, and no convolution: the cost
    # model speaks for it, and nothing reads "(no layer)"
    assert why["kl_layer"].startswith("no convolution more than the floor")
    assert "(no layer)" not in " ".join(why.values())
    (backends_row,) = [
        line for line in section(markdown, "Backends").splitlines() if "vae_loss_layer" in line
    ]
    assert "| 25 vs 17 | yes" in backends_row
    (cause,) = [
        line
        for line in section(markdown, "Where the cost comes from").splitlines()
        if line.startswith("- vae_loss_layer")
    ]
    assert "encoder in the graph twice: +8 convolutions" in cause
    answer_rows = section(markdown, "Answer").splitlines()
    (answer_row,) = [line for line in answer_rows if line.startswith("| vae_loss_layer |")]
    assert answer_row.endswith(f"| {answer_table.ENCODER_TWICE} |")  # the answer's short clause
    full_rows = section(markdown, answer_table.WHY_TITLE)
    assert f"| vae_loss_layer | Keras 3 JAX port | {why['vae_loss_layer']} |" in full_rows


# PyTorch scopes no op to a layer and counts its convolutions together: the answer said "no op
# counts" where the Backends table said "encoder twice: yes".
TORCH_RUNS = {  # recipe: (api, ms/step, convolutions)
    "plain_ae": ("keras3-torch", 100.0, 12),
    "kl_layer": ("keras3-torch-port", 120.0, 12),
    "vae_loss_layer": ("keras3-torch-port", 160.0, 18),
}


def test_without_layer_scopes_the_answer_and_the_backends_table_read_the_same_convolutions(
    tmp_path,
):
    rows = [
        record(recipe, api, repeat, ms_per_step=ms * (1 + 0.01 * repeat), ops_convolutions=count)
        for recipe, (api, ms, count) in TORCH_RUNS.items()
        for repeat in (1, 2, 3)
    ]
    folder = folder_of_records(tmp_path, "torch", rows)
    markdown = write_report(folder.path)[0].read_text(encoding="utf-8")
    full = answer_table.why_table(answer_data.read_answer(folder.path))
    why = dict(zip(full.recipe, full.why))
    assert why["vae_loss_layer"].startswith("encoder in the graph twice: +6 convolutions; ")
    # the same convolutions as the floor, 20% slower all the same: the cost model says so
    assert why["kl_layer"].startswith("+20.4 ms/step that no count explains")
    (backends_row,) = [
        line for line in section(markdown, "Backends").splitlines() if "vae_loss_layer" in line
    ]
    assert "| 18 vs 12 | yes, and it costs |" in backends_row
