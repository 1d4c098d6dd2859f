"""bench.formatting: the one rule for values whose scale varies, significant figures."""

import math
from types import SimpleNamespace

import pytest

from bench import formatting
from bench.formatting import MISSING, significant, significant_with_ci, with_ci


@pytest.mark.parametrize(
    "value, text",
    [
        (0.6838096976280212, "0.684"),  # a final loss
        (3.673822448035935e-06, "3.67e-6"),  # a converged KL term: fixed decimals print 0.00
        (-0.00012, "-1.20e-4"),
        (107.016, "107"),
        (12.34, "12.3"),
        (1234.6, "1235"),  # whole digits are never dropped
        (2.5e7, "2.50e7"),
        (0.0, "0"),
        (math.nan, MISSING),
        (None, MISSING),
    ],
)
def test_significant_keeps_three_figures_at_any_scale(value, text):
    assert significant(value) == text


def test_a_value_with_its_interval_in_significant_figures():
    assert significant_with_ci(0.6838, 0.6831, 0.6846) == "0.684 [0.683, 0.685]"
    assert significant_with_ci(3.68e-6, 3.67e-6, 3.69e-6) == "3.68e-6 [3.67e-6, 3.69e-6]"
    assert significant_with_ci(0.68, math.nan, math.nan) == "0.680 [no CI: 1 run]"
    assert significant_with_ci(math.nan, 1.0, 2.0) == MISSING
    assert with_ci(74.12, 72.9, 75.0, " ms/step") == "74.1 ms/step [72.9, 75.0]"  # unchanged


def test_a_ratio_spread_holds_its_whole_interval():
    def spread(ratio, low, high):
        return formatting.ratio_spread_text(SimpleNamespace(ratio=ratio, ci_low=low, ci_high=high))

    # the wider side, rounded up: 0.98 -> 1.24 is +26.5%, shown as 27%
    assert spread(0.98, 0.78, 1.24) == "0.98x ±27%"
    assert spread(1.0, 0.98, 1.02) == "1.00x ±3%"  # 1/0.98 is +2.04%
    assert spread(1.25, 1.245, 1.254) == "1.25x ±0.5%"  # below 1%: tenths
    assert spread(1.0, 0.9905, 1.0097) == "1.00x ±1%"  # 0.97% rounds up to 1: a whole number
    assert spread(1.2, math.nan, math.nan) == "1.20x [no CI: 1 run]"
    assert spread(math.nan, 1.0, 1.1) == formatting.MISSING
    assert spread(1.0, 0.0, 2.0) == "1.00x [0.00, 2.00]"  # no relative side to give
