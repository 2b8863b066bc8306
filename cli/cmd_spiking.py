"""astrogate spiking-study: how close spiking gains come to the softmax fixed point, and how the gap scales.

Runs Poisson (or LIF) networks on Brian2's runtime device in the soft-gain regime (fixed beta, default 10,
K = 10), varying N, nu_max and tau_r one at a time; for each run the residual max|g - softmax(beta F(m_hat))|
averaged over the second half, and the second half's mean gains against the abstract model's fixed point for
the same cue. Writes scaling.csv and scaling.png (log-log, fitted exponents) to --out.
"""

from __future__ import annotations

import argparse

from astrogate.cli.options import count, nonnegative_float, positive_float

# each seed is 12 Brian2 runs of seconds: beyond this a count is a typo, not a study
MAX_SEEDS = 1000


def register(subparsers) -> None:
    parser = subparsers.add_parser("spiking-study", help="spiking gains vs the softmax fixed point, scaling with N, "
                                   "nu_max, tau_r", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for scaling.csv and scaling.png")
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

    from astrogate.analysis.spiking import (
        QUICK_AXES,
        STUDY_AXES,
        StudySettings,
        plot_scaling,
        scaling_exponents,
        scaling_study,
    )
    from astrogate.analysis.io import write_csv
    from astrogate.errors import InputError
    from astrogate.models.spiking_equations import SPIKING

    if args.neuron not in SPIKING:
        raise InputError(f"unknown spiking neuron {args.neuron!r}: use one of {', '.join(SPIKING)}")
    if args.quick and (args.seeds is not None or args.duration is not None):
        raise InputError("--quick runs one seed of 200 ms: drop --seeds and --duration, or --quick")
    settings = StudySettings(K=args.K, beta=args.beta, neuron=args.neuron,
                             duration=200.0 if args.quick else args.duration or 400.0)
    seeds = range(1 if args.quick else args.seeds or 3)

    def progress(row):
        print(f"{row['axis']:>6}: N={row['N']:4d} nu_max={row['nu_max']:5.0f} Hz tau_r={row['tau_r']:4.0f} ms "
              f"seed {row['seed']}: residual {row['mean_softmax_residual']:.4f}, |<g> - g*| "
              f"{row['mean_gain_error']:.4f}, {'correct' if row['correct'] else 'WRONG pattern'} "
              f"({row['run_seconds']:.1f} s)", flush=True)

    rows = scaling_study(settings, QUICK_AXES if args.quick else STUDY_AXES, seeds, args.target, progress)
    out = Path(args.out)
    print(f"wrote {write_csv(rows, out / 'scaling.csv')}")
    print(f"wrote {plot_scaling(rows, out / 'scaling.png')}")
    for quantity in ("mean_softmax_residual", "mean_gain_error"):
        fits = scaling_exponents(rows, quantity)
        print(f"fitted exponents of {quantity}: " + ", ".join(f"{axis} {slope:+.2f}" for axis, slope in fits.items()))
    return 0
