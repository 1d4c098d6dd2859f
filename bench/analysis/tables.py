"""The tables of one results folder, and the analysis step of a report: ratios.csv, outliers.csv.

A sweep's variants and a cluster's hosts are sliced apart before any statistic is taken, so that
different settings or hardware are never pooled into one CI. ``analyse`` reads a folder, computes
its tables per variant and per host, and writes every ratio into ratios.csv and every disturbed
run into outliers.csv; the report (``bench.report``) renders that ``Analysis`` and computes
nothing of its own.
"""

import dataclasses
from dataclasses import dataclass
from functools import cached_property

import pandas as pd

from bench import recipes
from bench.analysis import (
    claims,
    coverage,
    pairing,
    quality_guard,
    step_ratios,
    step_times,
    time_to_quality,
    verdicts,
)
from bench.analysis.per_backend import backend_floors, encoder_claims
from bench.analysis.wall_shares import WallTime, wall_time_of
from bench.config import sweep
from bench.errors import UsageError
from bench.results.folder import BLOCKS_CSV, OUTLIERS_CSV, RATIOS_CSV, Results, ResultsFolder


@dataclass(frozen=True)
class Tables:
    """Every table of one slice of a folder (one variant, one host), as the report shows them."""

    speed: pd.DataFrame
    ratios: pd.DataFrame
    claims: pd.DataFrame
    readings: pd.DataFrame
    process_ratios: pd.DataFrame
    outliers: pd.DataFrame
    quality: pd.DataFrame
    round_checks: pd.DataFrame  # each KL run's loss against its round's (quality_guard)
    time_to_quality: pd.DataFrame
    compat: pd.DataFrame
    unfinished: pd.DataFrame  # every run that did not end ok, and planned runs never recorded
    went_wrong: pd.DataFrame  # of those, all but the failures the registry expects
    failed_as_registered: pd.DataFrame  # the rest: recipes that raise as written, as registered
    backend_floors: pd.DataFrame  # each backend's floor and how many of its recipes x APIs work
    encoder_claims: pd.DataFrame  # the encoder twice's claims, beside the verdict on each API

    def all_ratios(self) -> pd.DataFrame:
        """Every ratio the report shows (to the floor, of each claim, of each reading), each pair
        once, as ratios.csv holds them."""
        claim_ratios = self.claims.assign(
            recipe=[claim.recipe for claim in self.claims.claim],
            compared_with=[claim.baseline for claim in self.claims.claim],
            compared_api=self.claims.api,
        )
        reading_ratios = self.readings.rename(columns={"undone": "compared_with"}).assign(
            compared_api=self.readings.api
        )
        everything = pd.concat([self.ratios, claim_ratios, reading_ratios], ignore_index=True)[
            step_ratios.RATIO_COLUMNS
        ]
        return everything.drop_duplicates(["recipe", "api", "compared_with", "compared_api"])


def variants_of(results: Results) -> list:
    """A sweep's variants in the order it named them; [""] for a plain benchmark."""
    return list(dict.fromkeys([*results.folder.variants(), *results.runs.variant])) or [sweep.BASE]


def hosts_of(results: Results) -> list:
    """The hosts the runs ran on (a cluster benchmark has several), first seen first."""
    return list(dict.fromkeys(results.runs.host)) or [""]


def variant_slice(results: Results, variant: str, host: str = None) -> Results:
    """The runs of one variant of a sweep (and of one host of a cluster), as if they were a folder
    of their own. A host's slice has no plan: the plan does not say which host a run was due
    on."""
    keep_rows = results.runs.variant == variant
    if host is not None:
        keep_rows &= results.runs.host == host
    runs = results.runs[keep_rows]
    keep = set(runs.run_id)
    planned = (
        None
        if results.planned is None or host is not None
        else [run for run in results.planned if run.variant == variant]
    )
    return dataclasses.replace(
        results,
        runs=runs,
        epochs=results.epochs[results.epochs.run_id.isin(keep)],
        blocks=results.blocks[results.blocks.run_id.isin(keep)],
        planned=planned,
    )


def compute_tables(results: Results) -> Tables:
    """Every table of ``results``, taken as one slice: slice a sweep or a cluster first."""
    runs, blocks, planned = results.runs, results.blocks, results.planned
    unfinished = coverage.unfinished_runs(runs, planned)
    registered = coverage.registered_mask(unfinished)
    claim_table, speed = claims.claim_table(runs, blocks), step_times.speed_table(runs, blocks)
    return Tables(
        speed=speed,
        ratios=step_ratios.ratio_table(runs, blocks),
        claims=claim_table,
        readings=claims.reading_table(runs, blocks),
        process_ratios=pairing.process_ratios(blocks),
        outliers=pairing.outlier_runs(blocks),
        quality=quality_guard.quality_table(runs),
        round_checks=quality_guard.round_checks(runs, verdicts.encoder_convolutions(results.env)),
        time_to_quality=time_to_quality.time_to_quality_table(runs, results.epochs),
        compat=coverage.compatibility(runs, planned),
        unfinished=unfinished,
        went_wrong=unfinished[~registered],
        failed_as_registered=unfinished[registered],
        backend_floors=backend_floors(runs, speed),
        encoder_claims=encoder_claims(
            runs, claim_table, verdicts.encoder_convolutions(results.env)
        ),
    )


@dataclass(frozen=True)
class Analysis:
    """A results folder's tables: one set per variant of a sweep (of the first host, where the
    runs ran on several) and one per host of a cluster (of the first variant)."""

    results: Results  # the whole folder
    variants: list  # as variants_of
    hosts: list  # as hosts_of
    per_variant: dict  # variant -> Tables
    per_host: dict  # host -> Tables; empty where every run ran on one host

    @property
    def host(self) -> str | None:
        """The host the per-variant tables are of: the first of several, else None (every run)."""
        return self.hosts[0] if len(self.hosts) > 1 else None

    @cached_property
    def main(self) -> Results:
        """The runs that the report's sections after 'Sweep' and 'Hosts' show: the first variant,
        on the first host."""
        return variant_slice(self.results, self.variants[0], self.host)

    @property
    def tables(self) -> Tables:
        """The tables of ``main``."""
        return self.per_variant[self.variants[0]]

    @cached_property
    def wall_time(self) -> WallTime:
        """Where the whole folder's worker processes spent their wall time."""
        return wall_time_of(self.results.runs, self.results.blocks)

    def all_ratios(self) -> pd.DataFrame:
        """ratios.csv: every ratio of every variant and every host, each slice once."""
        return self._every_slice(Tables.all_ratios)

    def all_outliers(self) -> pd.DataFrame:
        """outliers.csv: every disturbed run of every variant and every host, the furthest from
        its pair's median first."""
        outliers = self._every_slice(lambda tables: tables.outliers)
        return outliers.sort_values("mads", ascending=False, kind="stable")

    def _every_slice(self, table_of) -> pd.DataFrame:
        """``table_of(Tables)`` of each variant and each other host, with variant and host
        columns, one under the other."""
        per_variant = [
            table_of(tables).assign(variant=variant, host=self.host or "")
            for variant, tables in self.per_variant.items()
        ]
        other_hosts = [
            table_of(tables).assign(variant=self.variants[0], host=host)
            for host, tables in self.per_host.items()
            if host != self.host
        ]
        return pd.concat(per_variant + other_hosts, ignore_index=True)


def analysis_of(results: Results) -> Analysis:
    """The tables of every variant and of every host of ``results``; writes nothing."""
    variants, hosts = variants_of(results), hosts_of(results)
    host = hosts[0] if len(hosts) > 1 else None
    per_variant = {
        variant: compute_tables(variant_slice(results, variant, host)) for variant in variants
    }
    per_host = (
        {name: compute_tables(variant_slice(results, variants[0], name)) for name in hosts}
        if host
        else {}
    )
    return Analysis(results, variants, hosts, per_variant, per_host)


def analyse(path) -> Analysis:
    """The analysis step of a report: read the results folder at ``path``, compute its tables and
    write its ratios.csv and outliers.csv (the runs' own files are only read)."""
    results = ResultsFolder.existing(path).read()
    analysis = analysis_of(results)
    folder, outliers = results.folder, analysis.all_outliers()
    if not _keeps_paired_ratios(folder):
        _writing(folder, RATIOS_CSV, lambda: folder.write_ratios(analysis.all_ratios()))
    _writing(folder, OUTLIERS_CSV, lambda: folder.write_outliers(outliers))
    return analysis


def _keeps_paired_ratios(folder: ResultsFolder) -> bool:
    """Whether the folder's ratios.csv holds paired ratios its folder can no longer compute (a
    reference that keeps ratios.csv but not blocks.csv): writing it again from the runs alone
    would replace them with ratios across processes, and results already written are never
    lost."""
    path = folder.path / RATIOS_CSV
    if (folder.path / BLOCKS_CSV).is_file() or not path.is_file():
        return False
    try:
        methods = pd.read_csv(path, usecols=["method"]).method
    except (ValueError, OSError, pd.errors.ParserError):
        return False
    return bool((methods == step_ratios.PAIRED).any())


def _writing(folder: ResultsFolder, name: str, write) -> None:
    """Call ``write``; an OSError becomes a UsageError naming the file ``name`` and the folder."""
    try:
        write()
    except OSError as error:
        raise UsageError(f"cannot write {name} into {folder}: {error.strerror or error}") from None


def stacked(tables_by: dict, table: str, column: str) -> pd.DataFrame:
    """One ``Tables`` attribute (``table``) of each slice, one under the other, with the slice's
    key (a variant, a host) in ``column``."""
    return pd.concat(
        [getattr(tables, table).assign(**{column: key}) for key, tables in tables_by.items()]
    )


def side_by_side(frame: pd.DataFrame, column: str) -> list:
    """(recipe, api, {value of ``column``: row}) for each recipe x API of a ``stacked`` frame, in
    registry order: the rows of a table with a column per variant or per host."""
    pairs = sorted(set(zip(frame.recipe, frame.api)), key=lambda pair: recipes.order_key(*pair))
    return [
        (
            recipe,
            api,
            {
                getattr(row, column): row
                for row in frame[(frame.recipe == recipe) & (frame.api == api)].itertuples()
            },
        )
        for recipe, api in pairs
    ]
