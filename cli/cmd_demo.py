"""astrogate demo: the point of the model in one run.

High load (K = 2N, far beyond the classical capacity 0.138 N) and correlated patterns: the classical
continuous Hopfield network (the same equations with beta = 0) fails, the astrocyte-gated network retrieves.
The gated network also runs as a Brian2 network compiled with cpp_standalone (needs g++), beside the
abstract model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from astrogate.cli.options import positive_float

DEMO = dict(K=400, N=200, correlation=0.4, flip=0.2, seed=0)


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="gated network vs classical Hopfield at high load and interference",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/demo", help="output folder (default %(default)s)")
    parser.add_argument("--duration", type=positive_float("duration"), default=1000.0, help="time limit, ms (default %(default)s)")
    parser.add_argument("--no-brian2", action="store_true", help="skip the Brian2 cpp_standalone network")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from astrogate.analysis.folder import RunFolder
    from astrogate.analysis.io import write_json
    from astrogate.analysis.plots import plot_side_by_side

    with RunFolder.open(args.out) as folder:  # writable and ours before anything runs
        results = run_demo(args)
        with folder.staged() as stage:  # the record and its figure moved into place together
            write_json(stage / "demo.json", results)
            plot_side_by_side(results, stage / "demo.png", "same patterns, same cue")
    for name in ("demo.json", "demo.png"):
        print(f"wrote {Path(args.out) / name}")
    return 0


def run_demo(args: argparse.Namespace) -> dict:
    """The gated network and classical Hopfield on the demo's problem (and the Brian2 network beside them)."""
    from astrogate.analysis.recall import generated_problem, recall, summary
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
        results[label] = recall(problem, params, duration=args.duration)
        print(f"== {label}\n{summary(results[label])}\n")
    if not args.no_brian2:
        gated = next(iter(runs))
        network = run_brian2_beside(problem, runs[gated], args.duration, results[gated])
        if network is not None:
            results[f"Brian2 cpp_standalone, {gated}"] = network
    return results


def run_brian2_beside(problem, params, duration: float, reference: dict) -> dict | None:
    """The gated network on Brian2's cpp_standalone device; None (and a message) if it cannot run."""
    from astrogate.analysis.compare import discrepancies
    from astrogate.analysis.recall import recall, summary

    label = "Brian2 network, cpp_standalone"
    print(f"== {label} (compiling a C++ project, about a minute)")
    try:
        network = recall(problem, params, duration=duration, tol=1e-8, backend="brian2", device="cpp_standalone")
    except Exception as exc:  # a missing or failing compiler must not cost the abstract results
        print(f"the Brian2 network did not run ({type(exc).__name__}: {exc}); writing the abstract results only\n")
        return None
    diffs = discrepancies(network, reference)
    print(summary(network))
    print(f"build {network['timings']['build_seconds']:.1f} s, run {network['timings']['run_seconds']:.1f} s; "
          f"against the abstract model (which stopped at convergence): same pattern: {diffs['same_retrieved']}, "
          f"max|g difference| = {diffs['max_abs_gain']:.1e}, max|v difference| = {diffs['max_abs_rate']:.1e}\n")
    return {**network.to_dict(), "discrepancies": diffs}
