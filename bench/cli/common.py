"""The flags several verbs share, defined once (as asv's ``common_args``), and what they choose."""

import re
import sys

from bench.console import say
from bench.errors import Terminated, UsageError, quoted, sigterm_raises, stop_status, stop_word
from bench.run.executors import CLUSTER_EXTRA, EXECUTORS, LOCAL, LocalExecutor


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
        raise SystemExit(stop_status(stop)) from None


def _checked_address(address: str) -> str:
    host_port = re.fullmatch(r"[^\s:/]+:(\d{1,5})", address)
    if address != "auto" and not (host_port and 0 < int(host_port.group(1)) < 65536):
        raise UsageError(f"--address {quoted(address)} is neither auto nor HOST:PORT")
    return address
