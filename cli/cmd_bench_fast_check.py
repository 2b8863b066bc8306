"""astrogate bench fast-check: do the fast run settings retrieve what the reference retrieves? (issue 20)"""

from __future__ import annotations

import argparse


def register_fast_check(benchmarks) -> None:
    parser = benchmarks.add_parser(
        "fast-check", help="the fast run settings against the reference, trial by trial",
        description="Retrieve the same cues with the gated model's reference settings (forward Euler, float64, "
                    "stopped at the fixed point) and its fast settings, on the cells of the quick retrieval "
                    "benchmark and on cells it never draws (correlated patterns at K/N = 2 and 10, 48 cues each, "
                    "also for F linear and power 3); minutes: the reference takes 3000 steps a cue; "
                    "write OUT/fast_check.csv and OUT/fast_check.json and print the verdict on issue 20's targets.")
    parser.add_argument("--cells", metavar="SET,...", default="quick,hidden,similarities",
                        help="cell sets: quick (the quick benchmark's), hidden (correlated patterns at K/N = 2 "
                             "and 10), similarities (the same for F linear and power 3) (default %(default)s)")
    parser.add_argument("--out", default="runs/fast_check", help="output folder (default %(default)s)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from astrogate.analysis.fast_check import CELL_SETS, report, run_check, write_check
    from astrogate.errors import InputError
    from astrogate.models.abstract import FAST_SETTINGS

    sets = [name.strip() for name in args.cells.split(",") if name.strip()]
    unknown = [name for name in sets if name not in CELL_SETS]
    if unknown or not sets:
        raise InputError(f"--cells: unknown {', '.join(unknown) or '(none given)'}; use {', '.join(CELL_SETS)}")
    result = run_check(FAST_SETTINGS, sets)
    paths = write_check(result, args.out)
    print(report(result))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0 if all(verdict["met"] for _, verdict in result.values()) else 1
