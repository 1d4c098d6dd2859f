"""Prove that a recipe of your own computes the shared objective: loss, BCE, KL and gradients.

From identical weights, batch and non-zero sampling noise, with a KL factor that is not 1, one
SGD step of the recipe is compared with the numpy objective (loss, BCE and KL, to 1e-5) and with
a trusted built-in recipe (every gradient element, to 1e-4), as the test suite checks the
built-in ones. One line per check with the measured difference; a failure names the first tensor
and element that differ and what the numbers suggest. Each Keras API group runs in a process of
its own (Keras 2 and Keras 3 cannot share one); by default keras2 and keras3 (or its port).
Several recipes share the processes. Exit status 0 when every check passes, 1 when one fails,
2 for a recipe that cannot be loaded (one line: the file and the problem).
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import recipes
from bench.analysis import equivalence
from bench.console import say
from bench.errors import UsageError
from bench.processes import PROJECT_ROOT, last_line, worker_environment
from vae_impls import keras_api, registry
from vae_impls.keras_api import APIS

DEFAULT_APIS = ("keras2", "keras3", keras_api.PORT_API)  # Keras 2 and 3 on TensorFlow: fast
GROUP_TIMEOUT_SECONDS = 600
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


def run(args) -> int:
    users = recipes.load_all(args.recipes)
    apis = {name: apis_to_verify(user, args.apis) for name, user in users.items()}
    recipes.use([user.spec for user in users.values()])  # the checks' processes build them
    checks, every_api = [], [api for found in apis.values() for api in found]
    for group in dict.fromkeys(keras_api.process_group(api) for api in every_api):
        of_group = {
            name: [api for api in found if keras_api.process_group(api) == group]
            for name, found in apis.items()
        }
        checks += _checked_group({name: found for name, found in of_group.items() if found})
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


def _checked_group(apis: dict) -> list:
    """The ``equivalence.Check``s of ``apis`` (recipe -> its APIs of one process group), printed
    as they come."""
    found = measure(apis)
    if "error" in found:
        first = next(iter(apis))
        return _said(
            [
                equivalence.Check(
                    first, apis[first][0], "process", False, "no answer", found["error"]
                )
            ]
        )
    return _said([check for entry in found["checks"] for check in equivalence.judge(entry)])


def _said(checks: list) -> list:
    for check in checks:
        say(line_of(check))
    return checks


def measure(apis: dict) -> dict:
    """``bench.measure.equivalence``'s answer for ``apis``, from a process of their own."""
    spec = {"apis": apis, "fact": equivalence.FACT, "tolerance": equivalence.GRADIENT_TOLERANCE}
    with tempfile.TemporaryDirectory(prefix="kl-bench-verify-") as scratch:
        spec_path, result_path = Path(scratch, "spec.json"), Path(scratch, "result.json")
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        command = [sys.executable, "-m", "bench.measure.equivalence", spec_path, result_path]
        try:
            done = subprocess.run(
                command,
                cwd=PROJECT_ROOT,
                env=worker_environment(),
                capture_output=True,
                text=True,
                timeout=GROUP_TIMEOUT_SECONDS,
            )
        except subprocess.TimeoutExpired:
            return {"error": f"no answer within {GROUP_TIMEOUT_SECONDS} s"}
        if not result_path.is_file():
            ended = last_line(done.stderr) or "no message"
            return {"error": f"the check's process ended ({done.returncode}): {ended}"}
        return json.loads(result_path.read_text(encoding="utf-8"))


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
