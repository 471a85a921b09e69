"""``smlocal``: the host-side command line. Each area registers its own subcommands.

    smlocal convert | inspect                        data tools (smlocal.data.tools)
    smlocal train | describe | serve | predict | transform | quickstart   runtime (smlocal.runtime.commands)
    smlocal export                                   AWS Batch / Kubernetes definitions (smlocal.runtime.export)
    smlocal tune | describe-tuning                   hyperparameter tuning jobs (smlocal.tuning.commands)
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from smlocal import __version__
from smlocal.errors import INTERRUPTED_EXIT_CODE, SmlocalError, failure_text

# modules exposing add_commands(subparsers); each handler receives the parsed args and returns an exit code
COMMAND_MODULES = ("smlocal.data.tools", "smlocal.runtime.commands", "smlocal.api.commands",
                   "smlocal.runtime.export", "smlocal.tuning.commands")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smlocal", description="Run SageMaker's built-in k-means and linear "
                                     "learner anywhere: train, serve, transform, convert and inspect data.")
    parser.add_argument("--version", action="version", version=f"smlocal {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return parser


def _setup_logging(verbose: bool) -> None:
    """Our own messages only: libraries (botocore, urllib3...) keep their warnings-only default."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("smlocal")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    _setup_logging(args.verbose)
    try:
        return int(args.handler(args) or 0)
    except SmlocalError as exc:
        print(f"smlocal: {failure_text(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("smlocal: interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT_CODE


if __name__ == "__main__":
    sys.exit(main())
