"""The flags several verbs share, defined once (as asv's ``common_args``), and what they choose."""

import argparse
import re
import sys
from pathlib import Path

from bench import recipes
from bench.config import settings as config_module
from bench.console import say
from bench.errors import (
    BAD_INPUT,
    Terminated,
    UsageError,
    quoted,
    sigterm_raises,
    stop_status,
    stop_word,
)
from bench.processes import exit_now
from bench.results.folder import ResultsFolder
from bench.run.executors import CLUSTER_EXTRA, EXECUTORS, LOCAL, LocalExecutor
from vae_impls.keras_api import APIS


def add_matrix_arguments(parser, rounds_of: str = "recipe x API") -> None:
    """--recipes, --apis and --repeats: which part of the config's matrix runs, how many rounds."""
    parser.add_argument("--recipes", nargs="+", metavar="RECIPE", help="run only these recipes")
    parser.add_argument(
        "--apis", nargs="+", metavar="API", help=f"run only these APIs ({', '.join(APIS)})"
    )
    parser.add_argument("--repeats", type=int, metavar="N", help=f"rounds of every {rounds_of}")


def matrix_asked(args) -> bool:
    """Whether the command line narrows or repeats the config's matrix."""
    return bool(args.recipes or args.apis or args.repeats is not None)


def with_matrix(config, args):
    """``config`` with the command line's --recipes, --apis and --repeats, checked."""
    return config_module.with_overrides(
        config, recipes=args.recipes, apis=args.apis, repeats=args.repeats
    )


def add_recipe_argument(parser) -> None:
    """--recipe: a recipe of the user's own, from a file or module outside kl-bench."""
    parser.add_argument(
        "--recipe",
        action="append",
        default=[],
        metavar="PATH",
        help="add your own recipe: a .py file, or an importable module or module:attribute, "
        "with build(keras, net) and RECIPE = Recipe(...) (repeatable; see README)",
    )


def with_user_recipes(config, specs=(), asked=None):
    """``config`` with the recipes of ``specs`` and of its ``[matrix] recipe_paths`` (each loaded:
    call within ``recipes.loading_allowed``) in its matrix. ``asked`` (--recipes) that names one
    of them is the matrix's recipes as given; otherwise the user's recipes run after those
    ``asked`` (or the config's), beside the registry's."""
    matrix = config.to_dict()["matrix"]
    paths = list(dict.fromkeys([*matrix["recipe_paths"], *(recipes.resolved(s) for s in specs)]))
    recipes.use(paths)
    names = list(recipes.recorded(paths))
    chosen = list(asked or matrix["recipes"])
    if not set(chosen) & set(names):
        chosen = list(dict.fromkeys([*chosen, *names]))
    matrix.update(recipe_paths=paths, recipes=chosen)
    return config_module.from_dict({**config.to_dict(), "matrix": matrix}, config.name)


def declare_recorded(folders) -> None:
    """Make the user recipes each results folder of ``folders`` recorded known here, from its
    records alone: a command that reads a folder never imports code the folder names."""
    for folder in folders:
        if ResultsFolder.is_folder(folder):
            records = ResultsFolder(folder).read_env().get(recipes.USER_RECIPES_KEY)
            recipes.declare(records)


def add_results_dir_argument(parser) -> None:
    """--results-dir: where a benchmark creates its results folder."""
    parser.add_argument(
        "--results-dir",
        metavar="DIR",
        type=Path,
        default=Path("results"),
        help="where the results folder is created (default: ./results)",
    )


def checked_results_dir(args) -> Path:
    """--results-dir, once new folders can be made there: before a cluster is connected."""
    ResultsFolder.check_results_dir(args.results_dir)
    return args.results_dir


def add_executor_arguments(parser) -> None:
    """--executor and --address, for every command that runs a benchmark."""
    parser.add_argument(
        "--executor",
        choices=EXECUTORS,
        default=LOCAL,
        help="local: here, one run at a time (default); ray: one run at a time on each node "
        f"of a Ray cluster ({CLUSTER_EXTRA})",
    )
    parser.add_argument(
        "--address",
        metavar="auto|HOST:PORT",
        help="the Ray cluster's head (with --executor ray; default: auto, the cluster this "
        "machine belongs to)",
    )


def executor_requested(args) -> bool:
    """Whether the command line asks for anything but the default executor."""
    return args.executor != LOCAL or args.address is not None


def executor_of(args):
    """The executor the command line asks for; a Ray one is connected before anything is written."""
    executor, address = args.executor, args.address
    if executor == LOCAL:
        if address is not None:
            raise UsageError("--address names a Ray cluster: give it with --executor ray")
        return LocalExecutor()
    return _connected(_checked_address(address or "auto"))


def _connected(address: str):
    """The Ray executor of the cluster at ``address``. Ctrl-C or SIGTERM while it connects stops
    the command there with one line and the usual status (130, 143), as during a benchmark."""
    try:
        with sigterm_raises():
            from bench.run import cluster  # Ray is an optional extra

            return cluster.RayExecutor(address)
    except (KeyboardInterrupt, Terminated) as stop:
        say(
            f"{stop_word(stop)} while connecting to the Ray cluster at {quoted(address)}: "
            "nothing was written",
            sys.stderr,
        )
        # Now, without the interpreter's teardown: Ray's thread, still connecting, would have
        # its exit hooks wait for it and say more.
        exit_now(stop_status(stop))


def _checked_address(address: str) -> str:
    host_port = re.fullmatch(r"[^\s:/]+:(\d{1,5})", address)
    if address != "auto" and not (host_port and 0 < int(host_port.group(1)) < 65536):
        raise UsageError(f"--address {quoted(address)} is neither auto nor HOST:PORT")
    return address


# --- usage errors: one line ----------------------------------------------------------------------

# An example value of each flag or argument (by its dest) that a usage error's line shows.
EXAMPLES = {
    "verb": "run",
    "config": "quick",
    "recipes": "plain_ae kl_layer",
    "apis": "keras2 keras3",
    "repeats": "3",
    "budget": "15m",
    "resume": "results/FOLDER",
    "results_dir": "results",
    "executor": "ray",
    "address": "127.0.0.1:6379",
    "recipe": "my_recipe.py",
    "vary": "training.batch_size=128,256",
    "baseline": "bench/baseline.json",
    "tolerance": "0.06",
    "floor_tolerance": "0.06",
    "yardstick_tolerance": "0.06",
    "results": "results/FOLDER",
    "fail_slower": "10",
    "plot": "history.png",
    "dir": "recipes",
}
# ... of each positional argument, by its metavar (or its name where it has none).
POSITIONAL_EXAMPLES = {
    "PATH": "my_recipe.py",
    "FOLDER": "results/A results/B",
    "folder": "results/FOLDER",
    "A": "results/A results/B",
    "B": "results/A results/B",
    "name": "my_recipe",
    "verb": "run",
}
_KINDS = {int: "a whole number", float: "a number", Path: "a path"}


class UsageParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (the flag, what it takes, an
    example), exit status 2, as every other refusal; its subcommands' parsers are of its kind."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A value that starts with "-" and a digit is a value ("--budget -5m"), refused for
        # what it means by the flag's own check, never read as an unknown flag.
        self._negative_number_matcher = re.compile(r"^-\d")

    def error(self, message: str):
        say(f"error: {self.prog}: {self._explained(message)}", sys.stderr)
        raise SystemExit(BAD_INPUT)

    def _explained(self, message: str) -> str:
        message = " ".join(message.split())
        required = re.fullmatch(r"the following arguments are required: (.+)", message)
        if required:
            names = required.group(1).split(", ")
            action = self._action_named(names[0])
            return f"{names[0]} is required; {self._takes(action, names[0])}" if action else message
        argument = re.match(r"argument ([^:]+): (.*)", message)
        if argument:
            name = argument.group(1).split("/")[-1]
            action = self._action_named(name)
            problem = argument.group(2)
            return f"{name}: {problem}; {self._takes(action, name)}" if action else message
        unknown = re.fullmatch(r"unrecognized arguments: (.+)", message)
        if unknown:
            return unknown_argument(self.prog, unknown.group(1).split()[0])
        return message

    def _takes(self, action, name: str) -> str:
        """``it takes WHAT, e.g. EXAMPLE``: what ``action`` takes and an example of it."""
        choices = [str(choice) for choice in action.choices or ()]
        if choices:
            what, value = f"one of {', '.join(choices)}", choices[0]
        else:
            kind = _KINDS.get(action.type, "a value")
            kind += ", one or more" if action.nargs == "+" else ""
            what = f"{action.metavar} ({kind})" if action.metavar else kind
            value = EXAMPLES.get(action.dest, action.metavar or "VALUE")
        if action.option_strings:
            return f"it takes {what}, e.g. {name} {value}"
        value = POSITIONAL_EXAMPLES.get(action.metavar or action.dest, value)
        return f"it takes {what}, e.g. {self.prog} {value}"

    def _action_named(self, name: str):
        for action in self._actions:
            names = (*action.option_strings, action.metavar, action.dest)
            if name in names or (isinstance(action.metavar, tuple) and name in action.metavar):
                return action
        return None


def unknown_argument(prog: str, argument: str) -> str:
    return f"{argument} is not an argument of {prog}; see: {prog} --help"
