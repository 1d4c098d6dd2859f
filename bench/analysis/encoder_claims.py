"""Posts IV's and VII's ~1.5x on each API: the claim's ratio, and the encoder twice or not.

Each backend traces and counts its own ops (``records.CONVOLUTION_OPS``: TensorFlow's graph ops,
JAX's StableHLO ops, PyTorch's ATen operators), so the two sides of a claim are compared on one
API only. Whether the encoder runs twice is ``verdicts.encoder_twice``, the rule the answer and the
report's causes read; the report words the table (``bench.report.backends``).
"""

import pandas as pd

from bench.analysis import verdicts

# The claims whose ~1.5x comes from a second encoder pass (posts IV and VII).
ENCODER_TWICE_LOW = 1.3
COLUMNS = [
    "claim",
    "api",
    "ratio",
    "ci_low",
    "ci_high",
    "convolutions",
    "baseline_convolutions",
    "encoder_twice",  # True, False, or None without counts on both sides
    "basis",  # verdicts.LAYER_COUNTS or verdicts.OP_TYPES; "" without counts
    "slower",  # the claim's ratio lies above 1 with its whole CI
]


def encoder_claims(runs: pd.DataFrame, claims: pd.DataFrame, encoder_layers: int) -> pd.DataFrame:
    """A row per row of ``claims`` (a claim table) whose claim is an encoder twice's ~1.5x."""
    rows = []
    for row in claims.itertuples():
        claim = row.claim
        if claim.low < ENCODER_TWICE_LOW:
            continue
        mine, theirs = (
            verdicts.step_counts(runs, name, row.api) for name in (claim.recipe, claim.baseline)
        )
        encoder = verdicts.encoder_twice(mine, theirs, encoder_layers)
        rows.append(
            {
                "claim": claim,
                "api": row.api,
                "ratio": row.ratio,
                "ci_low": row.ci_low,
                "ci_high": row.ci_high,
                "convolutions": mine.convolutions,
                "baseline_convolutions": theirs.convolutions,
                "encoder_twice": encoder.twice,
                "basis": encoder.basis,
                "slower": verdicts.slower(row),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)
