"""The machine's CPU pressure, read around each timed step (``bench.results.contention``)."""

from pathlib import Path

CPU_PRESSURE = Path("/proc/pressure/cpu")  # Linux 4.20+, with pressure stall information on


def waited_seconds(path: Path = CPU_PRESSURE) -> float | None:
    """Seconds, since boot, in which some task waited for a CPU; None where the kernel does not
    say (another system, PSI off, a container that hides it)."""
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None
    for line in text.splitlines():
        kind, *fields = line.split()
        if kind == "some":
            total = dict(field.partition("=")[::2] for field in fields).get("total", "")
            return int(total) / 1e6 if total.isdigit() else None
    return None
