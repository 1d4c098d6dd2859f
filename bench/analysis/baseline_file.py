"""The CI gate's baseline file: what it records of the CI runs, and the check that a file is one.

A baseline travels between machines: it records each recipe x API's ratio to the floor with its
CI, its status, ms/step and final-loss band, the floor's ratio to the yardstick, and the machine,
versions and settings hash it was measured with, which the gate names where a judged run
differs (``bench.analysis.gate`` decides against it).
"""

import math

import pandas as pd

from bench.analysis import machine_load, step_ratios
from bench.errors import UsageError, quoted
from bench.results.env import VERSIONED, host_id
from bench.results.records import OK
from vae_impls import registry

# What a baseline records of the run it came from, and names when the judged run differs.
VERSIONS = ("python", *VERSIONED)
BASELINE_VERSION = 1


def run_summaries(runs: pd.DataFrame) -> dict:
    """(recipe, api) -> status ("works"/"fails"), median ms/step and final-loss band of a run."""
    summaries = {}
    for (recipe, api), group in runs.groupby(["recipe", "api"], sort=False):
        ok = group[group["status"] == OK]
        summaries[recipe, api] = {
            "status": "works" if len(ok) else "fails",
            "ok_runs": len(ok),
            "error": "" if len(ok) else str(group["error"].iloc[0]),
            "ms_per_step": float(ok["ms_per_step"].median()) if len(ok) else math.nan,
            "final_loss": [float(ok["final_loss"].min()), float(ok["final_loss"].max())]
            if len(ok)
            else None,
            "median_final_loss": float(ok["final_loss"].median()) if len(ok) else math.nan,
        }
    return summaries


def _json_number(value):
    return None if value is None or not math.isfinite(value) else float(value)


def make_baseline(
    runs: pd.DataFrame,
    env: dict,
    sources: list = (),
    blocks: pd.DataFrame = None,
    settings_hash: str = None,
) -> dict:
    """The baseline file's content from the runs (and paired blocks) of one or more runs of the CI
    config (``sources``: their results folders' names); ``env`` is the first one's env.json."""
    ratios = step_ratios.floor_ratios(runs, blocks)
    yardsticks = step_ratios.yardstick_ratios(runs, blocks)
    entries = {}
    for (recipe, api), summary in run_summaries(runs).items():
        ratio = ratios.get((recipe, api))
        yardstick = yardsticks.get(api) if recipe == registry.FLOOR else None
        entries[f"{recipe}/{api}"] = {
            **summary,
            **_yardstick_entry(yardstick),
            "ms_per_step": _json_number(summary["ms_per_step"]),
            "median_final_loss": _json_number(summary["median_final_loss"]),
            "ratio": None if ratio is None else _json_number(ratio.ratio),
            "ci": None
            if ratio is None
            else [_json_number(ratio.ci_low), _json_number(ratio.ci_high)],
        }
    machine = {key: env.get(key) for key in (*VERSIONS, "cpu", "gpu")}
    return {
        "version": BASELINE_VERSION,
        "machine": machine,
        "host": host_id(env),
        "config": env.get("config", {}).get("name"),
        "settings_hash": settings_hash,
        "git": env.get("git"),
        "sources": list(sources),
        machine_load.ENV_KEY: machine_load.of_blocks(blocks).record(),
        "entries": entries,
    }


def _yardstick_entry(ratio) -> dict:
    """The floor's ratio to the yardstick, with its CI, for the floor's baseline entry."""
    if ratio is None:
        return {}
    return {
        "yardstick_ratio": _json_number(ratio["ratio"]),
        "yardstick_ci": [_json_number(ratio["ci_low"]), _json_number(ratio["ci_high"])],
    }


def differences(baseline: dict, env: dict, settings_hash: str) -> list:
    """What the run under judgement ran differently from the baseline's runs, one line each."""
    recorded = baseline.get("machine", {})
    found = [
        f"{package} {recorded.get(package)} in the baseline, {env.get(package)} here"
        for package in VERSIONS
        if recorded.get(package) != env.get(package)
    ]
    if baseline.get("settings_hash") and baseline["settings_hash"] != settings_hash:
        found.append(
            f"settings hash {baseline['settings_hash']} in the baseline, {settings_hash} here"
        )
    return found


def on_baseline_host(baseline: dict, env: dict) -> bool:
    """Whether ``env`` (a run's env.json) names the machine the baseline was measured on."""
    return bool(baseline.get("host")) and baseline.get("host") == host_id(env)


def check_baseline(baseline: dict, source: str) -> dict:
    if (
        not isinstance(baseline, dict)
        or baseline.get("version") != BASELINE_VERSION
        or "entries" not in baseline
    ):
        raise UsageError(
            f"{source} is not a kl-bench baseline (version {BASELINE_VERSION}); "
            "write one with: python -m bench check --update-baseline"
        )
    return _checked_entries(baseline, source)


def _checked_entries(baseline: dict, path: str) -> dict:
    """``baseline`` when every part the gate reads has the type it reads; a UsageError naming the
    first part that does not."""
    entries = baseline["entries"]
    if not isinstance(entries, dict) or not isinstance(baseline.get("machine", {}), dict):
        raise UsageError(f"{path} is not a kl-bench baseline: its entries or machine are no table")
    for key, entry in entries.items():
        if key.count("/") != 1 or not _is_entry(entry):
            raise UsageError(
                f"{path} is not a kl-bench baseline: its entry {quoted(key)} is not a RECIPE/API "
                f"key with a status, ratio, ms_per_step and final_loss band of the gate's types"
            )
    return baseline


def _is_entry(entry) -> bool:
    def is_number(value) -> bool:
        return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))

    if not isinstance(entry, dict) or entry.get("status") not in ("works", "fails"):
        return False
    if "ratio" not in entry:  # the gate reads it as entry["ratio"]
        return False
    band = entry.get("final_loss")
    good_band = band is None or (
        isinstance(band, list) and len(band) == 2 and all(is_number(end) for end in band)
    )
    return good_band and all(is_number(entry.get(key)) for key in ("ratio", "ms_per_step"))
