"""The `astrogate` command. Each subcommand lives in its own module with `register(subparsers)`."""

from __future__ import annotations

import argparse
import signal
import sys

import numpy as np

from astrogate import __version__
from astrogate.errors import InputError


class OneLineErrorParser(argparse.ArgumentParser):
    """Usage mistakes as one line naming the problem (exit code 2), not a usage dump."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from astrogate.cli import cmd_attention, cmd_bench, cmd_compare, cmd_demo, cmd_recall, cmd_spiking, cmd_sweep

    parser = OneLineErrorParser(
        prog="astrogate",
        description="Astrocyte-gated associative memory: abstract model, Brian2 networks, benchmarks.",
    )
    parser.add_argument("--version", action="version", version=f"astrogate {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (cmd_recall, cmd_compare, cmd_demo, cmd_bench, cmd_sweep, cmd_spiking, cmd_attention):
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    # A job started in the background of a script begins with SIGINT ignored; Brian2, once imported, then
    # wraps SIG_IGN as if it were a function and fails on the first SIGINT. Python's own handler, installed
    # before anything imports Brian2, makes every SIGINT the KeyboardInterrupt handled below.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        parser = build_parser()  # inside the try: Ctrl-C while the subcommands import is an interruption too
        args = parser.parse_args(argv)
        # overflow is caught where it matters (a non-finite state is an error naming when and where), so
        # NumPy's floating-point warnings would only add lines to that one-line error
        with np.errstate(all="ignore"):
            return int(args.handler(args) or 0)
    except InputError as exc:
        print(f"astrogate: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"astrogate: interrupted{f': {exc}' if str(exc) else ''}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
