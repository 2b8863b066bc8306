"""astrogate compare: the Brian2 network beside the abstract model on the same problem.

Both integrate with forward Euler at --dt for the full --duration (the abstract model with tol = 0),
so they take the same steps; the printed discrepancies should be floating-point round-off.
"""

from __future__ import annotations

import argparse

from astrogate.cli.options import (
    add_brian2_options,
    add_model_options,
    add_problem_options,
    brian2_options_from_args,
    check_outputs,
    positive_float,
    params_from_args,
    problem_from_args,
)


def register(subparsers) -> None:
    parser = subparsers.add_parser("compare", help="Brian2 network vs abstract model on the same problem",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_problem_options(parser)
    add_model_options(parser)
    parser.add_argument("--duration", type=positive_float("duration"), default=200.0, help="ms (default %(default)s)")
    add_brian2_options(parser, "Brian2 network (rate neurons; the abstract model runs beside it)", spiking=False)
    parser.add_argument("--json", metavar="PATH", help="write both records and the discrepancies as JSON")
    parser.add_argument("--plot", metavar="PATH.png", help="overlay overlaps, gains and L of both runs")
    parser.set_defaults(handler=handle, K=40, N=50)


def handle(args: argparse.Namespace) -> int:
    from astrogate.analysis.compare import discrepancies, plot_comparison, report, run_both
    from astrogate.analysis.io import write_json

    check_outputs(args)
    params = params_from_args(args)
    options = brian2_options_from_args(args)
    problem = problem_from_args(args)
    both = run_both(problem, params, duration=args.duration, **options)
    diffs = discrepancies(both["brian2"], both["abstract"])
    print(report(both, diffs))
    if args.json:
        print(f"wrote {write_json(args.json, dict(both, discrepancies=diffs))}")
    if args.plot:
        print(f"wrote {plot_comparison(both, args.plot)}")
    return 0
