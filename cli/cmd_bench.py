"""astrogate bench: benchmarks. Each benchmark is a sub-subcommand registered in BENCHMARKS below."""

from __future__ import annotations

import argparse

from astrogate.cli.cmd_sweep import add_run_folder_options
from astrogate.cli.options import count


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="benchmarks (retrieval, speed, mqar, fast-check)", description=__doc__)
    benchmarks = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for register_benchmark in BENCHMARKS:
        register_benchmark(benchmarks)


def register_retrieval(benchmarks) -> None:
    parser = benchmarks.add_parser(
        "retrieval", help="retrieval accuracy vs load and interference, every model on the same cues",
        description="Run every model on the same patterns and cues over a grid of pattern sets, loads and "
                    "corruptions (each cell a point of a study, on Dask); write results.csv, results.nc, "
                    "tuning.json, summary.json and figures.")
    parser.add_argument("--config", metavar="FILE.toml",
                        help="benchmark study (default: the shipped full grid, runs/configs/bench_full.toml; "
                             "the small one, bench_quick.toml, with --quick); `astrogate sweep FILE.toml` runs it too")
    parser.add_argument("--quick", action="store_true", help="the small grid (under two minutes on 2 cores)")
    add_run_folder_options(parser, "runs/bench")
    parser.add_argument("--workers", type=count("value"), default=1,
                        help="processes running cells in parallel, at most one per core (default 1)")
    parser.add_argument("--models", metavar="NAME,NAME",
                        help="run only these models of the config (comma-separated; a model's params_from must be "
                             "among them), for example the gated variants without NAAM")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=handle_retrieval)


def register_speed(benchmarks) -> None:
    from astrogate.cli.cmd_bench_speed import register_speed as register

    register(benchmarks)


def register_mqar(benchmarks) -> None:
    from astrogate.cli.cmd_attention import register_mqar as register

    register(benchmarks)


def register_fast_check(benchmarks) -> None:
    from astrogate.cli.cmd_bench_fast_check import register_fast_check as register

    register(benchmarks)


BENCHMARKS = (register_retrieval, register_speed, register_mqar, register_fast_check)


def handle_retrieval(args: argparse.Namespace) -> int:
    from astrogate.analysis.benchmark import load_benchmark_config, run_benchmark, select_models
    from astrogate.models.checks import comma_list

    config = load_benchmark_config(args.config or ("quick" if args.quick else "full"))
    if args.models:
        config = select_models(config, comma_list(args.models, "--models"))
    result = run_benchmark(config, args.out, workers=args.workers, show_progress=not args.no_progress,
                           resume=args.resume, force=args.force)
    summary = result["summary"]
    print(f"{summary['cells']} cells in {summary['runtime_seconds']:.0f} s; wrote "
          + ", ".join(str(result["out"] / name) for name in summary["outputs"] + summary["figures"]))
    for line in summary["cost_caps"]:
        print(f"  cost cap: {line}")
    return 0
