"""The posts' speed claims, each with the posts' own GTX 960 figures, and their verdicts here.

The claimed range of each claim is the band its plot draws and the range its verdict uses.
"""
import math
from dataclasses import dataclass

import pandas as pd

from bench import stats
from vae_impls.keras_api import APIS


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

    @property
    def claimed_range(self) -> str:
        return f">= {self.low:g}x" if math.isinf(self.high) else f"{self.low:g}-{self.high:g}x"


CLAIMS = (
    Claim("notebook_globals", "model_add_loss", 1.3, 1.5, "VII",
          "notebook globals are 1.3-1.5x slower than model.add_loss in a class",
          "'factor 1.5' slower (text: 1.3-1.5x), post VII",
          "~44 ms/step, 10 s/epoch at batch 256 (235 steps), post VII"),
    Claim("vae_loss_layer", "kl_layer", 1.36, 1.5, "IV",
          "the loss layer after the decoder is about 1.4x slower than the KL layer",
          "15 s/epoch, post IV",
          "10-11 s/epoch (post IV); 11 s/epoch, ~23 ms/step at batch 128 (469 steps), post V"),
    Claim("model_add_loss", "kl_layer", 0.9, 1.1, "VII",
          "model.add_loss is comparable to the KL layer",
          "~44 ms/step, 10 s/epoch at batch 256 (235 steps), post VII",
          "~23 ms/step, 11 s/epoch at batch 128 (469 steps), post V"),
)
NOTEBOOK_CLAIM = CLAIMS[0]


def verdict(ci_low: float, ci_high: float, claimed_low: float, claimed_high: float) -> str:
    """``reproduced`` when the CI lies inside the claimed range, ``not reproduced`` when it lies
    entirely outside it, else (overlap, or no CI) ``inconclusive``."""
    if claimed_low <= ci_low and ci_high <= claimed_high:
        return "reproduced"
    if ci_high < claimed_low or ci_low > claimed_high:
        return "not reproduced"
    return "inconclusive"


def claim_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Each claim on every API where both of its recipes have ok runs."""
    rows = []
    for claim in CLAIMS:
        for api in APIS:
            sample, reference = stats.ms_per_step(runs, claim.recipe, api), stats.ms_per_step(runs, claim.baseline, api)
            if sample.empty or reference.empty:
                continue
            ratio = stats.ratio_ci(sample, reference)
            rows.append({"claim": claim, "api": api, "recipe_ms": sample.median(), "baseline_ms": reference.median(),
                         **ratio, "verdict": verdict(ratio["ci_low"], ratio["ci_high"], claim.low, claim.high)})
    return pd.DataFrame(rows, columns=["claim", "api", "recipe_ms", "baseline_ms", "ratio", "ci_low", "ci_high",
                                       "half_width", "p_value", "verdict"])
