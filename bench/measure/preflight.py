"""The preflight subprocess: ``python -m bench.measure.preflight ANSWER.json BACKEND...`` writes
what each backend a benchmark uses knows of this machine (its version, the GPUs, CUDA/cuDNN) for
env.json, so that the manager (``bench.run.environment.preflight``) never imports one. Only the
backends named are imported: a benchmark of JAX and PyTorch alone runs where TensorFlow is not
installed."""

import json
import sys
from pathlib import Path

from bench.processes import die_with_manager, exit_now


def backend_facts(names) -> dict:
    """{"backends": {name: its facts}}, and TensorFlow's own entries ("tensorflow", "gpu") at the
    top as env.json has always had them; "gpu" is the first backend's where TensorFlow is not
    used."""
    from bench.measure import backends

    facts = {name: backends.named(name).facts() for name in names}
    top = facts.get("tensorflow") or {"gpu": next(iter(facts.values()), {}).get("gpu")}
    return {**top, "backends": facts}


def _preflight_main(answer_path: str, *names: str) -> int:
    """Write the facts to ``answer_path``: the manager reads them without importing a backend."""
    Path(answer_path).write_text(json.dumps(backend_facts(names)), encoding="utf-8")
    return 0


if __name__ == "__main__":
    die_with_manager()
    exit_now(_preflight_main(*sys.argv[1:]))
