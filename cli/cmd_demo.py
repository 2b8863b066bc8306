"""astrogate demo: the point of the model in one run.

High load (K = 2N, far beyond the classical capacity 0.138 N) and correlated patterns: the classical
continuous Hopfield network (the same equations with beta = 0) fails, the astrocyte-gated network retrieves.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEMO = dict(K=400, N=200, correlation=0.4, flip=0.2, seed=0)


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="gated network vs classical Hopfield at high load and interference",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/demo", help="output folder (default %(default)s)")
    parser.add_argument("--duration", type=float, default=1000.0, help="time limit, ms (default %(default)s)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from astrogate.analysis.io import write_json
    from astrogate.analysis.plots import plot_side_by_side
    from astrogate.analysis.recall import generated_problem, run_recall, summary
    from astrogate.models.parameters import Parameters

    problem = generated_problem(**DEMO)
    print(f"demo: K = {DEMO['K']} patterns of N = {DEMO['N']} neurons (load K/N = {DEMO['K'] / DEMO['N']:g}), "
          f"parent-model correlation {DEMO['correlation']}, cue = pattern {problem.target} with "
          f"{DEMO['flip']:.0%} of bits flipped\n")
    runs = {
        "astrocyte-gated (beta = 20 N)": Parameters(),
        "classical Hopfield (beta = 0)": Parameters(beta=0.0),
    }
    results = {}
    for label, params in runs.items():
        results[label] = run_recall(problem, params, duration=args.duration)
        print(f"== {label}\n{summary(results[label])}\n")
    out = Path(args.out)
    print(f"wrote {write_json(out / 'demo.json', results)}")
    print(f"wrote {plot_side_by_side(results, out / 'demo.png', 'same patterns, same cue')}")
    return 0
