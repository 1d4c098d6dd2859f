"""Numbers and tables as the report, the gate and the command line print them.

One spelling for a missing number ("n/a"), one way to show a value with its CI, and one
column-aligned text table for every terminal listing.
"""

import math

MISSING = "n/a"


def number(value, digits: int = 1) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return MISSING
    return f"{value:.{digits}f}" if math.isfinite(value) else MISSING


def with_ci(value, low, high, unit: str = "", digits: int = 1) -> str:
    """'74.1 ms/step [72.9, 75.0]'; a value without a CI says so."""
    if not math.isfinite(value):
        return MISSING
    interval = (
        f"[{number(low, digits)}, {number(high, digits)}]"
        if math.isfinite(low)
        else "[no CI: 1 run]"
    )
    return f"{number(value, digits)}{unit} {interval}"


def ratio_text(row) -> str:
    """A row with ratio, ci_low and ci_high as '1.23x [1.20, 1.26]'."""
    return with_ci(row.ratio, row.ci_low, row.ci_high, "x", 2)


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
