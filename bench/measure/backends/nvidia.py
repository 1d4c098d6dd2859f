"""What ``nvidia-smi`` says of the GPUs: what some backends do not report themselves."""

import subprocess


def query(fields: str, units: bool = True) -> list:
    """One row per GPU of the comma-separated ``fields`` (``--query-gpu``), each a list of
    strings; [] where there is no nvidia-smi or it fails."""
    form = "csv,noheader" if units else "csv,noheader,nounits"
    try:
        done = subprocess.run(
            ["nvidia-smi", f"--query-gpu={fields}", f"--format={form}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    if done.returncode != 0:
        return []
    return [line.split(", ") for line in done.stdout.strip().splitlines()]
