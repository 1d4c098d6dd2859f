"""`verify` proves a user's recipe computes the shared objective, and says what a failure's
numbers suggest; the slow test verifies, benchmarks and explains recipes written outside the
repository, as README's three commands do."""

import os
import subprocess
import sys

import pytest

from bench.analysis import equivalence
from tests.builders import ROOT

OBJECTIVE = {"loss": 0.6928, "bce": 0.6925, "kl": 0.0003}
GRADIENTS_OK = {"max_difference": 1e-9, "worst_over_tolerance": 0.01, "first": None, "missing": []}


def found(**changes):
    return {
        "recipe": "mine",
        "api": "keras2",
        "reference": "gradient_tape",
        "objective": OBJECTIVE,
        "terms": dict(OBJECTIVE),
        "missing_keys": {},
        "log_keys": ["bce", "kl", "loss"],
        "gradients": GRADIENTS_OK,
        **changes,
    }


def hints(checks):
    return {check.name: check.hint for check in checks if not check.passed}


def test_a_correct_step_passes_every_check():
    checks = equivalence.judge(found())
    assert [check.name for check in checks] == ["loss", "bce", "kl", "gradients"]
    assert all(check.passed for check in checks)


def test_a_kl_off_by_exactly_fact_applies_the_factor_twice():
    kl = OBJECTIVE["kl"] * equivalence.FACT
    terms = {"loss": OBJECTIVE["bce"] + kl, "bce": OBJECTIVE["bce"], "kl": kl}
    found_hints = hints(equivalence.judge(found(terms=terms)))
    assert found_hints["kl"] == "KL off by exactly fact: the factor is applied twice"
    assert "applied twice" in found_hints["loss"]


def test_a_loss_equal_to_the_bce_lost_its_kl_term():
    terms = {**OBJECTIVE, "loss": OBJECTIVE["bce"]}
    assert hints(equivalence.judge(found(terms=terms))) == {
        "loss": "loss equals BCE: no KL term reached the loss"
    }


def test_a_missing_log_key_names_the_term():
    checks = equivalence.judge(found(terms={}, missing_keys={"kl": "kl_loss"}))
    assert hints(checks)["kl"].startswith("metric names: no 'kl_loss' in the logs")


def test_a_gradient_failure_names_the_first_element_that_differs():
    first = {"weight": "encoder_conv_0/bias", "index": [3], "mine": 1.0, "reference": 2.0}
    gradients = {**GRADIENTS_OK, "worst_over_tolerance": 50.0, "first": first}
    assert hints(equivalence.judge(found(gradients=gradients)))["gradients"] == (
        "first difference at encoder_conv_0/bias[3]: 1 vs gradient_tape's 2"
    )


def test_a_recipe_that_raises_is_one_failed_check():
    checks = equivalence.judge(found(error="ValueError: no"))
    assert [(check.name, check.passed) for check in checks] == [("step", False)]


TINY_RUN = """
name = "yours"
[device]
device = "cpu"
[training]
dataset = "synthetic"
batch_size = 16
epochs = 2
warmup_epochs = 1
steps_per_epoch = 2
paired_blocks = 2
paired_block_steps = 2
[matrix]
recipes = ["plain_ae"]
apis = ["keras2"]
repeats = 1
"""

BROKEN = {
    "fact_twice": ("kl = -net.fact * tf", "kl = -net.fact * net.fact * tf"),
    "kl_dropped": ("loss = bce + kl", "loss = bce"),
    "encoder_twice": (
        "z, mu, log_var = self.encoder(x, training=True)",
        "z, _, _ = self.encoder(x, training=True)\n"
        "                _, mu, log_var = self.encoder(x, training=True)",
    ),
}


def bench(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )


def written_recipes(folder):
    """``new-recipe``'s module as written, and three broken copies of it, outside the repo."""
    assert bench("new-recipe", "yours", "--dir", str(folder), cwd=folder).returncode == 0
    template = (folder / "yours.py").read_text()
    for name, (old, new) in BROKEN.items():
        assert old in template, name
        text = template.replace(old, new).replace('"yours"', f'"{name}"')
        (folder / f"{name}.py").write_text(text)
    return folder


def lines_of(output, recipe):
    return [line for line in output.splitlines() if line.startswith(f"{recipe} ")]


@pytest.mark.slow
def test_verify_benchmark_and_explain_recipes_written_outside_the_repository(tmp_path):
    folder = written_recipes(tmp_path)
    correct = bench("verify", "yours.py", cwd=folder)
    assert correct.returncode == 0, correct.stdout + correct.stderr
    assert "yours: computes the shared objective on keras2, keras3 (8 checks)" in correct.stdout

    broken = bench(
        "verify",
        "fact_twice.py",
        "kl_dropped.py",
        "encoder_twice.py",
        "--apis",
        "keras2",
        cwd=folder,
    )
    assert broken.returncode == 1, broken.stdout + broken.stderr
    out = broken.stdout
    assert "KL off by exactly fact: the factor is applied twice" in "".join(
        lines_of(out, "fact_twice")
    )
    assert "loss equals BCE: no KL term reached the loss" in "".join(lines_of(out, "kl_dropped"))
    assert "first difference at " in "".join(lines_of(out, "kl_dropped"))
    assert "encoder_twice: computes the shared objective on keras2 (4 checks)" in out

    (folder / "yours.toml").write_text(TINY_RUN)
    template = (folder / "yours.py").read_text().replace('"yours"', '"raises"')
    first_line = "    images = network"
    raising = template.replace(first_line, f"    raise ValueError('mine')\n{first_line}", 1)
    (folder / "raises.py").write_text(raising)
    run = bench(
        "run",
        "--config",
        "yours.toml",
        *("--recipe", "yours.py", "--recipe", "encoder_twice.py", "--recipe", "raises.py"),
        *("--results-dir", "results"),
        cwd=folder,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "raises keras2 rep 1: failed" in run.stdout, run.stdout
    report = next((folder / "results").iterdir()) / "report.md"
    causes_section = report.read_text().split("## Where the cost comes from", 1)[1]
    why = {
        line.split(" ", 2)[1]: line
        for line in causes_section.split("\n## ", 1)[0].splitlines()
        if line.startswith("- ")
    }
    assert "the encoder is in the graph twice" in why["encoder_twice"], causes_section
    assert f"your recipe, from {(folder / 'encoder_twice.py').resolve()}" in why["encoder_twice"]
    assert "no layer runs more often than in the floor" in why["yours"], causes_section
    answer_row = next(line for line in report.read_text().splitlines() if "| yours |" in line)
    assert answer_row.startswith("| yours | own |")  # its declaration's post, read back
