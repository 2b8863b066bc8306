"""astrogate attention: softmax attention computed by astrocytes routing values; astrogate bench mqar."""

from __future__ import annotations

import argparse

from astrogate.cli.cmd_sweep import add_run_folder_options
from astrogate.cli.options import count, seed_type
from astrogate.models.abstract import TRACE_SAMPLES

# generated arrays' sizes: queries, keys, key and value dimensions (T is the temperature elsewhere, so the
# number of queries is --n-queries)
GENERATED = {"n_queries": 4, "n": 16, "d": 8, "D": 4}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "attention", help="attention of queries over keys and values by the gated network",
        description="Attention of n-queries queries (n-queries x d) over n keys (n x d) and values (n x D), from .npy files or "
                    "generated (Gaussian entries); prints the distance of the outputs and gains to softmax "
                    "attention, optionally writes them. Defaults: query mode, F linear, scale 1/sqrt(d), "
                    "kappa_v 1 (scaled dot-product attention).")
    files = parser.add_argument_group("arrays (.npy files, all three, or generated)")
    files.add_argument("--queries", metavar="Q.npy", help="n-queries x d queries (or one query of length d)")
    files.add_argument("--keys", metavar="K.npy", help="n x d keys")
    files.add_argument("--values", metavar="V.npy", help="n x D values")
    for name, default in GENERATED.items():
        files.add_argument(f"--{name.replace('_', '-')}", type=int, default=default,
                           help=f"generated: {name} (default %(default)s)")
    files.add_argument("--seed", type=seed_type, default=0, help="generated: random seed (default %(default)s)")
    model = parser.add_argument_group("attention")
    model.add_argument("--mode", choices=("query", "retrieval"), default="query",
                       help="query: key rates clamped at the query; retrieval: the key neurons clean the query by "
                            "the gated dynamics first (default %(default)s)")
    model.add_argument("--backend", choices=("abstract", "brian2"), default="abstract",
                       help="the NumPy model or a Brian2 network (query mode) (default %(default)s)")
    model.add_argument("--scale", type=float, default=None,
                       help="softmax scale (beta = scale * d) (default 1/sqrt(d); retrieval mode: the model's beta, docs/model.md)")
    model.add_argument("--similarity", default=None,
                       help="F: linear, quadratic or power:n (default linear; retrieval mode quadratic)")
    model.add_argument("--kappa-v", type=float, default=1.0, help="value coupling (default %(default)s)")
    model.add_argument("--tau-y", type=float, default=10.0, help="value-neuron time constant, ms (default %(default)s)")
    model.add_argument("--duration", type=float, default=None, help="time limit, ms (default 5000 query, 500 retrieval)")
    model.add_argument("--tol", type=float, default=None,
                       help="converged when every rate of change is below tol, 1/ms (default 1e-10 query, 1e-8 retrieval)")
    model.add_argument("--target", default=None, help="Brian2: code objects numpy or cython (default Brian2's)")
    model.add_argument("--layout", default=None, help="Brian2: batched (one group for all queries) or per_query")
    parser.add_argument("--out", metavar="DIR", help="write outputs.npy, gains.npy and summary.json into DIR")
    parser.set_defaults(handler=handle)


def load_or_generate(args: argparse.Namespace):
    import numpy as np

    from astrogate.errors import InputError
    from astrogate.models.patterns import load_array

    given = [args.queries, args.keys, args.values]
    if any(path is not None for path in given):
        if any(path is None for path in given):
            raise InputError("--queries, --keys and --values go together: give all three files, or none to generate")
        return (load_array(args.queries, "queries"), load_array(args.keys, "keys"), load_array(args.values, "values"))
    from astrogate.models.attention import attention_bytes
    from astrogate.machine import require_memory
    from astrogate.models.checks import whole_number

    for name in GENERATED:
        whole_number(getattr(args, name), f"--{name.replace('_', '-')}", minimum=1)

    # the three arrays, and the run with its traces (checked again by the run, with its own duration)
    require_memory(attention_bytes(args.n_queries, args.n, args.d, args.D, TRACE_SAMPLES),
                   f"attention of {args.n_queries} queries over n = {args.n} keys (d = {args.d}, D = {args.D})")
    rng = np.random.default_rng(args.seed)
    return (rng.normal(size=(args.n_queries, args.d)), rng.normal(size=(args.n, args.d)), rng.normal(size=(args.n, args.D)))


def handle(args: argparse.Namespace) -> int:
    from astrogate.analysis.attention import attention
    from astrogate.errors import InputError

    Q, K, V = load_or_generate(args)
    brian2_only = {"--target": args.target, "--layout": args.layout}
    if args.backend != "brian2" and any(value is not None for value in brian2_only.values()):
        flags = ", ".join(flag for flag, value in brian2_only.items() if value is not None)
        raise InputError(f"{flags}: for --backend brian2 only")
    options = {}
    if args.backend == "brian2":
        from astrogate.network.devices import quiet_brian2

        quiet_brian2()
        options = {"target": args.target, "layout": args.layout or "batched"}
    from contextlib import nullcontext

    from astrogate.analysis.folder import RunFolder

    with RunFolder.open(args.out) if args.out else nullcontext() as folder:  # writable and ours before the run
        result = attention(Q, K, V, mode=args.mode, backend=args.backend, scale=args.scale,
                           similarity=args.similarity, kappa_v=args.kappa_v, tau_y=args.tau_y, duration=args.duration,
                           tol=args.tol, **options)
        print(result.summary())
        if folder is not None:
            for name in write_result(result, folder):
                print(f"wrote {folder.path / name}")
    return 0


def write_result(result, folder) -> list[str]:
    """outputs.npy, gains.npy and summary.json, moved into the held folder together; their names."""
    import numpy as np

    from astrogate.analysis.io import write_json
    from astrogate.files import write_output

    names = ["outputs.npy", "gains.npy", "summary.json"]
    with folder.staged() as stage:
        for name, array in zip(names, (result.outputs, result.gains)):
            write_output(stage / name, f"{name[:-4]} array",
                         lambda fh, array=array: np.save(fh, array, allow_pickle=False), binary=True)
        summary = {"mode": result.mode, "backend": result.backend, "similarity": result.similarity,
                   "scale": result.scale, "beta": result.beta, "output_distance": result.output_distance,
                   "gain_distance": result.gain_distance, "converged": result.converged,
                   "runtime_seconds": result.runtime_seconds}
        write_json(stage / "summary.json", summary)
    return names


# -- astrogate bench mqar ------------------------------------------------------------------------------
def register_mqar(benchmarks) -> None:
    parser = benchmarks.add_parser(
        "mqar", help="multi-query associative recall: softmax, linear, gated query/retrieval, modern Hopfield",
        description="Multi-query associative recall (Arora et al. 2023) on random embeddings, every mechanism on "
                    "the same sequences: accuracy and exact recall with Wilson 95 %% intervals against the number "
                    "of pairs, per (key correlation, query noise); writes results.csv, summary.json, table.md and "
                    "mqar_accuracy_vs_load.png.")
    parser.add_argument("--quick", action="store_true", help="the small grid (seconds; runs/configs/mqar_quick.toml)")
    add_run_folder_options(parser, "runs/mqar")
    parser.add_argument("--workers", type=count("value"), default=None,
                        help="worker processes of the local cluster (default: one per core)")
    parser.add_argument("--loads", default=None, metavar="N,N,...", help="pairs per sequence (default 8,...,256)")
    parser.add_argument("--sequences", type=count("sequences"), default=None, help="sequences per cell (default 8)")
    parser.add_argument("--queries", type=count("queries"), default=None, help="queries per sequence (default 16)")
    parser.add_argument("--d", type=count("d"), default=None, help="key width (default 64)")
    parser.add_argument("--D", type=count("D"), default=None, help="value width (default 64)")
    parser.add_argument("--seed", type=seed_type, default=None, help="random seed (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--replot", metavar="DIR", help="redraw table.md and the figure from DIR/results.csv; run nothing")
    parser.set_defaults(handler=handle_mqar)


def parse_loads(text: str | None):
    from astrogate.errors import InputError

    if text is None:
        return None
    from astrogate.models.checks import comma_list

    try:
        loads = tuple(int(part) for part in comma_list(text, "--loads"))
    except ValueError:
        raise InputError(f"--loads: expected whole numbers separated by commas, got {text!r}") from None
    return loads


def handle_mqar(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from astrogate.analysis.mqar import mqar_study, replot
    from astrogate.cli.cmd_sweep import run_study_command
    from astrogate.files import read_text

    if args.replot:
        print("wrote " + ", ".join(str(path) for path in replot(args.replot)))
        return 0
    study = mqar_study(args.quick, loads=parse_loads(args.loads), sequences=args.sequences, queries=args.queries,
                       d=args.d, D=args.D, seed=args.seed)
    outcome = run_study_command(study, args, workers=args.workers)
    if not outcome.complete:
        return 1
    out = Path(args.out)
    summary = json.loads(read_text(out / "summary.json", "MQAR summary"))
    rows = len(study.settings["methods"]) * study.n_points
    print(f"MQAR: {rows} cells in {summary['runtime_seconds']:.1f} s; gated query mode within "
          f"{summary['gated_query_max_distance_to_softmax']:.1e} of softmax attention; wrote "
          + ", ".join(str(out / name) for name in ("results.csv", "results.nc", "summary.json", "table.md",
                                                   "mqar_accuracy_vs_load.png")))
    return 0 if outcome.failed == 0 else 1
