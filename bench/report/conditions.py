"""The benchmark's conditions as env.json records them, in the report's words."""

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
