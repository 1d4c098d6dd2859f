"""The report's "Backends": Keras 3 on TensorFlow, JAX and PyTorch side by side.

Each backend's recipes run in worker processes of their own (one Keras package, one backend per
process), so every ratio compares recipes of one backend, each to its own backend's floor; the
floors' step times come from separate processes and compare backends only roughly. The section
gives each backend's floor and what runs there, then asks whether posts IV's and VII's ~1.5x (the
encoder wired into the graph twice) holds on each backend: the claim's ratio there, beside the
convolutions each side's traced train step runs and the verdict
(``bench.analysis.per_backend``).
"""

import math

import pandas as pd

from bench.analysis.per_backend import not_installed
from bench.analysis.tables import Tables
from bench.formatting import number, ratio_text
from bench.results.folder import Results
from vae_impls import keras_api

BACKENDS_TITLE = "Backends"


def backend_blocks(results: Results, tables: Tables) -> list:
    """The heading, what the numbers compare, the floors table and the encoder-twice table."""
    if tables.backend_floors.empty:
        return [("h2", BACKENDS_TITLE), ("p", "No run recorded a backend.")]
    return [
        ("h2", BACKENDS_TITLE),
        ("p", _intro(results)),
        ("table", _floors_table(tables.backend_floors)),
        ("p", ENCODER_TEXT),
        _encoder_block(tables),
    ]


def _intro(results: Results) -> str:
    missing = [
        f"{backend} ({keras_api.install_command(backend)})"
        for backend in not_installed(results.env, results.runs)
    ]
    absent = (
        f" Not in this benchmark, not installed where it ran: {'; '.join(missing)}."
        if missing
        else ""
    )
    return (
        "Each backend's recipes ran in worker processes of their own: every ratio compares "
        "recipes of one backend, each to its own backend's floor. The floors' step times come "
        "from separate processes and compare backends only roughly." + absent
    )


def _floors_table(floors: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "backend": row.backend,
                "APIs": ", ".join(row.apis),
                "floor ms/step of fit": _ms_text(row.floor_ms_per_step),
                "floor train step, ms": _ms_text(row.floor_step_ms),
                "works": row.works,
                "fails": row.fails,
            }
            for row in floors.itertuples()
        ]
    )


def _ms_text(value: float) -> str:
    return number(value) if math.isfinite(value) else "n/a"


ENCODER_TEXT = (
    "Posts IV's and VII's ~1.5x on each backend: the claim's ratio on each API where both of its "
    "recipes ran, and the convolutions (forward and gradients) of each side's train step as that "
    "backend traces it. More convolutions than the baseline by the encoder's is the encoder "
    "in the graph twice; the same count with a ratio near 1 is no second pass there."
)


def _encoder_block(tables: Tables) -> tuple:
    table = _encoder_table(tables)
    if table.empty:
        return ("p", "No such claim has both of its recipes on a common API here.")
    return ("table", table)


def _encoder_table(tables: Tables) -> pd.DataFrame:
    rows = [
        {
            "claim": f"post {row.claim.post}: {row.claim.recipe} / {row.claim.baseline}",
            "backend": keras_api.backend_of(row.api),
            "API": row.api,
            "ratio [95% CI]": ratio_text(row),
            "convolutions": f"{_count_text(row.convolutions)} vs "
            f"{_count_text(row.baseline_convolutions)}",
            "encoder twice": _verdict_text(row),
        }
        for row in tables.encoder_claims.itertuples()
    ]
    return pd.DataFrame(
        rows, columns=["claim", "backend", "API", "ratio [95% CI]", "convolutions", "encoder twice"]
    )


def _count_text(value: float) -> str:
    return str(int(value)) if math.isfinite(value) else "n/a"


def _verdict_text(row) -> str:
    """An ``encoder_claims`` row's verdict, and whether its ratio shows a cost."""
    if row.encoder_twice is None:
        return "no op counts"
    if row.encoder_twice:
        return "yes, and it costs" if row.slower else "yes, cost not resolved"
    same = row.convolutions == row.baseline_convolutions
    return ("no: same convolutions" if same else "no: other convolutions") + (
        ", yet slower" if row.slower else ""
    )
