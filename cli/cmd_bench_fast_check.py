"""astrogate bench fast-check: do the fast run settings retrieve what the reference retrieves? (issue 20)"""

from __future__ import annotations

import argparse


def register_fast_check(benchmarks) -> None:
    parser = benchmarks.add_parser(
        "fast-check", help="the fast run settings against the reference, trial by trial",
        description="Retrieve the same cues with the gated model's reference settings (forward Euler, float64, "
                    "stopped at the fixed point) and its fast settings, on the cells of the quick retrieval "
                    "benchmark and on cells it never draws (correlated patterns at K/N = 2 and 10, 48 cues each); "
                    "write OUT/fast_check.csv and OUT/fast_check.json and print the verdict on issue 20's targets.")
    parser.add_argument("--cells", choices=("quick", "hidden", "both"), default="both",
                        help="which cells (default %(default)s)")
    parser.add_argument("--out", default="runs/fast_check", help="output folder (default %(default)s)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from astrogate.analysis.fast_check import report, run_check, write_check
    from astrogate.models.abstract import FAST_SETTINGS

    result = run_check(FAST_SETTINGS, args.cells)
    paths = write_check(result, args.out)
    print(report(result))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0 if all(verdict["met"] for _, verdict in result.values()) else 1
