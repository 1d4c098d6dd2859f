"""The report's detail sections, in the order it shows them; nothing here computes."""

from bench.analysis.tables import Tables
from bench.report.claim_section import claim_blocks
from bench.report.quality_sections import quality_blocks, time_to_quality_blocks
from bench.report.ratio_sections import outlier_blocks, ratio_blocks
from bench.report.speed_sections import profile_blocks, speed_blocks, tracing_blocks
from bench.report.went_wrong import went_wrong_blocks
from bench.report.why_sections import cause_blocks, notebook_blocks
from bench.results.folder import Results


def table_blocks(results: Results, tables: Tables) -> list:
    """Speed, ratios, disturbed runs, the posts' claims, the notebook readings, where the cost
    comes from, tracing, profiles, the quality guard, time to quality, the runs that went wrong."""
    return [
        *speed_blocks(tables),
        *ratio_blocks(results, tables),
        *outlier_blocks(results, tables),
        *claim_blocks(results, tables),
        *notebook_blocks(results, tables),
        *cause_blocks(results, tables),
        *tracing_blocks(tables),
        *profile_blocks(results),
        *quality_blocks(tables),
        *time_to_quality_blocks(results, tables),
        *went_wrong_blocks(tables),
    ]
