"""astrogate sweep and astrogate plot: parameter studies on Dask, and their figures."""

from __future__ import annotations

import argparse
from pathlib import Path

from astrogate.cli.options import count


def register(subparsers) -> None:
    sweep = subparsers.add_parser(
        "sweep", help="run a parameter sweep from a TOML spec on a Dask cluster",
        description="Run the points of a sweep spec (runs/README.md) as Dask tasks: on a local cluster of "
                    "--workers processes, or on the scheduler at --scheduler. Each finished point is written "
                    "to OUT/points at once; at the end OUT/sweep.nc (xarray) and OUT/results.csv.")
    sweep.add_argument("spec", metavar="SPEC", help="sweep spec: a TOML file, or a shipped study by name (study_load_taug, study_beta_correlation)")
    sweep.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler, e.g. tcp://127.0.0.1:8786")
    sweep.add_argument("--workers", type=count("value"), default=None,
                       help="worker processes of the local cluster (default: one per core)")
    sweep.add_argument("--out", metavar="DIR", help="output folder (default runs/<spec name>)")
    sweep.add_argument("--resume", action="store_true", help="continue a sweep in OUT, skipping finished points")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    sweep.set_defaults(handler=handle_sweep)

    plot = subparsers.add_parser(
        "plot", help="heatmaps and line plots of a finished or partial sweep",
        description="Heatmaps over two axes (faceted by a third, averaged over the rest) and line plots of "
                    "each recorded metric, written to SWEEP_DIR/figures.")
    plot.add_argument("sweep_dir", metavar="SWEEP_DIR", help="a sweep's output folder")
    plot.add_argument("--metric", action="append", help="plot only this metric (repeatable)")
    plot.add_argument("--x", help="axis along x (default: the spec's first axis)")
    plot.add_argument("--y", help="axis along y, or one line per value (default: the next axis)")
    plot.add_argument("--out", metavar="DIR", help="figure folder (default SWEEP_DIR/figures)")
    plot.set_defaults(handler=handle_plot)


def handle_sweep(args: argparse.Namespace) -> int:
    from astrogate.analysis.sweep import check_out, close_client, make_client, run_sweep
    from astrogate.analysis.sweep_spec import load_spec

    # all checks happen before a cluster starts
    spec = load_spec(args.spec)
    out = Path(args.out or Path("runs") / spec.name)
    check_out(out, args.resume, spec)
    client = make_client(args.scheduler, args.workers, spec.n_points)
    interrupted = False
    try:
        n_workers = len(client.scheduler_info()["workers"])
        where = args.scheduler or f"a local cluster of {n_workers} worker process{'es' if n_workers > 1 else ''}"
        print(f"sweep {spec.name!r}: {spec.n_points} points ({' x '.join(map(str, spec.shape))}) on {where}; "
              f"writing to {out}")
        outcome = run_sweep(spec, out, client, resume=args.resume, progress=not args.no_progress)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM / SIGHUP (cli/main.py Stopped): the same message
        interrupted = True
        exc.args = (f"the finished points are in {out / 'points'}; continue with --resume",)
        raise
    except BaseException:
        # a failure (a full disk, say) cancels the pending points: their cancellation is no news either
        interrupted = True
        raise
    finally:
        close_client(client, own_cluster=not args.scheduler, interrupted=interrupted)
    print(f"{outcome.ran} points run, {outcome.skipped} already finished, {outcome.failed} failed")
    if outcome.complete:
        print(f"wrote {out / 'sweep.nc'} and {out / 'results.csv'}")
    return 0 if outcome.failed == 0 else 1


def handle_plot(args: argparse.Namespace) -> int:
    from astrogate.analysis.sweep import load_sweep
    from astrogate.analysis.sweep_plots import plot_sweep

    spec, dataset, _ = load_sweep(args.sweep_dir)
    out = Path(args.out or Path(args.sweep_dir) / "figures")
    for path in plot_sweep(dataset, out, metrics=args.metric, x=args.x, y=args.y):
        print(f"wrote {path}")
    return 0
