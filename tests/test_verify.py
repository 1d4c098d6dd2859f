"""`verify` proves a user's recipe computes the shared objective, and says what a failure's
numbers suggest; the slow test verifies, benchmarks and explains recipes written outside the
repository, as README's three commands do."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.analysis import equivalence
from bench.cli import verify as verify_cli
from bench.errors import UsageError
from tests import own_recipes
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


SHAPE = {"pixels": 784, "latent": 3, "batch": 16}


def test_a_bce_summed_over_the_pixels_names_the_factor_and_the_fix():
    bce = OBJECTIVE["bce"] * 784
    terms = {"loss": bce + OBJECTIVE["kl"], "bce": bce, "kl": OBJECTIVE["kl"]}
    found_hints = hints(equivalence.judge(found(terms=terms, shape=SHAPE)))
    assert found_hints["bce"] == (
        "BCE is 784x the shared objective's (784 pixels): it sums over the 784 pixels instead of "
        "averaging them. Fix: take the mean over every pixel "
        "(vae_impls.objective.reconstruction_loss)"
    )
    assert found_hints["loss"] == f"loss = its BCE + KL, where {found_hints['bce']}"


def test_the_tutorial_kl_names_each_of_its_three_factors():
    """-0.5 * sum over the latent dimensions, without fact: 0.5 x 3 / 0.3 = 5."""
    kl = OBJECTIVE["kl"] * 0.5 * 3 / equivalence.FACT
    terms = {"loss": OBJECTIVE["bce"] + kl, "bce": OBJECTIVE["bce"], "kl": kl}
    hint = hints(equivalence.judge(found(terms=terms, shape=SHAPE)))["kl"]
    assert hint.startswith("KL is 5x the shared objective's (3 latent dimensions x 0.5 x 1/fact)")
    for change in (
        "mean over the latent dimensions",
        "drop the 0.5",
        "multiply the KL by net.fact",
    ):
        assert change in hint


@pytest.mark.parametrize(
    ("loss", "expected"),
    [
        (OBJECTIVE["bce"] + 2 * OBJECTIVE["kl"], "loss holds the KL twice"),
        (2 * OBJECTIVE["bce"] + OBJECTIVE["kl"], "loss holds the BCE twice"),
        (OBJECTIVE["kl"], "loss equals KL: no BCE term reached the loss"),
        (16 * OBJECTIVE["bce"] + 16 * OBJECTIVE["kl"], "where BCE is 16x"),
    ],
)
def test_a_term_missing_doubled_or_scaled_in_the_loss_is_named(loss, expected):
    terms = {**OBJECTIVE, "loss": loss}
    assert expected in hints(equivalence.judge(found(terms=terms, shape=SHAPE)))["loss"]


def test_noise_drawn_elsewhere_is_said_where_no_factor_explains_the_difference():
    terms = {"loss": OBJECTIVE["loss"] - 0.000282, "bce": OBJECTIVE["bce"] - 0.000282, "kl": 0.0003}
    noise = {"sampling_layer": False, "loss_unmoved": True, "elsewhere": True}
    found_hints = hints(equivalence.judge(found(terms=terms, shape=SHAPE, noise=noise)))
    assert found_hints["bce"] == equivalence.NOISE_ELSEWHERE
    assert found_hints["loss"] == equivalence.NOISE_ELSEWHERE
    plain = hints(equivalence.judge(found(terms=terms, shape=SHAPE)))
    assert plain["bce"] == "bce differs from the shared objective by -0.000282"


def test_each_product_of_known_factors_is_a_different_number():
    """So a ratio names one explanation: no two factorings of a term within the tolerance."""
    for term, groups in equivalence.factors(SHAPE).items():
        products = sorted(equivalence.product(chosen) for chosen in equivalence.factorings(groups))
        closest = min(b / a - 1 for a, b in zip(products, products[1:]))
        assert closest > 100 * equivalence.LOSS_RTOL, term


def test_a_recipe_that_raises_is_one_failed_check():
    checks = equivalence.judge(found(error="ValueError: no"))
    assert [(check.name, check.passed) for check in checks] == [("step", False)]


def entry(recipe):
    return found(recipe=recipe)


def test_after_a_hung_check_the_group_goes_on_in_a_new_process(monkeypatch):
    answers = [
        verify_cli.Answer(found=[entry("a")], error="no step within 5 s", stuck=("b", "keras2")),
        verify_cli.Answer(found=[entry("c")]),
    ]
    asked = []

    def measured(apis, step_timeout):
        asked.append(apis)
        return answers.pop(0)

    monkeypatch.setattr(verify_cli, "measure", measured)
    checks = verify_cli._checked_group({"a": ["keras2"], "b": ["keras2"], "c": ["keras2"]}, 5)
    assert asked == [{"a": ["keras2"], "b": ["keras2"], "c": ["keras2"]}, {"c": ["keras2"]}]
    failed = [(check.recipe, check.measured, check.hint) for check in checks if not check.passed]
    assert failed == [("b", "no answer", "no step within 5 s")]
    assert {check.recipe for check in checks} == {"a", "b", "c"}


def test_a_process_that_ends_before_a_check_fails_that_check_and_goes_on(monkeypatch):
    answers = [verify_cli.Answer(found=[entry("a")]), verify_cli.Answer(found=[entry("c")])]
    monkeypatch.setattr(verify_cli, "measure", lambda apis, step_timeout: answers.pop(0))
    checks = verify_cli._checked_group({"a": ["keras2"], "b": ["keras2"], "c": ["keras2"]}, 5)
    failed = [check.recipe for check in checks if not check.passed]
    assert failed == ["b"]
    assert {check.recipe for check in checks} == {"a", "b", "c"}


@pytest.mark.parametrize("text", ["abc", "0", "-5", "inf", "nan", ""])
def test_a_step_timeout_that_is_no_positive_number_is_refused_in_one_line(text):
    with pytest.raises(UsageError, match="--step-timeout takes a positive number of seconds"):
        verify_cli._seconds(text)


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
        *("--recipe", "tests.own_recipes:wrong_key", "--results-dir", "results"),
        cwd=folder,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "raises keras2 rep 1: failed" in run.stdout, run.stdout
    # the run's failure is explained as verify explains it, not as a bare KeyError
    said = "wrong_key keras2 rep 1: failed metric names: no 'total' in the logs (they hold bce,"
    assert said in run.stdout, run.stdout
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


def verify(*args):
    return bench("verify", *args, cwd=ROOT)


def own(*names):
    return [f"tests.own_recipes:{name}" for name in names]


@pytest.mark.slow
def test_verify_names_each_common_difference_and_the_change_to_make():
    """The recipes of tests/own_recipes.py, each one common mistake, in one verify."""
    mistakes = ("pixel_sum", "tutorial_kl", "fact_twice", "kl_doubled", "bce_doubled")
    mistakes += ("own_noise", "wrong_key", "earlier_helper", "declared_for_jax")
    checked = verify(*own("correct", *mistakes), "--apis", "keras2", "keras3-jax")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    out = checked.stdout
    said = {name: "\n".join(lines_of(out, name)) for name in ("correct", *mistakes)}
    assert "correct: computes the shared objective on keras2 (4 checks)" in out
    assert "BCE is 784x the shared objective's (784 pixels)" in said["pixel_sum"]
    assert "Fix: take the mean over every pixel" in said["pixel_sum"]
    assert (
        "KL is 5x the shared objective's (3 latent dimensions x 0.5 x 1/fact)"
        in (said["tutorial_kl"])
    )
    assert "KL off by exactly fact: the factor is applied twice" in said["fact_twice"]
    assert "loss holds the KL twice" in said["kl_doubled"]
    assert "loss holds the BCE twice" in said["bce_doubled"]
    assert equivalence.NOISE_ELSEWHERE in said["own_noise"]
    assert "metric names: no 'total' in the logs (they hold bce, kl, loss)" in said["wrong_key"]
    assert "SignatureChanged: kl_loss takes the Keras module first" in said["earlier_helper"]
    jax_lines = [line for line in lines_of(out, "declared_for_jax") if "keras3-jax" in line]
    assert jax_lines and "Keras on JAX calls a stateless train_step" in jax_lines[0], out
    assert "declared_for_jax keras2      gradients ok" in said["declared_for_jax"]


@pytest.mark.slow
def test_a_hung_check_fails_at_the_step_limit_and_the_group_goes_on():
    """Both recipes hang for ever: the second is checked, in a new process, after the first."""
    checked = verify(*own("hangs", "hangs_too"), "--apis", "keras2", "--step-timeout", "5")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    for name in ("hangs", "hangs_too"):
        assert f"{name} keras2      step      FAIL no answer: no step within 5 s" in checked.stdout


@pytest.mark.slow
def test_sigterm_to_verify_leaves_no_check_process_behind(tmp_path):
    marker = tmp_path / "hanging.pid"
    process = subprocess.Popen(
        [sys.executable, "-m", "bench", "verify", *own("hangs"), "--apis", "keras2"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), own_recipes.HANG_MARKER_ENV: str(marker)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while not marker.is_file() or not marker.read_text():  # the check's build has begun
            assert process.poll() is None, process.communicate()
            time.sleep(0.1)
        check_pid = int(marker.read_text())
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == 143, out + err
    assert "verify terminated" in out
    # verify reaps its check process before it exits: gone by now, not merely dying
    assert not Path(f"/proc/{check_pid}").exists()
