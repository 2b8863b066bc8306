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
    from astrogate.cli import (cmd_attention, cmd_bench, cmd_compare, cmd_demo, cmd_paper, cmd_recall, cmd_spiking,
                               cmd_sweep)

    parser = OneLineErrorParser(
        prog="astrogate",
        description="Astrocyte-gated associative memory: abstract model, Brian2 networks, benchmarks.",
    )
    parser.add_argument("--version", action="version", version=f"astrogate {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (cmd_recall, cmd_compare, cmd_demo, cmd_bench, cmd_sweep, cmd_spiking, cmd_attention, cmd_paper):
        module.register(subparsers)
    return parser


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP (a `kill`, a closed terminal, a batch system's time limit) as an interruption: the
    clean-up of Ctrl-C runs (a sweep closes its cluster and says how to resume), then astrogate exits with
    128 + the signal's number, as a process killed by it would."""

    def __init__(self, signum: int, *args):
        super().__init__(*args)
        self.signum = signum


STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def _raise_stopped(signum, frame):
    raise Stopped(signum)


def _install_stop_handlers() -> dict:
    """Stopped for SIGTERM and SIGHUP where they would end the process silently (their default); a handler
    someone else installed is kept. Returns the handlers replaced, to restore."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    replaced = {}
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is signal.SIG_DFL:
            replaced[signum] = signal.signal(signum, _raise_stopped)
    return replaced


def main(argv: list[str] | None = None) -> int:
    # A job started in the background of a script begins with SIGINT ignored; Brian2, once imported, then
    # wraps SIG_IGN as if it were a function and fails on the first SIGINT. Python's own handler, installed
    # before anything imports Brian2, makes every SIGINT the KeyboardInterrupt handled below.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    replaced = _install_stop_handlers()
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
        signum = getattr(exc, "signum", signal.SIGINT)
        what = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
        print(f"astrogate: {what}{f': {exc}' if str(exc) else ''}", file=sys.stderr)
        return 128 + signum
    finally:
        for signum, handler in replaced.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main())
