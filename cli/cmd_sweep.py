"""astrogate sweep and astrogate plot: any study on Dask, and the figures of a sweep."""

from __future__ import annotations

import argparse
from pathlib import Path

from astrogate.cli.options import count


def add_run_folder_options(parser: argparse.ArgumentParser, default_out: str | None = None) -> None:
    """--out, --resume and --force: the options of every command that runs a study into a folder."""
    parser.add_argument("--out", metavar="DIR", default=default_out,
                        help="output folder" + (" (default %(default)s)" if default_out else " (default runs/<name>)"))
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in OUT, skipping its finished points (the same study only)")
    parser.add_argument("--force", action="store_true", help="replace the results of another run in OUT")


def register(subparsers) -> None:
    sweep = subparsers.add_parser(
        "sweep", help="run a study from a TOML spec on a Dask cluster",
        description="Run the points of a study spec (runs/README.md: a sweep, a retrieval benchmark, MQAR, a "
                    "spiking study, the fast-retrieval check) as Dask tasks: on a local cluster of --workers "
                    "processes, or on the scheduler at --scheduler. Each finished point is written to OUT/points "
                    "at once; at the end OUT/results.nc (xarray), OUT/results.csv and the study's own outputs.")
    sweep.add_argument("spec", metavar="SPEC", help="a study spec: a TOML file, or a shipped one by name "
                                                    "(study_load_taug, study_beta_correlation, bench_quick, ...)")
    sweep.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler, e.g. tcp://127.0.0.1:8786")
    sweep.add_argument("--workers", type=count("value"), default=None,
                       help="worker processes of the local cluster (default: one per core)")
    add_run_folder_options(sweep)
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


def run_study_command(study, args: argparse.Namespace, scheduler: str | None = None, workers: int | None = None):
    """Run `study` into args.out (runs/<name> by default) with --resume/--force, printing what runs where and
    what was written; the outcome."""
    out = Path(args.out or Path("runs") / study.name)
    return run_studies_command({out: study}, args, scheduler, workers)[0]


def run_studies_command(studies: dict, args: argparse.Namespace, scheduler: str | None = None,
                        workers: int | None = None) -> list:
    """Run the studies of ``{folder: study}`` one after another into their folders (--resume/--force as in
    args) on one cluster, printing what runs where and what was written; their outcomes. Every check (the
    specs, the folders and their owners) happens before the cluster starts."""
    import contextlib

    from astrogate.analysis.engine import DATASET_FILE, TABLE_FILE, execute, prepare_folder, study_client

    progress = not getattr(args, "no_progress", False)
    outcomes = []
    with contextlib.ExitStack() as held:
        folders = [held.enter_context(prepare_folder(study, out, args.resume, args.force))
                   for out, study in studies.items()]
        client = held.enter_context(study_client(studies.values(), scheduler, workers))
        for (out, study), folder in zip(studies.items(), folders):
            if client is not None:
                n_workers = len(client.scheduler_info()["workers"])
                where = scheduler or f"a local cluster of {n_workers} worker process{'es' if n_workers > 1 else ''}"
                print(f"{study.evaluation} study {study.name!r}: {study.n_points} points "
                      f"({' x '.join(map(str, study.shape)) or '1'}) on {where}; writing to {out}")
            outcome = execute(study, folder, client, progress=progress)
            if outcome.total:  # a speed study has no points: its own loop reported what it measured
                print(f"{outcome.ran} points run, {outcome.skipped} already finished, {outcome.failed} failed")
                if outcome.complete:
                    print(f"wrote {out / DATASET_FILE} and {out / TABLE_FILE}")
            outcomes.append(outcome)
    return outcomes


def handle_sweep(args: argparse.Namespace) -> int:
    from astrogate.analysis.spec import load_study

    study = load_study(args.spec)
    if args.scheduler and args.workers is not None:
        from astrogate.errors import InputError

        raise InputError("--workers applies to the local cluster only; a scheduler brings its own workers")
    outcome = run_study_command(study, args, args.scheduler, args.workers)
    return 0 if outcome.failed == 0 else 1


def handle_plot(args: argparse.Namespace) -> int:
    from astrogate.analysis.engine import load_folder
    from astrogate.analysis.sweep_plots import plot_sweep

    _, dataset, _, damaged = load_folder(args.sweep_dir)
    if damaged:
        print(f"note: {len(damaged)} damaged point file{'s' if len(damaged) > 1 else ''} skipped (counted as not "
              f"finished; --resume runs {'them' if len(damaged) > 1 else 'it'} again): "
              + ", ".join(f"points/{pid}.json" for pid in damaged[:3]) + (", ..." if len(damaged) > 3 else ""))
    out = Path(args.out or Path(args.sweep_dir) / "figures")
    for path in plot_sweep(dataset, out, metrics=args.metric, x=args.x, y=args.y):
        print(f"wrote {path}")
    return 0
