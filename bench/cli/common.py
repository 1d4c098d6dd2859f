"""The flags several verbs share, defined once (as asv's ``common_args``)."""

from bench.run.executors import CLUSTER_EXTRA, EXECUTORS, LOCAL


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
