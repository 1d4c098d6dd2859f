"""env.json: what a benchmark ran on, read the same way by every command that compares folders."""

# The packages whose versions a results folder records (env.json, each Ray node's) and a baseline
# compares with a run's.
VERSIONED = ("tensorflow", "keras", "tf_keras", "numpy")


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
