"""Whether a recipe computes the shared objective: what ``python -m bench verify`` decides from
one SGD step measured in a worker process (``bench.measure.equivalence``).

Loss, BCE and KL must match the numpy objective to ``LOSS_RTOL``, every gradient element the
reference recipe's to ``GRADIENT_TOLERANCE``, the same bounds the test suite holds the built-in
recipes to. A failure says what its numbers suggest: a KL off by exactly ``FACT`` applies the
factor twice, a loss equal to the BCE lost its KL term, a missing log key names the term.
"""

import math
from dataclasses import dataclass

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
    logged = ", ".join(found.get("log_keys", [])) or "nothing"
    return Check(
        *where,
        term,
        False,
        f"log key {key!r} absent",
        f"metric names: no {key!r} in the logs (they hold {logged}): say which log key holds "
        f"the {term} in Built.log_keys",
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
    return Check(*where, term, False, measured, _term_hint(term, mine, found["objective"]))


def _near(value: float, target: float) -> bool:
    """Equal within the check's own tolerance: closer than the KL term is to zero."""
    return abs(value - target) <= LOSS_RTOL * max(abs(target), 1e-12)


def _term_hint(term: str, mine: float, objective: dict) -> str:
    """What a wrong loss term's number suggests, where it matches a known mistake."""
    kl = objective["kl"]
    if term == "kl" and _near(mine, kl * FACT):
        return "KL off by exactly fact: the factor is applied twice"
    if term == "kl" and _near(mine, kl / FACT):
        return "KL off by exactly 1/fact: the factor is not applied"
    if term == "loss" and _near(mine, objective["bce"]):
        return "loss equals BCE: no KL term reached the loss"
    if term == "loss" and _near(mine, objective["bce"] + kl * FACT):
        return "loss holds the KL times fact twice: the factor is applied twice"
    if term == "loss" and _near(mine, objective["bce"] + kl / FACT):
        return "loss holds the KL without fact: the factor is not applied"
    return f"{term} differs from the shared objective by {mine - objective[term]:+.3g}"


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
