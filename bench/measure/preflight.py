"""The preflight subprocess: ``python -m bench.measure.preflight ANSWER.json`` writes what
TensorFlow itself knows of this machine (its version, the GPUs, CUDA/cuDNN) for env.json, so that
the manager (``bench.run.environment.preflight``) never imports TensorFlow."""

import json
import subprocess
import sys
from pathlib import Path

from bench.processes import die_with_manager, exit_now


def tensorflow_facts(tf) -> dict:
    """TensorFlow's version and what it sees of the GPUs (None: no GPU), for env.json."""
    return {"tensorflow": tf.__version__, "gpu": _gpu_facts(tf)}


def _gpu_facts(tf):
    """The GPUs' count and names, memory and driver, and the CUDA/cuDNN TensorFlow was built
    with: what a GPU result is read against."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    build = tf.sysconfig.get_build_info()
    return {
        "count": len(gpus),
        "names": [
            tf.config.experimental.get_device_details(gpu).get("device_name") for gpu in gpus
        ],
        **_nvidia_smi(),
        "cuda": build.get("cuda_version"),
        "cudnn": build.get("cudnn_version"),
    }


def _nvidia_smi() -> dict:
    """Memory and driver version, which TensorFlow does not report."""
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {"memory": None, "driver": None}
    rows = [line.split(", ") for line in done.stdout.strip().splitlines() if done.returncode == 0]
    return {"memory": [row[0] for row in rows] or None, "driver": rows[0][1] if rows else None}


def _preflight_main(answer_path: str) -> int:
    """Write the facts to ``answer_path``: the manager reads them without importing TensorFlow."""
    import tensorflow as tf

    Path(answer_path).write_text(json.dumps(tensorflow_facts(tf)), encoding="utf-8")
    return 0


if __name__ == "__main__":
    die_with_manager()
    exit_now(_preflight_main(*sys.argv[1:]))
