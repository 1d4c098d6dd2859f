"""A paired ratio's variance helped by its processes' other ratios: a pooled prior, moderated.

A paired ratio's CI rests on its processes' ratios (``pairing.process_ratios``: one per worker
process, the median of its blocks' ratios). With 2-3 processes their spread has 1-2 degrees of
freedom, and a t-interval on them takes a quantile of 4.3-12.7 where a known spread would take 2.
Every ratio of one kind of worker process was measured by the same processes on the same
machine, and each ratio's
blocks say how much its processes must spread at least: a process's log ratio has variance
``lambda * v``, where ``v`` is what its blocks predict (``predicted_variance``: their spread
around their process's mean, pooled over the ratio's processes, over the blocks, for a median)
and ``lambda`` how much more the processes spread than their blocks (a process that runs slow
throughout cancels in its ratio; one disturbed for part of its blocks does not).

The prior (``Prior``) is fitted on the ratios to the floor of the APIs one kind of worker
process runs (the family; Keras 3 on TensorFlow as written and its ports are one): its scale is
the pooled ``lambda`` (each ratio's sample variance over its ``v``, weighted by its degrees of
freedom), and its weight ``d0`` degrees of freedom is Smyth's empirical-Bayes estimate (limma's
``fitFDist``: Stat. Appl. Genet. Mol. Biol. 3(1), 2004, section 6.2) of how alike the ratios'
``lambda`` are, at most ``MOST_PRIOR_FREEDOM``. A ratio's moderated variance is
``(d0 * lambda * v + d * s^2) / (d0 + d)`` with ``d0 + d`` degrees of freedom (at most the
family's in all), ``s^2`` its processes' variance on ``d = n - 1``.

Why the cap: the ratios' ``lambda`` differ by more than chance on real data (the process effect
is partly a ratio's own), so a ratio whose ``lambda`` lies above the family's gets too narrow an
interval when the prior weighs much. ``MOST_PRIOR_FREEDOM`` is set by the coverage simulation
(tests/test_allocation.py; docs/method.md, "Borrowing strength across ratios"): at 2 every ratio
of every scenario keeps 93% coverage with a margin, at 3 some only just do, and not where the
floor's offset is shared by a process's ratios. The functions take numpy arrays with the ratios
on the last axis (the simulation fits thousands of families at once); a NaN variance is a ratio
without one.
"""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from bench.analysis import estimators, pairing
from bench.results.records import YARDSTICK
from vae_impls import registry
from vae_impls.keras_api import APIS, floor_api, process_group

# A process's ratio is the median of its blocks' ratios: its spread is sqrt(pi / 2) times the
# spread of their mean (for normal blocks).
MEDIAN_EFFICIENCY = math.sqrt(math.pi / 2)
# The most degrees of freedom the family's prior counts for in a ratio's variance: set by the
# coverage simulation (docs/method.md), not by the data.
MOST_PRIOR_FREEDOM = 2.0
# Fewer ratios with a variance than this and a family's ratios borrow nothing: too few to say
# how alike their process effects are.
MIN_FAMILY = 3
KEY = ["recipe", "api", "compared_with", "compared_api"]


def predicted_variance(block_spread, blocks):
    """The variance of a process's log ratio that its blocks alone predict: the median of
    ``blocks`` blocks whose log ratios spread by ``block_spread`` within a process."""
    return (MEDIAN_EFFICIENCY * np.asarray(block_spread, dtype=float)) ** 2 / blocks


@dataclass(frozen=True)
class Prior:
    """What a family's ratios say about each one's variance: its processes spread ``scale`` times
    what their blocks predict, worth ``freedom`` degrees of freedom, out of the family's
    ``total_freedom``. Fields are floats, or arrays of one per simulated family."""

    scale: object
    freedom: object
    total_freedom: object

    def interval_freedom(self, processes):
        """The degrees of freedom of a moderated interval on ``processes`` processes."""
        own = np.asarray(processes, dtype=float) - 1
        return own + np.maximum(np.minimum(self.freedom, self.total_freedom - own), 0.0)

    def variance(self, sample_variance, processes, predicted):
        """The moderated variance of a process's log ratio: the prior's ``scale * predicted`` and
        the sample's variance over ``processes`` processes, weighed by their freedom."""
        own = np.asarray(processes, dtype=float) - 1
        prior = np.where(self.freedom > 0, self.freedom * self.scale * predicted, 0.0)
        sample = np.where(own > 0, own * np.nan_to_num(sample_variance), 0.0)
        return (prior + sample) / (self.freedom + own)

    def expected_variance(self, predicted):
        """The variance a ratio's processes are expected to have before they are measured: the
        prior's (a prior of no freedom has a scale of 1: what the blocks predict)."""
        return self.scale * predicted


NO_PRIOR = Prior(1.0, 0.0, 0.0)


def prior_freedom(variances, freedoms, predicted):
    """Smyth's moment estimate of the prior's degrees of freedom (limma's fitFDist) from the
    family's sample ``variances`` on ``freedoms`` degrees, over what their blocks ``predicted``,
    at most ``MOST_PRIOR_FREEDOM``: infinite where the ratios' spreads differ no more than
    chance says, small where they differ a lot."""
    present = np.isfinite(variances) & (variances > 0) & (freedoms > 0) & (predicted > 0)
    half = np.where(present, freedoms, 2.0) / 2
    logs = np.log(np.where(present, variances, 1.0) / np.where(present, predicted, 1.0))
    adjusted = np.where(present, logs - special.digamma(half) + np.log(half), 0.0)
    count = present.sum(axis=-1)
    mean = adjusted.sum(axis=-1) / np.maximum(count, 1)
    squares = np.where(present, (adjusted - mean[..., None]) ** 2, 0.0).sum(axis=-1)
    chance = np.where(present, special.polygamma(1, half), 0.0).sum(axis=-1)
    excess = (squares / np.maximum(count - 1, 1) - chance / np.maximum(count, 1)).astype(float)
    freedom = np.full(excess.shape, MOST_PRIOR_FREEDOM)
    spread = excess > 0
    freedom[spread] = np.minimum(2 * _trigamma_inverse(excess[spread]), MOST_PRIOR_FREEDOM)
    return np.where(count >= MIN_FAMILY, freedom, 0.0)


def _trigamma_inverse(values):
    """x with trigamma(x) = ``values``: Smyth's Newton iteration (limma's trigammaInverse)."""
    guess = 0.5 + 1 / values
    for _ in range(50):
        trigamma = special.polygamma(1, guess)
        step = trigamma * (1 - trigamma / values) / special.polygamma(2, guess)
        guess = guess + step
        if np.all(np.abs(step / guess) < 1e-8):
            break
    return guess


def fit_prior(variances, freedoms, predicted) -> Prior:
    """The family's ``Prior`` from each ratio's sample variance (NaN: none) on ``freedoms``
    degrees and its blocks' ``predicted`` variance; the ratios on the last axis."""
    variances = np.asarray(variances, dtype=float)
    freedoms = np.asarray(freedoms, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    present = np.isfinite(variances) & (freedoms > 0) & (predicted > 0)
    weights = np.where(present, freedoms, 0.0)
    total = weights.sum(axis=-1)
    ratios = np.where(present, variances, 0.0) / np.where(present, predicted, 1.0)
    scale = (weights * ratios).sum(axis=-1) / np.where(total > 0, total, 1.0)
    freedom = prior_freedom(variances, freedoms, predicted)
    return Prior(np.where(freedom > 0, scale, 1.0), freedom, total)


def interval(ratios, prior: Prior, predicted: float, confidence: float = estimators.CONFIDENCE):
    """The geometric mean of per-process ``ratios`` with its moderated t-interval at
    ``confidence`` (``estimators.log_t_interval``'s fields and its degrees of freedom, ``df``).
    A ratio without a blocks' prediction, or measured in one process, borrows nothing."""
    if not (math.isfinite(predicted) and predicted > 0):
        prior, predicted = NO_PRIOR, 0.0
    found = estimators.log_t_interval(ratios, confidence)
    n = found["n"]
    if n < 2:
        return {**found, "df": math.nan}
    logs = np.log(estimators.finite(ratios))
    freedom = float(prior.interval_freedom(n))
    variance = float(prior.variance(np.var(logs, ddof=1), n, predicted))
    margin = estimators.t_quantile(freedom, confidence) * math.sqrt(variance / n)
    center = math.log(found["ratio"])
    low, high = math.exp(center - margin), math.exp(center + margin)
    return {**found, "ci_low": low, "ci_high": high, "half_width": math.sinh(margin), "df": freedom}


def block_spreads(block_ratios: pd.DataFrame) -> dict:
    """(recipe, api, compared_with, compared_api) -> (the pooled spread of the log of its
    ``block_ratios`` (``pairing.block_ratios``) around their process's mean, the mean number of
    blocks in a process)."""
    if block_ratios.empty:
        return {}
    logs = block_ratios.assign(log=np.log(block_ratios.ratio))
    logs = logs.assign(deviation=logs.log - logs.groupby([*KEY, "run_id"]).log.transform("mean"))
    pooled = logs.groupby(KEY).agg(
        squares=("deviation", lambda deviation: float(np.sum(deviation**2))),
        blocks=("deviation", "size"),
        processes=("run_id", "nunique"),
    )
    freedom = pooled.blocks - pooled.processes
    spread = np.sqrt(pooled.squares / freedom.where(freedom > 0))
    per_process = pooled.blocks / pooled.processes
    return {key: (spread[key], per_process[key]) for key in pooled.index}


def predicted_of(spreads: dict, key: tuple) -> float:
    """The blocks' predicted variance of the ratio ``key`` (``block_spreads``'s key); NaN where
    its blocks say nothing."""
    spread, blocks = spreads.get(tuple(key), (math.nan, math.nan))
    return float(predicted_variance(spread, blocks))


def priors(process_ratios: pd.DataFrame, spreads: dict) -> dict:
    """api -> its ``Prior`` (every API of a family that has ratios, the ports and the as-written
    API of one package and backend alike), fitted on the family's ratios to the floor: every
    ``process_ratios`` row against ``registry.FLOOR`` on ``floor_api``.

    The family is the kind of worker process (``family_of``), not the API's name: the recipes
    that run as written on a Keras 3 backend where most need a port would otherwise be a family
    too small to lend anything, though their processes, floor and machine are their ports'."""
    family = process_ratios[
        (process_ratios.compared_with == registry.FLOOR)
        & (process_ratios.recipe != registry.FLOOR)
        & (process_ratios.recipe != YARDSTICK)
        & (process_ratios.compared_api == process_ratios.api.map(floor_api))
    ]
    found = {}
    for group, ratios in family.groupby(family.api.map(family_of)):
        samples = ratios.groupby(KEY).ratio.agg(
            variance=lambda ratio: float(np.var(np.log(ratio), ddof=1)) if len(ratio) > 1 else 0,
            processes="size",
        )
        predicted = [predicted_of(spreads, key) for key in samples.index]
        variances = samples.variance.where(samples.processes > 1)
        prior = _as_floats(fit_prior(variances, samples.processes - 1, predicted))
        members = [api for api in APIS if family_of(api) == group]
        found.update(dict.fromkeys([*members, *ratios.api.unique()], prior))
    return found


def family_of(api: str) -> str:
    """The family of ``api``'s ratios: the APIs whose runs share its worker processes
    (``process_group``); an API this version does not know (a hand-edited file) is its own."""
    return process_group(api) if api in APIS else api


def _as_floats(prior: Prior) -> Prior:
    return Prior(float(prior.scale), float(prior.freedom), float(prior.total_freedom))


def measured(blocks: pd.DataFrame) -> tuple:
    """(process ratios, block spreads, api -> Prior) of ``blocks``, their block ratios computed
    once."""
    ratios = pairing.block_ratios(blocks)
    processes = pairing.process_ratios_of(ratios)
    spreads = block_spreads(ratios)
    return processes, spreads, priors(processes, spreads)
