"""Numbers and tables as the report, the gate and the command line print them.

One spelling for a missing number ("n/a"), one way to show a value with its CI, one rule for
measured values whose scale is not known beforehand (losses, KL terms: ``significant``), and one
column-aligned text table for every terminal listing.
"""

import math

MISSING = "n/a"
# Significant figures of a value whose scale varies (a loss near 0.7, a KL term near 1e-6): fixed
# decimals would print both as "0.00" or bury the first in zeros.
SIGNIFICANT_DIGITS = 3
# Below this magnitude (or at and above the next), significant figures are written as 3.67e-6.
SCIENTIFIC_BELOW, SCIENTIFIC_FROM = 1e-3, 1e6


def number(value, digits: int = 1) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return MISSING
    return f"{value:.{digits}f}" if math.isfinite(value) else MISSING


def significant(value, digits: int = SIGNIFICANT_DIGITS) -> str:
    """``value`` to ``digits`` significant figures: 0.684, 107, 12.3; 3.67e-6 for tiny values and
    2.50e7 for huge ones. Whole digits are never dropped: 1234.6 prints as 1235."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return MISSING
    if not math.isfinite(value):
        return MISSING
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if magnitude < SCIENTIFIC_BELOW or magnitude >= SCIENTIFIC_FROM:
        mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    decimals = max(0, digits - 1 - math.floor(math.log10(magnitude)))
    return f"{value:.{decimals}f}"


# What a value measured in one process shows where its interval would be.
NO_CI = "[no CI: 1 run]"


def with_ci(value, low, high, unit: str = "", digits: int = 1) -> str:
    """'74.1 ms/step [72.9, 75.0]'; a value without a CI says so."""
    return _with_interval(lambda x: number(x, digits), value, low, high, unit)


def significant_with_ci(value, low, high, unit: str = "") -> str:
    """'0.684 [0.683, 0.685]', '3.67e-6 [3.61e-6, 3.72e-6]': ``with_ci`` in significant
    figures."""
    return _with_interval(significant, value, low, high, unit)


def _with_interval(text_of, value, low, high, unit: str) -> str:
    if not math.isfinite(value):
        return MISSING
    interval = f"[{text_of(low)}, {text_of(high)}]" if math.isfinite(low) else NO_CI
    return f"{text_of(value)}{unit} {interval}"


def ratio_text(row) -> str:
    """A row with ratio, ci_low and ci_high as '1.23x [1.20, 1.26]'."""
    return with_ci(row.ratio, row.ci_low, row.ci_high, "x", 2)


def ratio_spread_text(row) -> str:
    """A row with ratio, ci_low and ci_high as '1.23x ±3%': the CI as the wider of its two sides
    relative to the ratio, rounded up to a whole percent (a tenth below 1%), so the span shown holds
    the whole interval; ``ratio_text`` gives its ends. Short enough for a table of four backends
    in a terminal's width."""
    ratio, low, high = row.ratio, row.ci_low, row.ci_high
    if not math.isfinite(ratio):
        return MISSING
    if not (math.isfinite(low) and math.isfinite(high) and ratio > 0):
        return f"{number(ratio, 2)}x {NO_CI}"
    if low <= 0:  # no relative side below the ratio: its ends say it
        return ratio_text(row)
    side = 100 * max(ratio / low - 1, high / ratio - 1)
    tenths = math.ceil(side * 10 - 1e-9) / 10
    spread = f"{tenths:.1f}" if tenths < 1 else f"{math.ceil(side - 1e-9)}"  # never "1.0"
    return f"{number(ratio, 2)}x ±{spread}%"


def percent(value) -> str:
    return f"±{100 * value:.1f}%" if math.isfinite(value) else MISSING


def signed_percent(value) -> str:
    return f"{value:+.1%}" if math.isfinite(value) else MISSING


def p_text(value) -> str:
    return f"{value:.3g}" if math.isfinite(value) else MISSING


def duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def text_table(header, rows) -> str:
    """Columns padded to their widest cell, a rule under the header."""
    lines = [[str(cell) for cell in line] for line in (header, *rows)]
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    text = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines
    ]
    return "\n".join([text[0], "-" * max(len(line) for line in text), *text[1:]])


def confidence_text(confidence: float) -> str:
    """'99.6%', '97.5%', '90%': a confidence with enough decimals to tell it from 100%, and no
    trailing zero."""
    shortfall = 100 * (1 - confidence)
    digits = f"{100 * confidence:.{max(1, math.ceil(-math.log10(shortfall)))}f}"
    return digits.rstrip("0").rstrip(".") + "%"
