"""astrogate recall: retrieve one pattern."""

from __future__ import annotations

import argparse

from astrogate.cli.options import (
    add_brian2_options,
    add_model_options,
    add_preset_option,
    add_problem_options,
    add_run_options,
    brian2_options_from_args,
    check_outputs,
    params_and_preset,
    problem_from_args,
    run_options_from_args,
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "recall",
        help="retrieve one pattern from a cue",
        description="Retrieve one pattern: patterns and cue from .npy files or generated; prints a summary, "
                    "optionally writes the full result as JSON and a figure of overlaps, gains and L over time.",
    )
    add_preset_option(parser)
    add_problem_options(parser)
    add_model_options(parser)
    add_run_options(parser)
    parser.add_argument("--backend", choices=("abstract", "brian2"), default="abstract",
                        help="the NumPy model or a Brian2 network (default %(default)s)")
    add_brian2_options(parser)
    parser.add_argument("--build-only", metavar="DIR",
                        help="standalone devices: generate and compile the project in a fresh subfolder of DIR "
                             "and stop (for cuda_standalone on a machine without a GPU)")
    parser.add_argument("--json", metavar="PATH", help="write the result (v, g, m, t, energy, ...) as JSON")
    parser.add_argument("--plot", metavar="PATH.png", help="write overlaps, gains and L over time")
    parser.add_argument("--raster", metavar="PATH.png",
                        help="spiking neurons: write the gains and rate-coded overlaps above a spike raster")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from astrogate.analysis.io import write_json
    from astrogate.analysis.recall import recall, summary

    check_outputs(args)
    params, preset = params_and_preset(args)
    run = run_options_from_args(args, preset)
    brian2_options = brian2_options_from_args(args, args.backend)
    if args.raster and "spiking" not in brian2_options:
        from astrogate.errors import InputError

        raise InputError("--raster needs spiking neurons (--backend brian2 --neuron poisson or lif)")
    problem = problem_from_args(args)
    if args.build_only is not None:
        return build_only(args, problem, params, brian2_options, run)
    form = run.pop("form")
    if form != "logit":  # the default; the brian2 backend refuses any other
        brian2_options["form"] = form
    result = recall(problem, params, backend=args.backend, **run, **brian2_options)
    print(summary(result))
    if args.backend == "brian2":
        timings = result["timings"]
        print(f"Brian2 {result['brian2']['device']}: build {timings['build_seconds']:.2f} s, "
              f"run {timings['run_seconds']:.2f} s (runs the full duration; tol judges the end state)")
        if "spiking" in result["brian2"]:
            spikes = result["brian2"]["spiking"]
            print(f"{result['brian2']['neuron']} neurons ({spikes['params']['readout']} readout, nu_max "
                  f"{spikes['params']['nu_max']:g} Hz, tau_r {spikes['params']['tau_r']:g} ms): mean rate "
                  f"{spikes['mean_rate_hz']:.1f} Hz; rate-coded gains vs softmax(beta F(m_hat)), second half: "
                  f"mean max|difference| {spikes['mean_softmax_residual']:.2e}")
        if result["brian2"]["build_dir"]:
            print(f"standalone project kept in {result['brian2']['build_dir']}")
    if args.json:
        print(f"wrote {write_json(args.json, result)}")
    if args.plot:
        from astrogate.analysis.plots import plot_recall

        print(f"wrote {plot_recall(result, args.plot)}")
    if args.raster:
        from astrogate.analysis.spiking import plot_raster_and_gains

        print(f"wrote {plot_raster_and_gains(result, args.raster)}")
    return 0


def build_only(args: argparse.Namespace, problem, params, brian2_options: dict, run: dict) -> int:
    from astrogate.errors import InputError
    from astrogate.network.cuda import detect_compute_capability
    from astrogate.network.recall import build_brian2_project

    if args.backend != "brian2":
        raise InputError("--build-only needs --backend brian2 and a standalone --device")
    unused = set(brian2_options) - {"device", "gating", "compute_capability", "neuron", "spiking"}
    if unused:
        raise InputError(f"--build-only builds a project in its own folder: drop {', '.join(sorted(unused))}")
    info = build_brian2_project(problem, params, args.build_only, duration=run["duration"],
                                device=brian2_options.get("device", "runtime"),
                                gating=brian2_options.get("gating", "factorised"),
                                neuron=brian2_options.get("neuron", "rate"), spiking=brian2_options.get("spiking"),
                                compute_capability=brian2_options.get("compute_capability"))
    what = f"{info['device']} project (compute capability {info['compute_capability']})" \
        if info["device"] == "cuda_standalone" else f"{info['device']} project"
    print(f"generated and compiled the {what} in {info['project']} ({info['build_seconds']:.1f} s); binary {info['binary']}")
    if info["device"] == "cuda_standalone" and detect_compute_capability() is None:
        print("no NVIDIA GPU on this machine: the CUDA project was not run. On a machine with a GPU, run "
              "`astrogate recall --backend brian2 --device cuda_standalone ...` without --build-only.")
    else:
        print("not run (--build-only)")
    return 0
