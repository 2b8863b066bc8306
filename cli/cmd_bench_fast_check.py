"""astrogate bench fast-check: do the fast run settings retrieve what the reference retrieves?"""

from __future__ import annotations

import argparse

from astrogate.cli.cmd_sweep import add_run_folder_options
from astrogate.cli.options import count


def register_fast_check(benchmarks) -> None:
    parser = benchmarks.add_parser(
        "fast-check", help="the fast run settings against the reference, trial by trial",
        description="Retrieve the same cues with the gated model's reference settings (forward Euler, float64, "
                    "stopped at the fixed point) and its fast settings, on the cells of the quick retrieval "
                    "benchmark and on cells it never draws (correlated patterns at K/N = 2 and 10, 48 cues each, "
                    "also for F linear and power 3); minutes: the reference takes 3000 steps a cue; each cell "
                    "is a point of a study (runs/configs/fast_check.toml) on Dask; write OUT/results.csv and "
                    "OUT/fast_check.json and print the verdict on the targets.")
    parser.add_argument("--cells", metavar="SET,...", default="quick,hidden,similarities",
                        help="cell sets: quick (the quick benchmark's), hidden (correlated patterns at K/N = 2 "
                             "and 10), similarities (the same for F linear and power 3) (default %(default)s)")
    add_run_folder_options(parser, "runs/fast_check")
    parser.add_argument("--workers", type=count("value"), default=None,
                        help="worker processes of the local cluster (default: one per core)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import pandas as pd

    from astrogate.analysis.fast_check import CELL_SETS, fast_check_study, report, rows_by_set
    from astrogate.cli.cmd_sweep import run_study_command
    from astrogate.errors import InputError
    from astrogate.files import read_text

    sets = [name.strip() for name in args.cells.split(",") if name.strip()]
    unknown = [name for name in sets if name not in CELL_SETS]
    if unknown or not sets:
        raise InputError(f"--cells: unknown {', '.join(unknown) or '(none given)'}; use {', '.join(CELL_SETS)}")
    outcome = run_study_command(fast_check_study(sets), args, workers=args.workers)
    if not outcome.complete:
        return 1
    out = Path(args.out)
    verdicts = json.loads(read_text(out / "fast_check.json", "fast check verdicts"))
    rows = rows_by_set(pd.read_csv(out / "results.csv"))
    print(report({which: (rows[which], verdicts[which]) for which in verdicts}))
    return 0 if all(v["met"] for v in verdicts.values()) and outcome.failed == 0 else 1
