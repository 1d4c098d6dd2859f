"""What a benchmark ran on, for env.json, and the preflight that checks a config against its
backends.

The manager process never imports TensorFlow, JAX or PyTorch (it would take seconds and memory
away from the runs it times). It reads package versions from their installed metadata; everything
that needs a backend itself (its version, the GPUs, CUDA/cuDNN) comes from one preflight
subprocess, ``python -m bench.measure.preflight ANSWER.json BACKEND...``. A bad [network] table
never gets this far: loading the config constructs its ``NetworkSpec``, which needs no backend.

The host facts (hostname, OS, CPU, memory, frequency, load) are read best-effort: a fact this
machine does not expose is None, never an error, since no benchmark should fail for want of one.
"""

import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.errors import UsageError
from bench.processes import PROJECT_ROOT, last_line, worker_environment
from bench.results.env import NOT_A_CHECKOUT, VERSIONED
from vae_impls import keras_api

PREFLIGHT_TIMEOUT_SECONDS = 300
CPUINFO, MEMINFO = Path("/proc/cpuinfo"), Path("/proc/meminfo")
CPUFREQ = Path("/sys/devices/system/cpu/cpu0/cpufreq")


def machine_facts(config, command: str) -> dict:
    """env.json without the TensorFlow facts: no TensorFlow import needed."""
    host = host_facts()
    # "cpu" predates "host"; the report and the gate's baselines read it, so it stays.
    return {
        **package_versions(),
        "cpu": {"model": host["cpu_model"], "cores": host["logical_cpus"]},
        "host": host,
        "gpu": None,
        "git": git_state(PROJECT_ROOT),
        "config": config.to_dict(),
        "command": command,
    }


def host_facts() -> dict:
    """The machine a benchmark runs on, and how loaded it is as the benchmark starts."""
    cpuinfo = _cpuinfo()
    return {
        "hostname": platform.node() or None,
        "os": platform.platform() or None,
        "kernel": platform.release() or None,
        "cpu_model": _cpu_model(cpuinfo),
        "logical_cpus": os.cpu_count(),
        "physical_cpus": _physical_cores(cpuinfo),
        "ram_total_mb": _ram_total_mb(),
        "cpu_mhz": _cpu_mhz(cpuinfo),
        "cpu_governor": _first_line(CPUFREQ / "scaling_governor"),
        "load_average": _load_average(),
    }


def package_versions() -> dict:
    """Python's and ``VERSIONED``'s versions, from installed metadata: no TensorFlow import."""
    return {
        "python": platform.python_version(),
        **{package: _version(package) for package in VERSIONED},
    }


def _version(package: str):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _first_line(path: Path):
    """A file's first line, or None where it cannot be read (not on this kernel, no permission)."""
    try:
        return path.read_text(encoding="utf-8").strip().splitlines()[0]
    except (OSError, UnicodeDecodeError, IndexError):
        return None


def _cpuinfo() -> list:
    """/proc/cpuinfo as (key, value) pairs, one per line; [] where there is none (not Linux)."""
    try:
        lines = CPUINFO.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    return [tuple(part.strip() for part in line.split(":", 1)) for line in lines if ":" in line]


def _cpuinfo_value(cpuinfo: list, wanted: str):
    """The first CPU's value of ``wanted``, or None."""
    return next((value for key, value in cpuinfo if key == wanted), None)


def _cpu_model(cpuinfo: list):
    return _cpuinfo_value(cpuinfo, "model name") or platform.processor() or None


def _physical_cores(cpuinfo: list):
    """Distinct (socket, core) pairs: logical CPUs less hyper-threads."""
    cores, socket = set(), None
    for key, value in cpuinfo:
        if key == "physical id":
            socket = value
        elif key == "core id":
            cores.add((socket, value))
    return len(cores) or None


def _number(text, scale: float = 1.0):
    try:
        return round(float(text) * scale, 1)
    except (TypeError, ValueError):
        return None


def _ram_total_mb():
    try:
        lines = MEMINFO.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    total = next((line.split() for line in lines if line.startswith("MemTotal:")), [])
    return _number(total[1] if len(total) > 1 else None, 1 / 1024)  # meminfo counts kB


def _cpu_mhz(cpuinfo: list):
    """CPU 0's current frequency: cpufreq's where the kernel has it, else /proc/cpuinfo's (VMs)."""
    current = _number(_first_line(CPUFREQ / "scaling_cur_freq"), 1 / 1000)  # cpufreq counts kHz
    return current if current is not None else _number(_cpuinfo_value(cpuinfo, "cpu MHz"))


def _load_average():
    """1-, 5- and 15-minute load averages: work that competed with the benchmark as it started."""
    try:
        return [round(load, 2) for load in os.getloadavg()]
    except OSError:
        return None


def git_state(root: Path) -> dict:
    """The commit ``root`` is checked out at and whether it has changes; ``NOT_A_CHECKOUT`` as
    the commit where ``root`` is not the root of a git work tree (a copy of the project inside
    another repository would otherwise record that repository's commit as the project's). None
    where git cannot tell (not installed)."""

    def git(*args):
        try:
            done = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    if shutil.which("git") is None:
        return {"commit": None, "dirty": None}
    top = git("rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != Path(root).resolve():
        return {"commit": NOT_A_CHECKOUT, "dirty": None}
    status = git("--no-optional-locks", "status", "--porcelain")  # never rewrites the index
    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty": bool(status) if status is not None else None,
    }


def preflight(config) -> dict:
    """The facts of the config's backends for env.json; a UsageError when the config cannot run
    on this machine."""
    used = sorted({keras_api.backend_of(api) for api in config.matrix.apis})
    with tempfile.TemporaryDirectory(prefix="klbench-preflight-") as scratch:
        answer = Path(scratch, "answer.json")
        try:
            done = subprocess.run(
                [sys.executable, "-m", "bench.measure.preflight", str(answer), *used],
                env=worker_environment(),
                capture_output=True,
                text=True,
                timeout=PREFLIGHT_TIMEOUT_SECONDS,
            )
        except subprocess.TimeoutExpired:
            raise UsageError(
                f"the preflight of {', '.join(used)} took over {PREFLIGHT_TIMEOUT_SECONDS} s"
            ) from None
        if not answer.is_file():
            why = last_line(done.stderr) or f"exit status {done.returncode}"
            raise UsageError(f"the preflight of {', '.join(used)} failed: {why}")
        facts = json.loads(answer.read_text(encoding="utf-8"))
    blind = [name for name, found in facts["backends"].items() if not found.get("gpu")]
    if config.device.device == "gpu" and blind:
        raise UsageError(
            f'[device] device = "gpu" but {", ".join(blind)} sees no GPU on this machine; '
            'use "auto" or "cpu"'
        )
    return facts
