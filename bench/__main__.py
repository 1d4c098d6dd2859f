"""``python -m bench <verb> ...``: dispatch to ``bench.cli.<verb>``."""

import argparse
import importlib
import importlib.util
import sys

from bench import console
from bench.cli import VERBS, module_of
from bench.errors import BAD_INPUT, INTERRUPTED, UsageError


def _parser(verbs: dict) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="kl-bench: the cost of each KL-loss recipe"
    )
    sub = parser.add_subparsers(dest="verb", required=True)
    for verb, module in verbs.items():
        summary = (module.__doc__ or "").strip().splitlines()[0]
        module.add_arguments(sub.add_parser(verb, help=summary, description=module.__doc__))
    return parser


def main(argv=None) -> int:
    verbs = {
        verb: importlib.import_module(module_of(verb))
        for verb in VERBS
        if importlib.util.find_spec(module_of(verb))
    }
    args = _parser(verbs).parse_args(argv)
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
