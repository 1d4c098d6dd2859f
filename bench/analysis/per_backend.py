"""The numbers of the report's Backends: each backend's floor and runs, the encoder-twice claims.

Each backend's recipes run in worker processes of their own (one Keras package, one backend per
process), so every ratio compares recipes of one backend, each to its own backend's floor. Posts
IV's and VII's ~1.5x (the encoder wired into the graph twice) is asked on each API. Each backend
traces and counts its own ops (``records.CONVOLUTION_OPS``: TensorFlow's graph ops,
JAX's StableHLO ops, PyTorch's ATen operators), so the two sides of a claim are compared on one
API only. Whether the encoder runs twice is ``verdicts.encoder_twice``, the rule the answer and the
report's causes read; the report words the table (``bench.report.backends``).
"""

import math

import pandas as pd

from bench.analysis import verdicts
from bench.results.records import OK
from vae_impls import keras_api, registry

FLOOR_COLUMNS = ["group", "backend", "apis", "floor_ms_per_step", "floor_step_ms", "works", "fails"]
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


def groups_of(runs: pd.DataFrame) -> list:
    """The API groups (one per Keras package and backend) the runs used, in ``APIS`` order."""
    used = {keras_api.process_group(api) for api in runs.api if api in keras_api.APIS}
    return [api for api in keras_api.APIS if api in used]


def backend_floors(runs: pd.DataFrame, speed: pd.DataFrame) -> pd.DataFrame:
    """A row per API group the runs used: its backend, its APIs, its floor's ms/step of fit and
    train step (NaN: no ok run; from ``speed``, a speed table), and how many recipes x APIs work
    there (an ok run) and fail (runs, none ok)."""
    rows = []
    for group in groups_of(runs):
        floor = speed[(speed.recipe == registry.FLOOR) & (speed.api == group)]
        found = floor.iloc[0] if len(floor) else None
        rows.append(
            {
                "group": group,
                "backend": keras_api.backend_of(group),
                "apis": _apis_of(runs, group),
                "floor_ms_per_step": found.ms_per_step if found is not None else math.nan,
                "floor_step_ms": found.step_ms if found is not None else math.nan,
                "works": _count(runs, group, ok=True),
                "fails": _count(runs, group, ok=False),
            }
        )
    return pd.DataFrame(rows, columns=FLOOR_COLUMNS)


def _apis_of(runs: pd.DataFrame, group: str) -> list:
    used = set(runs.api)
    return [api for api in keras_api.APIS if api in used and keras_api.process_group(api) == group]


def _count(runs: pd.DataFrame, group: str, ok: bool) -> int:
    """Recipes x APIs of ``group`` with an ok run (``ok``), or with runs and none ok."""
    known = runs[runs.api.isin(keras_api.APIS)]  # a torn or edited row may name no API
    mine = known[known.api.map(keras_api.process_group) == group]
    oks = mine.groupby(["recipe", "api"]).status.apply(lambda status: (status == OK).any())
    return int(oks.sum() if ok else (~oks).sum())


def not_installed(env: dict, runs: pd.DataFrame) -> list:
    """The backends env.json records as absent where the benchmark ran (a folder from before the
    other backends records nothing: none) and no run used."""
    used = {keras_api.backend_of(api) for api in runs.api}
    return [
        backend
        for backend in keras_api.BACKENDS[1:]  # those a TensorFlow-only folder may lack
        if backend in env and env[backend] is None and backend not in used
    ]
