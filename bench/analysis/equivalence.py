"""Whether a recipe computes the shared objective: what ``python -m bench verify`` decides from
one SGD step measured in a worker process (``bench.measure.equivalence``).

Loss, BCE and KL must match the numpy objective to ``LOSS_RTOL``, every gradient element the
reference recipe's to ``GRADIENT_TOLERANCE``, the same bounds the test suite holds the built-in
recipes to. A failure says what its numbers suggest and the change to make (docs/own-recipes.md
lists them): a term off by a constant factor names the factor (a sum over the pixels, the latent
dimensions or the batch instead of a mean; a 0.5; ``fact`` applied twice or not at all), a loss
missing or doubling a term names the term, a loss whose noise is not the network's sampling
layer's says so, a missing log key names the term. A recipe that raises is explained by the rule
``run`` uses too (``bench.explanations``).
"""

import itertools
import math
from dataclasses import dataclass

from bench.explanations import missing_log_key

LOSS_RTOL = 1e-5
# Per element: |g - g_ref| <= rtol * |g_ref| + atol_share * max|g_ref| of that weight; the share
# keeps near-zero elements, whose float32 round-off is relatively large, from failing.
GRADIENT_TOLERANCE = {"rtol": 1e-4, "atol_share": 1e-5}
FACT = 0.3  # the KL factor of the check: not 1, so that dropping or squaring it shows
TERMS = ("loss", "bce", "kl")


@dataclass(frozen=True)
class Check:
    """One line of ``verify``'s output: a check on one API, its measured difference, and for a
    failure what the numbers suggest."""

    recipe: str
    api: str
    name: str  # loss, bce, kl, gradients, or step (the recipe could not take one)
    passed: bool
    measured: str
    hint: str = ""


def judge(found: dict) -> list:
    """The ``Check``s of one API's measurement (a ``bench.measure.equivalence`` answer entry)."""
    where = (found["recipe"], found["api"])
    if "error" in found:
        return [Check(*where, "step", False, "no step", f"the recipe raised: {found['error']}")]
    if found.get("missing_keys"):
        missing = found["missing_keys"].items()
        return [_missing_key(where, term, key, found) for term, key in missing]
    checks = [_term_check(where, term, found) for term in TERMS]
    return [*checks, _gradient_check(found, loss_ok=all(check.passed for check in checks))]


def _missing_key(where: tuple, term: str, key: str, found: dict) -> Check:
    return Check(
        *where,
        term,
        False,
        f"log key {key!r} absent",
        missing_log_key(term, key, found.get("log_keys", [])),
    )


def _term_check(where: tuple, term: str, found: dict) -> Check:
    mine, expected = found["terms"].get(term, math.nan), found["objective"][term]
    if not math.isfinite(mine):
        return Check(
            *where,
            term,
            False,
            "not logged",
            f"metric names: no {term!r} in the logs: say which log key holds it in Built.log_keys",
        )
    relative = abs(mine - expected) / max(abs(expected), 1e-12)
    measured = f"{mine:.8g} vs numpy {expected:.8g}: relative difference {relative:.1e}"
    if relative <= LOSS_RTOL:
        return Check(*where, term, True, measured)
    return Check(*where, term, False, measured, _term_hint(term, mine, found))


def _near(value: float, target: float) -> bool:
    """Equal within the check's own tolerance: closer than the KL term is to zero."""
    return abs(value - target) <= LOSS_RTOL * max(abs(target), 1e-12)


# --- constant factors ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Factor:
    """A constant by which a term of a recipe's loss commonly differs from the shared one: its
    value, what it means and the change that removes it."""

    value: float
    label: str
    cause: str
    change: str


def factors(shape: dict) -> dict:
    """The known factors of a check whose batch has ``shape`` (pixels, latent, batch), by term:
    each term's candidates in groups of which a difference holds at most one."""
    pixels, latent, batch = shape["pixels"], shape["latent"], shape["batch"]
    over_pixels = Factor(
        pixels,
        f"{pixels} pixels",
        f"it sums over the {pixels} pixels instead of averaging them",
        "take the mean over every pixel (vae_impls.objective.reconstruction_loss)",
    )
    over_latent = Factor(
        latent,
        f"{latent} latent dimensions",
        f"it sums over the {latent} latent dimensions instead of averaging them",
        "take the mean over the latent dimensions (vae_impls.objective.kl_loss)",
    )
    over_batch = Factor(
        batch,
        f"batch of {batch}",
        f"it sums over the {batch} images of the batch instead of averaging them",
        "take the mean over the batch",
    )
    half = Factor(
        0.5,
        "0.5",
        "it is halved (the -0.5 * sum(...) form)",
        "drop the 0.5: the shared KL is -mean(1 + log_var - mu^2 - exp(log_var))",
    )
    double = Factor(
        2.0, "2", "it is counted twice", "add it to the loss once (one add_loss, one term)"
    )
    fact_twice = Factor(
        FACT,
        "fact",
        "fact is applied twice",
        "multiply by net.fact once (kl_loss already applies it)",
    )
    no_fact = Factor(1 / FACT, "1/fact", "fact is not applied", "multiply the KL by net.fact")
    scale = (half, double)
    return {
        "bce": ((over_pixels,), (over_batch,), scale),
        "kl": ((over_latent,), (over_batch,), scale, (fact_twice, no_fact)),
    }


def factorings(groups: tuple) -> list:
    """Every product of at most one factor per group, the simplest (fewest factors) first."""
    choices = itertools.product(*[(None, *group) for group in groups])
    found = [tuple(factor for factor in choice if factor) for choice in choices]
    return sorted(found, key=len)


def product(chosen: tuple) -> float:
    return math.prod(factor.value for factor in chosen)


def _factored(mine: float, expected: float, groups: tuple):
    """The simplest non-trivial product of ``groups``' factors by which ``mine`` is
    ``expected``; None for none."""
    return next(
        (
            chosen
            for chosen in factorings(groups)
            if chosen and _near(mine, expected * product(chosen))
        ),
        None,
    )


def _factor_hint(term: str, chosen: tuple) -> str:
    name = "BCE" if term == "bce" else "KL"
    labels = " x ".join(factor.label for factor in chosen)
    causes = "; ".join(factor.cause for factor in chosen)
    changes = "; ".join(factor.change for factor in chosen)
    ratio = f"{name} is {product(chosen):.6g}x the shared objective's ({labels})"
    return f"{ratio}: {causes}. Fix: {changes}"


# --- what a wrong term's numbers suggest --------------------------------------------------------


NOISE_ELSEWHERE = (
    "the noise is not drawn by the network's sampling layer, whose noise verify fixes: draw z "
    "with vae_impls.network.sampling_layer(keras, net)([mu, log_var])"
)


def _term_hint(term: str, mine: float, found: dict) -> str:
    """What a wrong loss term's number suggests, where it matches a known mistake."""
    objective = found["objective"]
    groups = factors(found["shape"]) if "shape" in found else {}
    if term == "kl" and _near(mine, objective["kl"] * FACT):
        return "KL off by exactly fact: the factor is applied twice"
    if term == "kl" and _near(mine, objective["kl"] / FACT):
        return "KL off by exactly 1/fact: the factor is not applied"
    if term in groups and (chosen := _factored(mine, objective[term], groups[term])):
        return _factor_hint(term, chosen)
    if term == "loss" and (parts := _loss_parts(mine, objective, groups)):
        return parts
    if term != "kl" and found.get("noise", {}).get("elsewhere"):
        return NOISE_ELSEWHERE
    return f"{term} differs from the shared objective by {mine - objective[term]:+.3g}"


def _loss_parts(mine: float, objective: dict, groups: dict) -> str:
    """Which of the two terms a wrong loss misses, doubles or scales: loss = a * BCE + b * KL
    for the simplest known a and b; "" for none."""
    bce, kl = objective["bce"], objective["kl"]
    if _near(mine, bce):
        return "loss equals BCE: no KL term reached the loss"
    if _near(mine, kl):
        return "loss equals KL: no BCE term reached the loss"
    if _near(mine, bce + kl * FACT):
        return "loss holds the KL times fact twice: the factor is applied twice"
    if _near(mine, bce + kl / FACT):
        return "loss holds the KL without fact: the factor is not applied"
    if _near(mine, 2 * bce + kl):
        return "loss holds the BCE twice: add the reconstruction loss once"
    if _near(mine, bce + 2 * kl):
        return "loss holds the KL twice: add the KL once (one add_loss, not one per call)"
    if not groups:
        return ""
    candidates = [
        (len(of_bce) + len(of_kl), of_bce, of_kl)
        for of_bce in factorings(groups["bce"])
        for of_kl in factorings(groups["kl"])
        if (of_bce or of_kl) and _near(mine, bce * product(of_bce) + kl * product(of_kl))
    ]
    if not candidates:
        return ""
    _, of_bce, of_kl = min(candidates, key=lambda candidate: candidate[0])
    parts = [
        _factor_hint(term, chosen) for term, chosen in (("bce", of_bce), ("kl", of_kl)) if chosen
    ]
    return "loss = its BCE + KL, where " + " and ".join(parts)


def _gradient_check(found: dict, loss_ok: bool) -> Check:
    where, reference = (found["recipe"], found["api"]), found.get("reference")
    gradients = found.get("gradients")
    if not reference or gradients is None:
        return Check(*where, "gradients", True, f"not compared: no reference works on {where[1]}")
    measured = (
        f"vs {reference}: largest difference {gradients['max_difference']:.1e}, "
        f"{gradients['worst_over_tolerance']:.2g} of the tolerance"
    )
    if gradients["missing"]:
        names = ", ".join(gradients["missing"][:3])
        return Check(
            *where,
            "gradients",
            False,
            measured,
            f"weights {names} are in one model only: build with vae_impls.network's builders, "
            "whose fixed layer names give every recipe the same weights",
        )
    first = gradients["first"]
    if first is None:
        return Check(*where, "gradients", True, measured)
    element = f"{first['weight']}[{', '.join(map(str, first['index']))}]"
    why = "" if loss_ok else "; the loss above differs too"
    return Check(
        *where,
        "gradients",
        False,
        measured,
        f"first difference at {element}: {first['mine']:.6g} vs {reference}'s "
        f"{first['reference']:.6g}{why}",
    )
