"""env.json: what a benchmark ran on, read the same way by every command that compares folders."""

from vae_impls import backends

# The packages whose versions a results folder records (env.json, each Ray node's) and a baseline
# compares with a run's: Keras', numpy's and each backend's (``vae_impls.backends``), in the order
# env.json has always listed them.
VERSIONED = tuple(
    dict.fromkeys(("tensorflow", "keras", "tf_keras", "numpy", *backends.versioned()))
)

# env.json's git commit where the project's root is not the root of a git work tree.
NOT_A_CHECKOUT = "not a git checkout"


def host_id(env: dict) -> str:
    """Which hardware an env.json's benchmark ran on, for "same machine?"; "" when it does not say.

    Without a hostname (folders from before "host" existed) two machines with the same CPU would
    look alike, so such a folder matches no other."""
    host = env.get("host")
    if not isinstance(host, dict) or not host.get("hostname"):
        return ""
    cpu = host.get("cpu_model") or "unknown CPU"
    return f"{host['hostname']} ({cpu}, {host.get('logical_cpus')} CPUs)"


def same_host(env_a: dict, env_b: dict) -> bool:
    """Whether two env.json dicts name one machine; never for a folder that does not say."""
    host = host_id(env_a)
    return bool(host) and host == host_id(env_b)


def env_value(env: dict, *keys):
    """env.json's value under ``keys`` (env["git"]["commit"]: "git", "commit"), or None where a
    folder does not record it."""
    value = env
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


# The types of env.json's entries as the runner writes them (``bench.run.environment``); other
# entries (the versions of Python and the packages) are only ever shown, whatever their type.
ENV_TYPES = {
    "config": dict,
    "git": dict,
    "host": dict,
    "cpu": dict,
    "gpu": dict | None,  # None: no GPU
    "nodes": dict,
    "device_settings": dict | None,
    "backends": dict,  # backend -> its version and GPUs (the preflight)
    "injected_slowdown": dict,
    "resumed_by": list,
    "budgets": list,  # of dicts: each time budget the folder was given (bench.run.budget)
    "command": str,
}
_NESTED = {  # an entry's parts, and the types each part must have
    "config": lambda config: all(isinstance(config.get(table), dict | None) for table in TABLES),
    "git": lambda git: isinstance(git.get("commit"), str | None),
    "nodes": lambda nodes: all(isinstance(node, dict) for node in nodes.values()),
    "injected_slowdown": lambda injected: all(
        isinstance(delay, int | float) and not isinstance(delay, bool)
        for delay in injected.values()
    ),
    "resumed_by": lambda commands: all(isinstance(command, str) for command in commands),
    "budgets": lambda budgets: all(
        isinstance(entry, dict) and isinstance(entry.get("seconds"), int | float)
        for entry in budgets
    ),
}
TABLES = ("device", "training", "network", "matrix")


def as_written(env: dict) -> dict:
    """``env`` without the entries whose type (or whose parts' types) is not what the runner
    writes: a hand-edited or damaged env.json then reads as facts unknown, never as a failure of
    every command that reads it."""
    return {
        key: value
        for key, value in env.items()
        if key not in ENV_TYPES
        or (isinstance(value, ENV_TYPES[key]) and _NESTED.get(key, lambda _: True)(value))
    }
