"""Prove that a recipe of your own computes the shared objective: loss, BCE, KL and gradients.

From identical weights, batch and non-zero sampling noise, with a KL factor that is not 1, one
SGD step of the recipe is compared with the numpy objective (loss, BCE and KL, to 1e-5) and with
a trusted built-in recipe (every gradient element, to 1e-4), as the test suite checks the
built-in ones. One line per check with the measured difference; a failure names the first tensor
and element that differ and what the numbers suggest. Each Keras API group runs in a process of
its own (Keras 2 and Keras 3 cannot share one); by default keras2 and keras3 (or its port).
Several recipes share the processes. A check whose step takes longer than ``--step-timeout``
fails as hung, its process is ended and the group's other checks go on in a new one; a verify
that is ended (Ctrl-C, SIGTERM) ends its check process first. Exit status 0 when every check
passes, 1 when one fails, 2 for a recipe that cannot be loaded (one line: the file and the
problem), 130/143 when interrupted or terminated.
"""

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import recipes
from bench.analysis import equivalence
from bench.console import say
from bench.errors import Terminated, UsageError, sigterm_raises, stop_status, stop_word
from bench.processes import PROJECT_ROOT, last_line, worker_environment
from vae_impls import keras_api, registry
from vae_impls.keras_api import APIS

DEFAULT_APIS = ("keras2", "keras3", keras_api.PORT_API)  # Keras 2 and 3 on TensorFlow: fast
# One check: the recipe and the reference built and traced, one SGD step each, on a loaded
# 2-core machine (docs/own-recipes.md has the measured times).
STEP_TIMEOUT_SECONDS = 180
# A check process' start: importing Keras and its backend, before its first check.
START_TIMEOUT_SECONDS = 300
POLL_SECONDS = 0.2
CHECKS_FAILED = 1


def add_arguments(parser) -> None:
    parser.add_argument(
        "recipes", nargs="+", metavar="PATH", help="the recipes: .py files or modules"
    )
    parser.add_argument(
        "--apis",
        nargs="+",
        metavar="API",
        help=f"verify on these APIs ({', '.join(APIS)}; default: keras2 and keras3, and the "
        "keras3 port where a recipe has one)",
    )
    parser.add_argument(
        "--step-timeout",
        default=str(STEP_TIMEOUT_SECONDS),
        metavar="SECONDS",
        help=f"fail a check whose build and train step take longer (default "
        f"{STEP_TIMEOUT_SECONDS})",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise UsageError(
            f"--step-timeout takes a positive number of seconds, e.g. 120; got {text!r}"
        )
    return value


def run(args) -> int:
    try:
        with sigterm_raises():
            return _verified(args)
    except (KeyboardInterrupt, Terminated) as stop:  # the check process is already ended
        say(f"verify {stop_word(stop)}")
        return stop_status(stop)


def _verified(args) -> int:
    step_timeout = _seconds(getattr(args, "step_timeout", str(STEP_TIMEOUT_SECONDS)))
    users = recipes.load_all(args.recipes)
    apis = {name: apis_to_verify(user, args.apis) for name, user in users.items()}
    recipes.use([user.spec for user in users.values()])  # the checks' processes build them
    checks, every_api = [], [api for found in apis.values() for api in found]
    for group in dict.fromkeys(keras_api.process_group(api) for api in every_api):
        of_group = {
            name: [api for api in found if keras_api.process_group(api) == group]
            for name, found in apis.items()
        }
        wanted = {name: found for name, found in of_group.items() if found}
        checks += _checked_group(wanted, step_timeout)
    return _summary(checks)


def apis_to_verify(user: recipes.UserRecipe, asked) -> list:
    """The APIs to check: those asked for (each must be known and installed) where the recipe
    says it works; by default keras2, keras3 and the keras3 port, where it works."""
    for api in asked or ():
        if api not in APIS:
            raise UsageError(f"unknown API {api!r}; valid APIs: {', '.join(APIS)}")
        if keras_api.not_installed_reason(api):
            raise UsageError(keras_api.not_installed_reason(api))
    candidates = asked or [api for api in DEFAULT_APIS if keras_api.installed(api)]
    working = [api for api in candidates if user.status(api) == registry.WORKS]
    for api in candidates:
        if api not in working and asked:
            say(f"{user.recipe.name} {api}: skipped: declared {user.status(api)} there")
    if not working:
        raise UsageError(
            f"{user.spec}: RECIPE declares no API of {', '.join(candidates)} where it works: "
            "nothing to verify"
        )
    return working


def _checked_group(apis: dict, step_timeout: float) -> list:
    """The ``equivalence.Check``s of ``apis`` (recipe -> its APIs of one process group), printed
    as each process answers."""
    checks, pending = [], [(recipe, api) for recipe, found in apis.items() for api in found]
    while pending:
        answer = measure(_by_recipe(pending), step_timeout)
        checks += _said([check for entry in answer.found for check in equivalence.judge(entry)])
        done = {(entry["recipe"], entry["api"]) for entry in answer.found}
        pending = [pair for pair in pending if pair not in done]
        if pending and not answer.error:  # each pass checks at least one: the loop ends
            answer.error, answer.stuck = "the check's process ended before it", pending[0]
        if answer.error:
            recipe, api = answer.stuck or pending[0]
            checks += _said(
                [equivalence.Check(recipe, api, "step", False, "no answer", answer.error)]
            )
            pending = pending[pending.index((recipe, api)) + 1 :] if answer.stuck else []
    return checks


def _by_recipe(pairs: list) -> dict:
    apis = {}
    for recipe, api in pairs:
        apis.setdefault(recipe, []).append(api)
    return apis


def _said(checks: list) -> list:
    for check in checks:
        say(line_of(check))
    return checks


@dataclass
class Answer:
    """What a check process answered: the checks it finished, and where it stopped early, why
    and (for a check that hung) which."""

    found: list = field(default_factory=list)
    error: str = ""
    stuck: tuple = ()


def measure(apis: dict, step_timeout: float = STEP_TIMEOUT_SECONDS) -> Answer:
    """``bench.measure.equivalence``'s answer for ``apis``, from a process of their own, which
    is ended when a check takes longer than ``step_timeout`` or this process is stopped."""
    spec = {"apis": apis, "fact": equivalence.FACT, "tolerance": equivalence.GRADIENT_TOLERANCE}
    with tempfile.TemporaryDirectory(prefix="kl-bench-verify-") as scratch:
        spec_path, result_path = Path(scratch, "spec.json"), Path(scratch, "result.jsonl")
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        command = [sys.executable, "-m", "bench.measure.equivalence", spec_path, result_path]
        with open(Path(scratch, "stderr.txt"), "w+", encoding="utf-8") as stderr:
            process = subprocess.Popen(
                command,
                cwd=PROJECT_ROOT,
                env=worker_environment(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
            try:
                answer = _watched(process, result_path, step_timeout)
            finally:
                _end(process)
            if answer.error.startswith("the check's process ended"):
                stderr.seek(0)
                answer.error += f": {last_line(stderr.read()) or 'no message'}"
        return answer


def _watched(process, result_path: Path, step_timeout: float) -> Answer:
    """Read ``process``'s answer as it grows until it ends; a check that runs longer than
    ``step_timeout`` (the process' start longer than ``START_TIMEOUT_SECONDS``) is hung."""
    current, since = None, time.monotonic()
    while True:
        ended = process.poll() is not None
        entries = _entries(result_path)
        answer = Answer(found=[entry["check"] for entry in entries if "check" in entry])
        errors = [entry["error"] for entry in entries if "error" in entry]
        started = [tuple(entry["started"]) for entry in entries if "started" in entry]
        if errors:
            answer.error = errors[-1]
            return answer
        if ended:
            if len(answer.found) < len(started) or not started:
                answer.error = f"the check's process ended ({process.returncode})"
                answer.stuck = started[-1] if started else ()
            return answer
        running = started[-1] if len(started) > len(answer.found) else None
        if running != current:
            current, since = running, time.monotonic()
        limit = step_timeout if current else START_TIMEOUT_SECONDS
        if time.monotonic() - since > limit:
            answer.error = (
                f"no step within {limit:g} s: the recipe's build or train step hangs "
                "(--step-timeout sets the limit)"
                if current
                else f"the check's process did not start within {limit:g} s"
            )
            answer.stuck = current or ()
            return answer
        time.sleep(POLL_SECONDS)


def _entries(path: Path) -> list:
    """The complete JSON lines written so far."""
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").split("\n")[:-1]  # the last may be half-written
    return [json.loads(line) for line in lines if line.strip()]


def _end(process) -> None:
    """End ``process`` if it still runs, and reap it."""
    if process.poll() is None:
        process.kill()
    process.wait()


def line_of(check: equivalence.Check) -> str:
    verdict = "ok" if check.passed else "FAIL"
    hint = f": {check.hint}" if check.hint else ""
    return f"{check.recipe} {check.api:<11} {check.name:<9} {verdict:<4} {check.measured}{hint}"


def _summary(checks: list) -> int:
    """A last line per recipe: whether it computes the shared objective; the exit status."""
    for recipe in dict.fromkeys(check.recipe for check in checks):
        mine = [check for check in checks if check.recipe == recipe]
        failed = [check for check in mine if not check.passed]
        apis = ", ".join(dict.fromkeys(check.api for check in mine))
        if failed:
            say(f"{recipe}: {len(failed)} of {len(mine)} checks failed ({apis})")
        else:
            say(f"{recipe}: computes the shared objective on {apis} ({len(mine)} checks)")
    return CHECKS_FAILED if any(not check.passed for check in checks) else 0
