"""``python -m bench <verb> ...``: dispatch to ``bench.cli.<verb>``."""

import importlib
import importlib.util
import sys

from bench import console
from bench.cli import VERBS, module_of
from bench.cli.common import UsageParser
from bench.errors import BAD_INPUT, INTERRUPTED, UsageError


def _parser(verbs: dict) -> UsageParser:
    parser = UsageParser(
        prog="python -m bench", description="kl-bench: the cost of each KL-loss recipe"
    )
    sub = parser.add_subparsers(dest="verb", required=True)
    for verb, module in verbs.items():
        summary = (module.__doc__ or "").strip().splitlines()[0]
        module.add_arguments(sub.add_parser(verb, help=summary, description=module.__doc__))
    return parser


def parsed(verbs: dict, argv=None):
    """The command line's arguments; a usage error is one line naming the verb's argument
    (``UsageParser``), exit status 2, before anything runs."""
    parser = _parser(verbs)
    args, extras = parser.parse_known_args(argv)
    if extras:  # said by the verb's parser, whose arguments they are not
        verb_parser = parser._subparsers._group_actions[0].choices[args.verb]
        verb_parser.error(f"unrecognized arguments: {' '.join(extras)}")
    return args


def main(argv=None) -> int:
    verbs = {
        verb: importlib.import_module(module_of(verb))
        for verb in VERBS
        if importlib.util.find_spec(module_of(verb))
    }
    args = parsed(verbs, argv)
    try:
        return verbs[args.verb].run(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT
    except KeyboardInterrupt:  # Ctrl-C outside a benchmark (a preflight, a report): no traceback
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:  # the reader of our output has gone, e.g. `| head`
        console.silence(sys.stdout)
        return 0


if __name__ == "__main__":
    sys.exit(main())
