"""What a recipe's extra time per step is made of: its train step's counts against its time.

Within one floor API (one Keras package on one backend: ``keras3-torch`` holds the PyTorch floor
and the PyTorch ports), every recipe's gap to the floor, in ms per step of fit (its paired ratio
to the floor, less 1, times the floor's ms/step), is fitted against what its traced step does
more than the floor's: operators (``graph_ops``), convolutions and their gradients, matrix
products (``COUNTS``; whichever the backend recorded). Each count gets a line through the floor,
gap = per-unit cost x extra units, fitted by least squares over the recipes, the floor's point
(0, 0) among them; its R² is the share of the steps' extra time that line accounts for, its
per-unit cost comes with a t-interval.

A count explains the gaps when its per-unit cost lies above 0 with its whole CI and its line
accounts for most of their variance (R² >= ``EXPLAINS_R2``) or misses them by no more than their
own measurement noise (``noise_p``: gaps near the noise leave any line a low R²). The explaining
count with the highest R² names the regime: operators, a step bound by launching them (every
extra operation costs time whatever its size: PyTorch on a GPU, or a tiny network on a CPU);
convolutions or matrix products, a step bound by arithmetic. A recipe's gap is put down to that
count where the count's prediction agrees with it (``agrees``); a gap that no count predicts is
said to be unexplained, and a negligible one to be no gap. Numbers only: the words are
``bench.report.costs``'.
"""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from bench.analysis.estimators import CONFIDENCE
from bench.results.folder import ResultsFolder, runs_frame
from bench.results.records import OK
from vae_impls import registry
from vae_impls.keras_api import APIS, backend_of, floor_api

LAUNCH_BOUND, ARITHMETIC_BOUND = "launch-bound", "arithmetic-bound"
UNEXPLAINED, NO_GAP, NOT_COUNTED = "unexplained", "no gap", "not counted"
# runs.csv's per-step counts, each with the regime it names where it explains the gaps.
COUNTS = {
    "graph_ops": LAUNCH_BOUND,
    # What XLA's compiled step runs after fusion (JAX): the operators JAX launches.
    "compiled_ops": LAUNCH_BOUND,
    "ops_convolutions": ARITHMETIC_BOUND,
    "ops_matmul": ARITHMETIC_BOUND,
}
# JAX's graph_ops are its StableHLO ops before XLA fuses them: not what its step launches (its
# compiled_ops are).
NOT_LAUNCHED = {"jax": ("graph_ops",)}
EXPLAINS_R2 = 0.8  # a count explains the gaps when its line accounts for 80% of their variance
NEGLIGIBLE = 0.05  # of the floor's step: a gap this small (or a miss this small) is noise here
AGREEMENT_FACTOR = 2.0  # a prediction within 2x of the gap agrees with it


@dataclass(frozen=True)
class CountFit:
    """One count's line through the floor: gap (ms/step) = unit_ms x extra units."""

    count: str  # a COUNTS column
    unit_ms: float  # ms per step per extra unit
    unit_ms_low: float  # its 95% CI (NaN with a single recipe)
    unit_ms_high: float
    r_squared: float  # NaN where the gaps do not vary
    points: int  # recipes fitted
    # The chance of misses as large as the line's where every miss were measurement noise (a
    # chi-square test on the gaps' own CIs); NaN where a gap has no CI.
    noise_p: float

    @property
    def explains(self) -> bool:
        """A per-unit cost above 0 with its whole CI, and a line that accounts for most of the
        gaps' variance or misses them by no more than their measurement noise (gaps near the
        noise leave any line a low R²)."""
        positive = math.isfinite(self.unit_ms_low) and self.unit_ms_low > 0
        most = math.isfinite(self.r_squared) and self.r_squared >= EXPLAINS_R2
        return positive and (most or self.within_noise)

    @property
    def within_noise(self) -> bool:
        return math.isfinite(self.noise_p) and self.noise_p >= 1 - CONFIDENCE

    @property
    def regime(self) -> str:
        return COUNTS[self.count]


@dataclass(frozen=True)
class RecipeCost:
    """One recipe on one API: its gap to the floor and what the floor API's cost model makes of
    it."""

    recipe: str
    api: str
    ratio: float  # to the floor, with its 95% CI (NaN: one run, no CI)
    ratio_low: float
    ratio_high: float
    extra_ms: float  # (ratio - 1) x the floor's ms/step, with the ratio's CI scaled alike
    extra_ms_low: float
    extra_ms_high: float
    extra_units: dict  # count -> this step's count minus the floor's
    fit: CountFit | None  # the floor API's explaining count's fit, where this recipe has it
    predicted_ms: float  # the fit's per-unit cost x this recipe's extra units (NaN: no fit)
    regime: str  # LAUNCH_BOUND, ARITHMETIC_BOUND, UNEXPLAINED, NO_GAP or NOT_COUNTED

    @property
    def count(self) -> str:
        """The explaining count ("" where none)."""
        return self.fit.count if self.fit else ""

    @property
    def units(self) -> float:
        """The extra units of the explaining count (NaN where none explains)."""
        return self.extra_units.get(self.count, math.nan)

    @property
    def own_unit_ms(self) -> float:
        """This recipe's own gap per extra unit of the explaining count."""
        units = self.units
        return self.extra_ms / units if math.isfinite(units) and units else math.nan


@dataclass(frozen=True)
class CostModel:
    """The cost model of one floor API in one folder: each count's fit, the explaining one, and
    every recipe's record."""

    floor_api: str
    backend: str
    floor_ms: float  # the floor's median ms/step of fit
    floor_units: dict  # count -> the floor's count per step
    fits: tuple  # CountFit, highest R² first
    recipes: tuple  # RecipeCost, in the order of the runs

    @property
    def best(self) -> CountFit | None:
        """The explaining count's fit with the highest R², or None where none explains."""
        return next((fit for fit in self.fits if fit.explains), None)

    @property
    def regime(self) -> str:
        """The floor API's regime: the explaining count's, UNEXPLAINED where counts exist but
        none explains, NOT_COUNTED without counts."""
        if self.best is not None:
            return self.best.regime
        return UNEXPLAINED if self.floor_units else NOT_COUNTED


# --- the points -------------------------------------------------------------------------------


def _ok(runs: pd.DataFrame, recipe: str, api: str) -> pd.DataFrame:
    return runs[(runs.recipe == recipe) & (runs.api == api) & (runs.status == OK)]


def counts_of(frame: pd.DataFrame, backend: str) -> dict:
    """count -> the median of each COUNTS column that counts what runs on ``backend``, over the
    ok runs of ``frame`` that recorded it: a later round's run timed only is not counted again
    where its backend counts after the timing (JAX, PyTorch), its round-1 run has the count."""
    found = {}
    for column in COUNTS:
        if column in NOT_LAUNCHED.get(backend, ()) or column not in frame:
            continue
        counted = frame[column].dropna()
        if len(counted):
            found[column] = float(counted.median())
    return found


def _floor_ratio(ratios: pd.DataFrame, recipe: str, api: str):
    rows = ratios[
        (ratios.recipe == recipe)
        & (ratios.api == api)
        & (ratios.compared_with == registry.FLOOR)
        & (ratios.compared_api == floor_api(api))
    ]
    return rows.iloc[0] if len(rows) else None


def _apis_of_floor(runs: pd.DataFrame, group: str) -> list:
    return [api for api in dict.fromkeys(runs.api) if api in APIS and floor_api(api) == group]


# --- the fit ----------------------------------------------------------------------------------


def fit_count(count: str, units, gaps, errors=None) -> CountFit | None:
    """The least-squares line through the floor, gap = unit_ms x units, over the recipes'
    ``units`` and ``gaps`` (ms/step, with their standard ``errors``, NaN where unknown); None
    where no recipe has a unit more than the floor."""
    units, gaps = np.asarray(units, float), np.asarray(gaps, float)
    errors = np.full(len(gaps), math.nan) if errors is None else np.asarray(errors, float)
    squares = float(units @ units)
    if not squares:
        return None
    unit_ms = float(units @ gaps) / squares
    residuals = gaps - unit_ms * units
    with_floor = np.append(gaps, 0.0)  # the floor's own point, (0 units, 0 ms)
    spread = float(((with_floor - with_floor.mean()) ** 2).sum())
    r_squared = 1 - float(residuals @ residuals) / spread if spread > 0 else math.nan
    points = len(units)
    low = high = math.nan
    if points > 1:
        se = math.sqrt(float(residuals @ residuals) / (points - 1) / squares)
        margin = float(scipy_stats.t.ppf((1 + CONFIDENCE) / 2, points - 1)) * se
        low, high = unit_ms - margin, unit_ms + margin
    return CountFit(count, unit_ms, low, high, r_squared, points, noise_p(residuals, errors))


def noise_p(residuals: np.ndarray, errors: np.ndarray) -> float:
    """P(chi-square >= the residuals' sum of squared z-scores) with one degree of freedom per
    residual less the fitted slope; NaN where an error is unknown or 0, or one residual only."""
    if len(residuals) < 2 or not (np.isfinite(errors).all() and (errors > 0).all()):
        return math.nan
    chi_square = float(((residuals / errors) ** 2).sum())
    return float(scipy_stats.chi2.sf(chi_square, len(residuals) - 1))


def agrees(observed: float, low: float, high: float, predicted: float, floor_ms: float) -> bool:
    """Whether a count's ``predicted`` gap agrees with the ``observed`` one (its CI ``low`` ..
    ``high``, NaN where none): inside its CI, within ``NEGLIGIBLE`` of the floor's step of it,
    or within a factor ``AGREEMENT_FACTOR`` of it, both positive."""
    if math.isfinite(low) and low <= predicted <= high:
        return True
    if abs(observed - predicted) <= NEGLIGIBLE * floor_ms:
        return True
    return (
        observed > 0
        and predicted > 0
        and max(observed, predicted) <= AGREEMENT_FACTOR * min(observed, predicted)
    )


def negligible(observed: float, low: float, high: float, floor_ms: float) -> bool:
    """A gap within ``NEGLIGIBLE`` of the floor's step, or whose CI holds 0."""
    return abs(observed) <= NEGLIGIBLE * floor_ms or (math.isfinite(low) and low <= 0 <= high)


# --- the model --------------------------------------------------------------------------------


def model_of(runs: pd.DataFrame, ratios: pd.DataFrame, group: str) -> CostModel | None:
    """The cost model of the floor API ``group`` (``keras3-torch``: its floor and every API
    measured against it) from one slice's ``runs`` (runs.csv) and ``ratios`` (ratios.csv); None
    where the floor has no ok run."""
    floor_runs = _ok(runs, registry.FLOOR, group)
    if floor_runs.empty:
        return None
    backend = backend_of(group)
    floor_ms, floor_units = float(floor_runs.ms_per_step.median()), counts_of(floor_runs, backend)
    points = []
    for api in _apis_of_floor(runs, group):
        for recipe in dict.fromkeys(runs[runs.api == api].recipe):
            ratio = _floor_ratio(ratios, recipe, api)
            ok = _ok(runs, recipe, api)
            if recipe == registry.FLOOR or ratio is None or ok.empty:
                continue
            mine = counts_of(ok, backend)
            extra = {c: mine[c] - floor_units[c] for c in floor_units if c in mine}
            points.append((recipe, api, ratio, extra))
    fits = _fits(points, floor_units, floor_ms)
    best = next((fit for fit in fits if fit.explains), None)
    records = tuple(_record(point, floor_ms, best) for point in points)
    return CostModel(group, backend, floor_ms, floor_units, fits, records)


def _fits(points: list, floor_units: dict, floor_ms: float) -> tuple:
    """Every count's fit over the recipes that recorded it, highest R² first."""
    fits = []
    for count in floor_units:
        counted = [
            (extra[count], _gap(ratio, floor_ms), _error(ratio, floor_ms))
            for _, _, ratio, extra in points
            if count in extra
        ]
        if counted:
            fit = fit_count(count, *zip(*counted))
            if fit is not None:
                fits.append(fit)
    return tuple(sorted(fits, key=_by_r_squared))


def _by_r_squared(fit: CountFit) -> float:
    return -fit.r_squared if math.isfinite(fit.r_squared) else math.inf


def _gap(ratio, floor_ms: float) -> float:
    return (float(ratio.ratio) - 1) * floor_ms


def _error(ratio, floor_ms: float) -> float:
    """The standard error of a gap from its ratio's 95% CI; NaN without one."""
    z = scipy_stats.norm.ppf((1 + CONFIDENCE) / 2)
    return (float(ratio.ci_high) - float(ratio.ci_low)) * floor_ms / (2 * z)


def _record(point: tuple, floor_ms: float, best: CountFit | None) -> RecipeCost:
    recipe, api, ratio, extra = point
    low, high = float(ratio.ci_low), float(ratio.ci_high)
    observed = _gap(ratio, floor_ms)
    gap_low, gap_high = (low - 1) * floor_ms, (high - 1) * floor_ms
    fit = best if best is not None and best.count in extra else None
    predicted = fit.unit_ms * extra[fit.count] if fit else math.nan
    if not extra:
        regime = NOT_COUNTED
    elif fit and agrees(observed, gap_low, gap_high, predicted, floor_ms):
        regime = fit.regime
    elif negligible(observed, gap_low, gap_high, floor_ms):
        regime = NO_GAP
    else:
        regime = UNEXPLAINED
    return RecipeCost(
        recipe,
        api,
        float(ratio.ratio),
        low,
        high,
        observed,
        gap_low,
        gap_high,
        extra,
        fit,
        predicted,
        regime,
    )


def cost_models(runs: pd.DataFrame, ratios: pd.DataFrame) -> list:
    """The cost model of every floor API with an ok floor run, in ``APIS`` order."""
    groups = dict.fromkeys(floor_api(api) for api in APIS if api in set(runs.api))
    return [model for group in groups if (model := model_of(runs, ratios, group)) is not None]


def read_costs(path) -> list:
    """``cost_models`` of the results folder at ``path`` from its runs.csv and ratios.csv: of the
    first variant of a sweep, on the first host of a cluster."""
    folder = ResultsFolder.existing(path)
    runs, ratios = runs_frame(folder.run_records()), folder.read_ratios()
    variant = next(iter(dict.fromkeys(runs.variant)), "")
    hosts = list(dict.fromkeys(runs.host))
    host = hosts[0] if len(hosts) > 1 else ""
    runs = runs[(runs.variant == variant) & ((runs.host == host) if host else True)]
    ratios = ratios[(ratios.variant.fillna("") == variant) & (ratios.host.fillna("") == host)]
    return cost_models(runs, ratios)


def records_by_pair(models: list) -> dict:
    """(recipe, api) -> its ``RecipeCost``, over ``models``: what a "why" cell of a pair reads."""
    return {(record.recipe, record.api): record for model in models for record in model.recipes}
