"""The benchmark's conditions as env.json records them, in the report's words."""

from bench.analysis import machine_load
from bench.results.env import env_value

UNKNOWN = "unknown"  # a fact env.json does not record


def config_of(env: dict) -> dict:
    config = env.get("config")
    return config if isinstance(config, dict) else {}


def lookup(env: dict, *keys) -> str:
    """env.json's value under ``keys`` as text: 'unknown' where the folder does not record it."""
    value = env_value(env, *keys)
    if value is None:
        return UNKNOWN
    if isinstance(value, dict):
        return ", ".join(f"{key}: {item}" for key, item in value.items()) or "none"
    return str(value)


def conditions_text(env: dict) -> str:
    """The config, batch, steps, XLA and machine a folder's runs ran under."""
    training, device = config_of(env).get("training", {}), config_of(env).get("device", {})
    steps = training.get("steps_per_epoch") or "full"
    gpu = f"GPU: {lookup(env, 'gpu')}" if env.get("gpu") else "no GPU"
    return (
        f"config {config_of(env).get('name', '?')}: batch {training.get('batch_size', '?')}, "
        f"{steps} steps per epoch, XLA {device.get('xla', '?')}, "
        f"on {lookup(env, 'cpu', 'model')} ({gpu})"
    )


def other_work_text(work: machine_load.OtherWork) -> str:
    """The run's other work on the machine in words: 'quiet: 0.1% of its timed steps under other
    work', 'shared: 94% of ...', or that it went unmeasured (no CPU pressure readings)."""
    if work.state == machine_load.UNKNOWN:
        return "other work on it unmeasured"
    return f"{work.state}: {percent_text(work.share)} of its timed steps under other work"


def percent_text(share: float) -> str:
    """'94%', '0.3%', '0%': a share with a decimal between 0.05 and 1 percent."""
    percent = 100 * share
    return f"{percent:.1f}%" if 0.05 <= percent < 1 else f"{percent:.0f}%"


def shared_against_quiet(labels: list, works: list) -> str:
    """One line where shared and quiet runs are compared ('' where none is), naming each shared
    one: their ratios may differ for the other work alone (docs/method.md)."""
    states = {work.state for work in works}
    if not {machine_load.QUIET, machine_load.SHARED} <= states:
        return ""
    shared = [
        f"{label} ({percent_text(work.share)} of its timed steps under other work)"
        for label, work in zip(labels, works)
        if work.shared
    ]
    return (
        f"A shared run is compared with a quiet one: {', '.join(shared)} shared its machine; "
        "its ratios may differ for that alone."
    )
