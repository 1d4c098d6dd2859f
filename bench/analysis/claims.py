"""The posts' speed claims, each with the posts' own GTX 960 figures, and their verdicts here.

The claimed range of each claim is the band its plot draws and the range its verdict uses.
"""

import math
from dataclasses import dataclass

import pandas as pd

from bench import recipes
from bench.analysis import stats
from vae_impls import registry
from vae_impls.keras_api import APIS, floor_api


@dataclass(frozen=True)
class Claim:
    """A speed ratio the posts claim, with the posts' own numbers behind it."""

    recipe: str
    baseline: str
    low: float  # claimed ratio recipe/baseline of ms/step: low..high
    high: float  # math.inf for "at least low"
    post: str
    says: str
    posts_recipe_figure: str
    posts_baseline_figure: str
    reading: str = (
        ""  # which reading of the post's words the recipe is, where the post left it open
    )

    @property
    def claimed_range(self) -> str:
        return f">= {self.low:g}x" if math.isinf(self.high) else f"{self.low:g}-{self.high:g}x"


POST_VII_NOTEBOOK = "notebook globals are 1.3-1.5x slower than model.add_loss in a class"
NOTEBOOK_FIGURE = "'factor 1.5' slower (text: 1.3-1.5x), post VII"
CLASS_FIGURE = "~44 ms/step, 10 s/epoch at batch 256 (235 steps), post VII"


def _notebook_claim(recipe: str, reading: str) -> Claim:
    """Post VII's notebook claim (1.3-1.5x the class version), for one reading of the notebook."""
    return Claim(
        recipe,
        "model_add_loss",
        1.3,
        1.5,
        "VII",
        POST_VII_NOTEBOOK,
        NOTEBOOK_FIGURE,
        CLASS_FIGURE,
        reading=reading,
    )


# Post VII's notebook claim once per reading of the notebook (see vae_impls/notebook_globals.py).
CLAIMS = (
    _notebook_claim("notebook_globals", "fresh kernel, decoder on the encoder's output tensor"),
    _notebook_claim("notebook_encoder_call", "VAE wired as decoder(encoder(x))"),
    _notebook_claim("notebook_rerun", "cells re-run in one kernel before fit"),
    _notebook_claim("notebook_numpy_fit", "fit on numpy arrays, as the post calls it"),
    _notebook_claim("notebook_kernel", "fit on numpy arrays in a real Jupyter kernel"),
    Claim(
        "vae_loss_layer",
        "kl_layer",
        1.36,
        1.5,
        "IV",
        "the loss layer after the decoder is about 1.4x slower than the KL layer",
        "15 s/epoch, post IV",
        "10-11 s/epoch (post IV); 11 s/epoch, ~23 ms/step at batch 128 (469 steps), post V",
    ),
    Claim(
        "model_add_loss",
        "kl_layer",
        0.9,
        1.1,
        "VII",
        "model.add_loss is comparable to the KL layer",
        "~44 ms/step, 10 s/epoch at batch 256 (235 steps), post VII",
        "~23 ms/step, 11 s/epoch at batch 128 (469 steps), post V",
    ),
)


@dataclass(frozen=True)
class Reading:
    """A reading of post VII's notebook and the variant that differs from it in one choice only:
    timed against each other, the pair shows what that choice costs."""

    recipe: str
    undone: str
    choice: str


READINGS = (
    Reading(
        "notebook_globals",
        "model_add_loss",
        "notebook-level globals instead of a class's attributes",
    ),
    Reading(
        "notebook_encoder_call",
        "notebook_globals",
        "the VAE wired as decoder(encoder(x)) instead of the decoder on the encoder's output "
        "tensor",
    ),
    Reading(
        "notebook_rerun", "notebook_globals", "the cells run three times in one kernel before fit"
    ),
    Reading(
        "notebook_numpy_fit",
        "notebook_globals",
        "fit on numpy arrays instead of a tf.data pipeline",
    ),
    Reading(
        "notebook_kernel", "notebook_numpy_fit", "a real Jupyter kernel instead of a worker process"
    ),
)


def references(recipe: str, api: str) -> tuple:
    """What a run of ``recipe`` on ``api`` is timed against in its worker process: the floor, the
    baseline of each claim about the recipe, and the variant its reading differs from, each
    where it runs on the same API. A run in a Jupyter kernel gets its floor only: its reading
    differs from its variant in the process itself (a kernel's instead of a worker's), which
    timing both in one process would cancel, so its comparisons go across processes, and each
    model built in the kernel costs seconds of a budget that buys precision for every ratio."""
    found = [(registry.FLOOR, floor_api(api))] if recipes.includes_kl(recipe) else []
    if recipes.kernel_of(recipe):
        return tuple(found)
    others = [claim.baseline for claim in CLAIMS if claim.recipe == recipe]
    others += [reading.undone for reading in READINGS if reading.recipe == recipe]
    found += [(other, api) for other in others if recipes.status(other, api) == registry.WORKS]
    return tuple(dict.fromkeys(found))


def _ratio_on_each_api(runs: pd.DataFrame, blocks, recipe: str, other: str):
    """(api, ratio of ``recipe`` to ``other``) on every API where both have numbers."""
    measured = stats.Measured.of(runs, blocks)
    for api in APIS:
        ratio = stats.ratio_between(measured, (recipe, api), (other, api))
        if ratio is not None:
            yield api, ratio


def reading_table(runs: pd.DataFrame, blocks: pd.DataFrame = None) -> pd.DataFrame:
    """Each reading against the variant it differs from in one choice, on every API where both
    ran."""
    rows = [
        {
            "recipe": reading.recipe,
            "api": api,
            "undone": reading.undone,
            "choice": reading.choice,
            **ratio,
        }
        for reading in READINGS
        for api, ratio in _ratio_on_each_api(runs, blocks, reading.recipe, reading.undone)
    ]
    return pd.DataFrame(
        rows,
        columns=["recipe", "api", "undone", "choice", *stats.RATIO_FIELDS],
    )


def verdict(ci_low: float, ci_high: float, claimed_low: float, claimed_high: float) -> str:
    """``reproduced`` when the CI lies inside the claimed range, ``not reproduced`` when it lies
    entirely outside it, else (overlap, or no CI) ``inconclusive``."""
    if claimed_low <= ci_low and ci_high <= claimed_high:
        return "reproduced"
    if ci_high < claimed_low or ci_low > claimed_high:
        return "not reproduced"
    return "inconclusive"


def claim_table(runs: pd.DataFrame, blocks: pd.DataFrame = None) -> pd.DataFrame:
    """Each claim on every API where both of its recipes have numbers."""
    rows = [
        {
            "claim": claim,
            "api": api,
            "recipe_ms": stats.ms_per_step(runs, claim.recipe, api).median(),
            "baseline_ms": stats.ms_per_step(runs, claim.baseline, api).median(),
            **ratio,
            "verdict": verdict(ratio["ci_low"], ratio["ci_high"], claim.low, claim.high),
        }
        for claim in CLAIMS
        for api, ratio in _ratio_on_each_api(runs, blocks, claim.recipe, claim.baseline)
    ]
    return pd.DataFrame(
        rows,
        columns=["claim", "api", "recipe_ms", "baseline_ms", *stats.RATIO_FIELDS, "verdict"],
    )
