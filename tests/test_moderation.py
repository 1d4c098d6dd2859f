"""bench.analysis.moderation on constructed ratios: the moderated variance and its freedom, the
prior fitted on a family's ratios to its floor, and the ratio table that uses it. Its coverage is
tests/test_allocation.py's simulation."""

import math

import numpy as np
import pandas as pd
import pytest

from bench.analysis import estimators, moderation, step_ratios
from tests.builders import frame_of, paired_blocks_frame

RATIOS = [1.10, 1.20, 1.15]


def test_a_moderated_variance_weighs_the_prior_and_the_ratios_own_spread_by_their_freedom():
    prior = moderation.Prior(scale=2.0, freedom=2.0, total_freedom=20.0)
    predicted = 0.001
    found = moderation.interval(RATIOS, prior, predicted)
    own = np.var(np.log(RATIOS), ddof=1)
    variance = (2.0 * 2.0 * predicted + 2 * own) / (2.0 + 2)
    margin = estimators.t_quantile(4) * math.sqrt(variance / 3)
    center = np.mean(np.log(RATIOS))
    assert found["df"] == 4
    assert (found["ci_low"], found["ci_high"]) == pytest.approx(
        (math.exp(center - margin), math.exp(center + margin))
    )
    assert found["half_width"] == pytest.approx(math.sinh(margin))


def test_without_a_prior_or_a_blocks_prediction_the_interval_is_the_t_interval_on_its_processes():
    plain = estimators.log_t_interval(RATIOS)
    prior = moderation.Prior(scale=2.0, freedom=2.0, total_freedom=20.0)
    for found in (
        moderation.interval(RATIOS, moderation.NO_PRIOR, 0.001),
        moderation.interval(RATIOS, prior, math.nan),
    ):
        assert found["df"] == 2
        assert (found["ci_low"], found["ci_high"]) == pytest.approx(
            (plain["ci_low"], plain["ci_high"])
        )
    lone = moderation.interval([1.3], prior, 0.001)
    assert math.isnan(lone["ci_low"]) and math.isnan(lone["df"])


def test_a_family_of_alike_ratios_lends_the_most_freedom_and_a_scattered_one_less():
    predicted = np.array([0.001, 0.002, 0.004, 0.001, 0.003])
    alike = moderation.fit_prior(1.5 * predicted, np.full(5, 2.0), predicted)
    assert float(alike.scale) == pytest.approx(1.5)
    assert float(alike.freedom) == moderation.MOST_PRIOR_FREEDOM
    assert float(alike.total_freedom) == 10
    scattered = predicted * np.array([0.001, 30.0, 1.0, 0.01, 100.0])
    loose = moderation.fit_prior(scattered, np.full(5, 2.0), predicted)
    assert 0 < float(loose.freedom) < moderation.MOST_PRIOR_FREEDOM


def test_fewer_than_three_ratios_with_a_spread_lend_nothing():
    predicted = np.array([0.001, 0.002, 0.004])
    variances = np.array([0.001, 0.002, np.nan])  # the third was measured in one process
    prior = moderation.fit_prior(variances, np.array([2.0, 2.0, 0.0]), predicted)
    assert (float(prior.freedom), float(prior.scale)) == (0.0, 1.0)
    assert float(prior.interval_freedom(3)) == 2


def test_an_interval_has_no_more_freedom_than_its_family():
    prior = moderation.Prior(scale=1.0, freedom=2.0, total_freedom=5.0)
    assert [float(prior.interval_freedom(n)) for n in (2, 3, 5, 9)] == [3, 4, 5, 8]


def test_the_prior_is_fitted_on_each_apis_ratios_to_its_floor():
    rows = [
        (recipe, api, floor, floor_api, ratio)
        for recipe, api, floor, floor_api, ratios in (
            ("kl_layer", "keras2", "plain_ae", "keras2", [1.0, 1.1, 1.05]),
            ("model_add_loss", "keras2", "plain_ae", "keras2", [1.0, 1.2, 1.1]),
            ("tensor_transfer", "keras2", "plain_ae", "keras2", [1.0, 1.04]),
            ("vae_loss_layer", "keras2", "kl_layer", "keras2", [1.4, 2.0, 1.0]),  # not a floor
            ("kl_layer", "keras3-port", "plain_ae", "keras3", [1.0, 1.1, 1.05]),
        )
        for ratio in ratios
    ]
    ratios = pd.DataFrame(rows, columns=[*moderation.KEY, "ratio"])
    spreads = {
        tuple(key): (0.1, 7.0) for key in ratios[moderation.KEY].drop_duplicates().to_numpy()
    }
    priors = moderation.priors(ratios, spreads)
    assert set(priors) == {"keras2", "keras3", "keras3-port"}  # a family's every API
    predicted = float(moderation.predicted_variance(0.1, 7.0))
    variances = [np.var(np.log(values), ddof=1) for values in ([1.0, 1.1, 1.05], [1.0, 1.2, 1.1])]
    variances.append(np.var(np.log([1.0, 1.04]), ddof=1))
    pooled = (2 * variances[0] + 2 * variances[1] + variances[2]) / 5 / predicted
    assert priors["keras2"].scale == pytest.approx(pooled)
    assert priors["keras2"].total_freedom == 5
    assert priors["keras3-port"].freedom == 0  # one ratio: nothing to borrow from


def test_the_apis_one_process_runs_share_their_family():
    """Keras 3 on TensorFlow's two recipes that run as written borrow from the ports beside them
    in the same processes, against the same floor; Keras 2 stays a family of its own."""
    triples = ([1.0, 1.1, 1.05], [1.0, 1.2, 1.1], [1.02, 1.08, 1.0])
    rows = [
        (recipe, api, "plain_ae", floor, ratio)
        for recipe, api, floor, ratios in (
            ("kl_layer", "keras3-port", "keras3", triples[0]),
            ("model_add_loss", "keras3-port", "keras3", triples[1]),
            ("tensor_transfer", "keras3", "keras3", triples[2]),
            ("gradient_tape", "keras3", "keras3", [1.0, 1.04]),
            ("kl_layer", "keras2", "keras2", triples[0]),
        )
        for ratio in ratios
    ]
    ratios = pd.DataFrame(rows, columns=[*moderation.KEY, "ratio"])
    spreads = {
        tuple(key): (0.1, 7.0) for key in ratios[moderation.KEY].drop_duplicates().to_numpy()
    }
    priors = moderation.priors(ratios, spreads)
    assert priors["keras3"] == priors["keras3-port"]
    assert priors["keras3"].total_freedom == 2 + 2 + 2 + 1 and priors["keras3"].freedom > 0
    assert priors["keras2"].freedom == 0  # one ratio: nothing to borrow from
    # an API this version does not know (a hand-edited file) is a family of its own
    unknown = ratios.replace({"api": {"keras2": "keras9"}, "compared_api": {"keras2": "keras9"}})
    assert moderation.priors(unknown, spreads).keys() >= {"keras9", "keras3"}


def test_the_ratio_table_moderates_each_paired_ratio_with_its_apis_family():
    recipes = ("kl_layer", "model_add_loss", "tensor_transfer", "vae_loss_layer")
    truth = {
        "kl_layer": 1.0,
        "model_add_loss": 1.02,
        "tensor_transfer": 1.05,
        "vae_loss_layer": 1.4,
    }
    effects = np.random.default_rng(3).normal(0, 0.01, (len(recipes), 3))
    per_run = {
        (recipe, "keras2", repeat): {
            (recipe, "keras2"): 0.05 * truth[recipe] * math.exp(effects[index, repeat - 1]),
            ("plain_ae", "keras2"): 0.05,
        }
        for index, recipe in enumerate(recipes)
        for repeat in (1, 2, 3)
    }
    blocks = paired_blocks_frame(per_run, blocks=7, steps=3, noise=0.02)
    runs = frame_of({(recipe, "keras2"): [50.0] * 3 for recipe in (*recipes, "plain_ae")})
    table = step_ratios.ratio_table(runs, blocks).set_index("recipe")
    assert (table.method == step_ratios.PAIRED).all()
    assert (table.df == 2 + moderation.MOST_PRIOR_FREEDOM).all()
    for recipe in recipes:
        row = table.loc[recipe]
        assert row.ci_low < truth[recipe] < row.ci_high
