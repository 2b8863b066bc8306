"""astrogate bench speed: every simulator per time step against the two-mat-vec limit.

`register_speed(bench_subparsers)` adds `speed` to the `astrogate bench` group (cli/cmd_bench.py).
"""

from __future__ import annotations

import argparse

from astrogate.cli.options import count, positive_float


def register_speed(bench_subparsers) -> None:
    from astrogate.analysis.speed import SIMULATORS

    parser = bench_subparsers.add_parser(
        "speed", help="time per step of every simulator against the two-mat-vec limit",
        description="Times the NumPy reference, the batched abstract model, Brian2 runtime (cython), "
                    "cpp_standalone (1 and 2 threads, float32 weights, wired gating), cuda_standalone "
                    "(factorised and wired gating) where a GPU is present and the NAAM baseline (O(N^2 K)), "
                    "against the two dense mat-vec products of a step alone (on the GPU too), and the time per "
                    "retrieved cue of the gated model (reference and fast settings) against iterated modern "
                    "Hopfield (B cues at once, its own sizes); writes OUT/speed.csv, OUT/speed_retrieval.csv, "
                    "OUT/speed.json and OUT/speed.png and prints the ratios and the targets.")
    preset = parser.add_mutually_exclusive_group()
    preset.add_argument("--quick", action="store_true",
                        help="small sizes and one cpp_standalone build (minutes; for CI)")
    preset.add_argument("--targets", action="store_true",
                        help="only N = 10^4, K = 10^3 and the rows the targets are computed from (CPU and GPU "
                             "limits, batched model, cpp_standalone and cuda_standalone with factorised and wired "
                             "gating); for a machine lent for minutes")
    preset.add_argument("--replot", metavar="DIR",
                        help="measure nothing: re-draw DIR/speed.png from DIR/speed.csv and print the table and "
                             "the targets")
    preset.add_argument("--config", metavar="SPEC",
                        help="a speed study in the study schema (runs/configs/speed_quick.toml); the options below "
                             "do not apply")
    parser.add_argument("--out", metavar="DIR", default="runs/speed", help="output folder (default %(default)s)")
    parser.add_argument("--force", action="store_true", help="replace the results of another run in OUT")
    parser.add_argument("--sizes", metavar="N:K,...", help="sizes instead of the preset's, e.g. 1000:100,3000:300")
    parser.add_argument("--retrieval-sizes", metavar="N:K,...",
                        help="sizes of the retrieval rows instead of the preset's (default 1000:1000,10000:1000)")
    parser.add_argument("--simulators", metavar="NAME,...",
                        help=f"measure only these (the limit always): {','.join(SIMULATORS)}")
    parser.add_argument("--repeats", type=count("value"), help="timed repeats per measurement (median taken)")
    parser.add_argument("--memory-cap-gb", type=positive_float("value"), help="sizes estimated above this are reported, not run "
                                                            "(default 8)")
    parser.add_argument("--naam-time-cap-s", type=positive_float("value"), metavar="S",
                        help="NAAM sizes whose measurement is estimated to take longer are reported, not run "
                             "(default 300)")
    parser.add_argument("--build-dir", metavar="DIR", help="keep the standalone builds in DIR")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from astrogate.analysis.speed import parse_simulators, parse_sizes, replot, report, run_speed_benchmark
    from astrogate.errors import InputError

    if args.replot:
        given = [flag for flag, value in (("--sizes", args.sizes), ("--simulators", args.simulators),
                                          ("--retrieval-sizes", args.retrieval_sizes),
                                          ("--repeats", args.repeats), ("--memory-cap-gb", args.memory_cap_gb),
                                          ("--naam-time-cap-s", args.naam_time_cap_s),
                                          ("--build-dir", args.build_dir), ("--force", args.force or None))
                 if value is not None]
        if given:
            raise InputError(f"--replot measures nothing: {', '.join(given)} do not apply")
        print(report(replot(args.replot)))
        print(f"wrote {args.replot}/speed.png")
        return 0
    from astrogate.analysis.engine import prepare_folder
    from astrogate.analysis.speed.study import speed_config, speed_study

    options = {"--sizes": args.sizes, "--simulators": args.simulators, "--retrieval-sizes": args.retrieval_sizes,
               "--repeats": args.repeats, "--memory-cap-gb": args.memory_cap_gb,
               "--naam-time-cap-s": args.naam_time_cap_s, "--build-dir": args.build_dir}
    if args.config:
        from astrogate.analysis.spec import load_study

        given = [flag for flag, value in options.items() if value is not None]
        if given:
            raise InputError(f"--config gives the whole benchmark: {', '.join(given)} do not apply")
        study = load_study(args.config)
        if study.evaluation != "speed":
            raise InputError(f"{args.config}: a study of evaluation {study.evaluation!r}, not a speed benchmark")
    else:
        study = speed_study("quick" if args.quick else "targets" if args.targets else "full",
                            sizes=parse_sizes(args.sizes) if args.sizes is not None else None,
                            simulators=list(parse_simulators(args.simulators)) if args.simulators is not None else None,
                            retrieval_sizes=[list(s) for s in parse_sizes(args.retrieval_sizes)]
                            if args.retrieval_sizes is not None else None,
                            repeats=args.repeats, memory_cap_gb=args.memory_cap_gb,
                            naam_time_cap_s=args.naam_time_cap_s, build_root=args.build_dir)
    config = speed_config(study)  # every value checked before the folder is taken
    with prepare_folder(study, args.out, force=args.force) as folder:
        result = run_speed_benchmark(config, folder.path)
    print(report(result))
    print(f"wrote {args.out}/speed.csv, speed.json, speed.png")
    return 0
