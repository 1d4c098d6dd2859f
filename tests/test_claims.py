"""bench.analysis.claims' verdicts on constructed ratios: each claim's margin, the family's
intervals (two one-sided tests to reproduce a claim, a simultaneous interval to refute it), and
the lines the answer prints of them."""

import dataclasses
import math
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from bench.analysis import claims, estimators, step_ratios
from bench.report.answer import claim_ratio_text, claims_table
from bench.report.claim_section import family_clause

(NOTEBOOK,) = [claim for claim in claims.CLAIMS if claim.recipe == "notebook_globals"]
# Seven processes' ratios: geometric mean 1.40, 95% t-interval ~[1.31, 1.49], inside the notebook
# claim's 1.3-1.5x; at 1 - 0.05/14 ~[1.24, 1.58], across its margin's edges 1.25 and 1.55.
PROCESS_RATIOS = 1.4 * np.exp(0.1 * np.array([-1.0, -0.6, -0.3, 0.0, 0.3, 0.6, 1.0]))


def paired(ratio: float, low: float, high: float, n: int = 7, **fields) -> SimpleNamespace:
    """A ratio as ratio_between gives it (and ratios.csv holds it), measured paired."""
    fields = {"df": n - 1, **fields}
    return SimpleNamespace(
        ratio=ratio, ci_low=low, ci_high=high, n=n, method=step_ratios.PAIRED, **fields
    )


def of_processes(values) -> SimpleNamespace:
    return SimpleNamespace(
        **estimators.log_t_interval(values), method=step_ratios.PAIRED, df=len(values) - 1
    )


def judged_alone(claim: claims.Claim, ratio) -> claims.Judgement:
    (judgement,) = claims.judge_family([(claim, ratio)])
    return judgement


def test_a_ratio_that_rounds_to_the_claimed_range_reproduces_it():
    judgement = judged_alone(NOTEBOOK, paired(1.51, 1.505, 1.515))
    assert judgement.verdict == "reproduced"
    assert claims.verdict(1.505, 1.515, NOTEBOOK.low, NOTEBOOK.high) == "not reproduced"


def test_a_ratio_beyond_the_margin_does_not_reproduce_it():
    assert judged_alone(NOTEBOOK, paired(1.60, 1.58, 1.62)).verdict == "not reproduced"


def test_the_claimed_range_is_shown_with_its_margin():
    assert NOTEBOOK.claimed_range == "1.3-1.5x ±0.05"
    assert NOTEBOOK.equivalence_range == pytest.approx((1.25, 1.55))
    at_least = claims.Claim("a", "b", 1.3, math.inf, 0.05, "VII", "", "", "")
    assert at_least.claimed_range == ">= 1.3x ±0.05"
    assert at_least.equivalence_range == (pytest.approx(1.25), math.inf)


def test_bonferroni_keeps_a_family_of_one_at_the_plain_confidence():
    assert claims.simultaneous_confidence(1) == estimators.CONFIDENCE
    assert claims.simultaneous_confidence(14) == pytest.approx(1 - 0.05 / 14)


@pytest.mark.parametrize("family_size", [2, 14])
def test_a_paired_simultaneous_interval_is_the_t_interval_at_the_familys_confidence(family_size):
    ratio = of_processes(PROCESS_RATIOS)
    confidence = claims.simultaneous_confidence(family_size)
    low, high = claims.interval_at(ratio, confidence)
    direct = estimators.log_t_interval(PROCESS_RATIOS, confidence)
    assert (low, high) == pytest.approx((direct["ci_low"], direct["ci_high"]))
    assert low < ratio.ci_low and ratio.ci_high < high


@pytest.mark.parametrize("method", [step_ratios.PAIRED, step_ratios.BOOTSTRAP])
def test_a_family_of_one_decides_on_the_plain_interval(method):
    freedom = 4 if method == step_ratios.PAIRED else math.inf
    ratio = SimpleNamespace(ratio=1.1, ci_low=1.0, ci_high=1.3, n=5, method=method, df=freedom)
    assert claims.interval_at(ratio, estimators.CONFIDENCE) == pytest.approx((1.0, 1.3))
    low, high = claims.interval_at(ratio, claims.simultaneous_confidence(3))
    assert low < 1.0 and high > 1.3


def test_a_ratio_without_a_ci_has_no_simultaneous_interval():
    lone = paired(1.4, math.nan, math.nan, n=1)
    assert all(math.isnan(bound) for bound in claims.interval_at(lone, 0.99))
    assert judged_alone(NOTEBOOK, lone).verdict == "inconclusive"


def test_a_verdict_the_plain_ci_would_give_alone_is_inconclusive_in_a_large_family():
    ratio = of_processes(PROCESS_RATIOS)
    assert NOTEBOOK.low <= ratio.ci_low and ratio.ci_high <= NOTEBOOK.high
    assert judged_alone(NOTEBOOK, ratio).verdict == "reproduced"
    family = claims.judge_family([(NOTEBOOK, ratio)] * 14)
    assert {judgement.verdict for judgement in family} == {"inconclusive"}


def claim_ratios_frame(rows: list) -> pd.DataFrame:
    """ratios.csv rows of claims: (recipe, baseline, api, ratio, low, high)."""
    return pd.DataFrame(
        [
            {
                "recipe": recipe,
                "api": api,
                "compared_with": baseline,
                "compared_api": api,
                **vars(paired(ratio, low, high)),
            }
            for recipe, baseline, api, ratio, low, high in rows
        ]
    )


def test_the_answers_claims_are_one_family_across_claims_and_apis():
    ratios = claim_ratios_frame(
        [
            ("notebook_globals", "model_add_loss", "keras2", 1.51, 1.505, 1.515),
            ("model_add_loss", "kl_layer", "keras3-port", 1.0, 0.98, 1.02),
        ]
    )
    verdicts = claims.claim_verdicts(ratios)
    evaluated = [verdict for verdict in verdicts if verdict.judgement is not None]
    assert [verdict.claim.recipe for verdict in evaluated] == ["notebook_globals", "model_add_loss"]
    confidence = claims.reproducing_confidence(2)
    assert {verdict.judgement.verdict_confidence for verdict in evaluated} == {confidence}
    assert {verdict.verdict for verdict in evaluated} == {"reproduced"}
    assert len(verdicts) - len(evaluated) == len(claims.CLAIMS) - 2  # the others not evaluated


def claim_row(ratios, groups: list) -> dict:
    """The answer's claims table row of post VII's notebook_globals claim."""
    table = claims_table(claims.claim_verdicts(ratios), groups)
    return table.iloc[0].to_dict()


def test_the_answers_claims_table_shows_the_margin_the_verdict_and_the_ratio():
    ratios = claim_ratios_frame(
        [
            ("notebook_globals", "model_add_loss", "keras2", 1.51, 1.46, 1.56),
            ("notebook_globals", "model_add_loss", "keras3-port", 1.40, 1.38, 1.42),
            ("model_add_loss", "kl_layer", "keras2", 1.0, 0.98, 1.02),
        ]
    )
    verdicts = claims.claim_verdicts(ratios)
    row = claims_table(verdicts, ["keras2", "keras3"]).iloc[0].to_dict()
    # a column whose every ratio is a port's says so once, in its header
    assert row == {
        "claim": "notebook_globals / model_add_loss (post VII)",
        "claimed": "1.3-1.5x ±0.05",
        "Keras 2": "? 1.51x",  # its 96.7% interval (two one-sided tests) reaches past 1.55
        "Keras 3 TF port": "✓ 1.40x",
    }
    # the interval that would decide it is the report's: in a family of 3, wider than the plain CI
    (keras2,) = [
        verdict for verdict in verdicts if verdict.api == "keras2" and verdict.claim == NOTEBOOK
    ]
    decided = re.search(
        r"96.7% two one-sided \[([0-9.]+), ([0-9.]+)\]",
        claim_ratio_text(keras2.ratio, keras2.judgement),
    )
    assert decided and float(decided[1]) < 1.46 and float(decided[2]) > 1.56


def test_a_claims_column_of_ports_and_code_as_written_marks_each_port():
    ratios = claim_ratios_frame(
        [
            ("notebook_globals", "model_add_loss", "keras3", 1.51, 1.5, 1.52),
            ("model_add_loss", "kl_layer", "keras3-port", 1.0, 0.99, 1.01),
        ]
    )
    table = claims_table(claims.claim_verdicts(ratios), ["keras3"])
    assert list(table.columns) == ["claim", "claimed", "Keras 3 TF"]
    assert table["Keras 3 TF"].tolist()[0] == "✓ 1.51x"
    assert "✓ 1.00x port" in table["Keras 3 TF"].tolist()


def test_a_family_of_one_shows_its_verdict_and_ratio():
    ratios = claim_ratios_frame([("notebook_globals", "model_add_loss", "keras2", 1.51, 1.5, 1.52)])
    assert claim_row(ratios, ["keras2", "keras3"]) == {
        "claim": "notebook_globals / model_add_loss (post VII)",
        "claimed": "1.3-1.5x ±0.05",
        "Keras 2": "✓ 1.51x",
        "Keras 3 TF": "-",
    }


def test_the_family_sentence_names_its_size_its_error_and_both_intervals():
    sentence = family_clause(14)
    assert "the 14 claim x API verdicts each err with at most 0.05/14" in sentence
    assert "✓ where the ratio's 99.3% interval (two one-sided tests) lies inside" in sentence
    assert "✗ where its 99.6% one lies wholly outside" in sentence
    assert "at most 0.05: ✓ where the ratio's 90% interval" in family_clause(1)


@pytest.mark.parametrize("family_size", [1, 14])
def test_reproduced_is_two_one_sided_tests_at_the_familys_error(family_size):
    """A ratio whose interval at 1 - 2 * 0.05/k lies inside the range reproduces the claim though
    its interval at 1 - 0.05/k reaches past the range; it is decided, and shown, on the
    former."""
    ratio = of_processes(PROCESS_RATIOS)
    reproducing = claims.reproducing_confidence(family_size)
    assert reproducing == pytest.approx(1 - 2 * 0.05 / family_size)
    low, high = claims.interval_at(ratio, reproducing)
    claim = claims.Claim("a", "b", low / 1.001, high * 1.001, 0.0, "", "", "", "")
    refuting = claims.interval_at(ratio, claims.simultaneous_confidence(family_size))
    assert refuting[0] < claim.low and claim.high < refuting[1]
    judged = claims.judge_family([(claim, ratio)] * family_size)
    assert {(found.verdict, found.verdict_confidence) for found in judged} == {
        ("reproduced", reproducing)
    }
    assert (judged[0].verdict_low, judged[0].verdict_high) == pytest.approx((low, high))
    # a range a little narrower than that interval is undecided, and the interval shown is the
    # one that would decide it
    narrower = dataclasses.replace(claim, low=low * 1.001)
    (undecided, *_) = claims.judge_family([(narrower, ratio)] * family_size)
    assert undecided.verdict == "inconclusive"
    assert (undecided.verdict_low, undecided.verdict_high) == pytest.approx((low, high))


def test_an_undecided_verdict_keeps_the_interval_that_would_decide_it():
    """Inside the claim's range, the reproducing interval (which reaches across a bound);
    outside it, the refuting one (which reaches into the range)."""
    ratio = of_processes(PROCESS_RATIOS)  # 1.40x: its 99.3% interval reaches past 1.55
    outside = dataclasses.replace(NOTEBOOK, low=1.5, high=1.6)  # 1.45-1.65x with its margin
    inside, beyond = claims.judge_family([(NOTEBOOK, ratio), (outside, ratio)] * 7)[:2]
    assert (inside.verdict, beyond.verdict) == ("inconclusive", "inconclusive")
    assert inside.verdict_confidence == claims.reproducing_confidence(14)
    assert beyond.verdict_confidence == claims.simultaneous_confidence(14)
    assert (inside.verdict_test, beyond.verdict_test) == (claims.TWO_ONE_SIDED, claims.SIMULTANEOUS)
    assert inside.verdict_low < NOTEBOOK.equivalence_range[1] < inside.verdict_high
    assert beyond.verdict_low < outside.equivalence_range[0] < beyond.verdict_high
