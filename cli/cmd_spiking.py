"""astrogate spiking-study: how close spiking gains come to the softmax fixed point, and how the gap scales.

Runs Poisson (or LIF) networks on Brian2's runtime device in the soft-gain regime (fixed beta, default 10,
K = 10), varying N, nu_max and tau_r one at a time; for each run the residual max|g - softmax(beta F(m_hat))|
averaged over the second half, and the second half's mean gains against the abstract model's fixed point for
the same cue. Each run is a point of a study (runs/configs/spiking_study.toml) on Dask; writes results.csv,
results.nc and scaling.png (log-log, fitted exponents) to --out.
"""

from __future__ import annotations

import argparse

from astrogate.cli.cmd_sweep import add_run_folder_options
from astrogate.cli.options import count, nonnegative_float, positive_float

# each seed is 12 Brian2 runs of seconds: beyond this a count is a typo, not a study
MAX_SEEDS = 1000


def register(subparsers) -> None:
    parser = subparsers.add_parser("spiking-study", help="spiking gains vs the softmax fixed point, scaling with N, "
                                   "nu_max, tau_r", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_folder_options(parser)
    parser.add_argument("--workers", type=count("value"), default=None,
                        help="worker processes of the local cluster (default: one per core)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--quick", action="store_true", help="two values per axis, one seed, 200 ms (a minute)")
    parser.add_argument("--neuron", default="poisson", help="poisson or lif (default %(default)s)")
    parser.add_argument("--seeds", type=count("value", maximum=MAX_SEEDS), default=None,
                        help="seeds per point (default 3)")
    parser.add_argument("--beta", type=nonnegative_float("beta"), default=10.0, help="fixed beta (default %(default)s)")
    parser.add_argument("--K", type=count("K", minimum=2), default=10, help="patterns (default %(default)s)")
    parser.add_argument("--duration", type=positive_float("duration"), default=None, help="ms per run (default 400)")
    parser.add_argument("--target", default="numpy", help="runtime code generation: numpy or cython (default %(default)s)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from pathlib import Path

    import pandas as pd

    from astrogate.analysis.spiking import scaling_exponents, spiking_study
    from astrogate.cli.cmd_sweep import run_study_command
    from astrogate.errors import InputError
    from astrogate.models.spiking_equations import SPIKING

    if args.neuron not in SPIKING:
        raise InputError(f"unknown spiking neuron {args.neuron!r}: use one of {', '.join(SPIKING)}")
    if args.quick and (args.seeds is not None or args.duration is not None):
        raise InputError("--quick runs one seed of 200 ms: drop --seeds and --duration, or --quick")
    study = spiking_study(args.quick, K=args.K, beta=args.beta, neuron=args.neuron, duration=args.duration,
                          target=args.target, seeds=args.seeds)
    args.out = args.out or str(Path("runs") / study.name)
    outcome = run_study_command(study, args, workers=args.workers)
    if not outcome.complete:
        return 1
    out = Path(args.out)
    rows = pd.read_csv(out / "results.csv").to_dict("records")
    print(f"wrote {out / 'scaling.png'}")
    for quantity in ("mean_softmax_residual", "mean_gain_error"):
        fits = scaling_exponents([r for r in rows if r.get("status") is None or pd.isna(r.get("status"))], quantity)
        print(f"fitted exponents of {quantity}: " + ", ".join(f"{axis} {slope:+.2f}" for axis, slope in fits.items()))
    return 0 if outcome.failed == 0 else 1
