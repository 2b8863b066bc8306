"""astrogate paper: the four figures of Vivet & Arenas (2026) with the paper's protocol.

fig1, fig2, fig3: the soft Hamming error, perplexity and convergence time at t_f = 10 (N = 30, K = 100, 6 flipped
bits, 50 pattern sets per value) against tau_p, tau_x and T, medians with the (5, 95), (10, 90), (20, 80) and
(25, 75) percentile bands. fig4: the mean Hamming error of classical Hopfield, NAAM and the gated model over
K = 2..200 and n = 0..10 flipped bits (N = 20, 50 pattern sets per cell). sigma: fig1's layout with the neural gain
varied (the paper does not state it; the preset uses 3). fig4_baselines: Fig. 4's grid with modern Hopfield and
the dense associative memory (z^3) as extra panels (it reuses fig4's cells in the same DIR). fig4_correlated: the
five models on patterns correlated 0.4 (parent model), every 8th load. all: the paper's four.

Each figure writes DIR/NAME.csv, DIR/NAME.nc, DIR/NAME.png and DIR/NAME.pdf. Every cell is kept in DIR/cells as
it finishes: a run interrupted and started again into the same DIR skips the cells it already has.
"""

from __future__ import annotations

import argparse

FIGURE_CHOICES = ("fig1", "fig2", "fig3", "fig4", "sigma", "fig4_baselines", "fig4_correlated", "all")


def register(subparsers) -> None:
    parser = subparsers.add_parser("paper", help="reproduce the paper's four figures (Vivet & Arenas 2026)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("figure", nargs="?", default="all", choices=FIGURE_CHOICES,
                        help="which figure (default all: fig1 to fig4)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (resumed when it holds cells)")
    parser.add_argument("--quick", action="store_true", help="a few cells and pattern sets: under a minute")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from pathlib import Path

    from astrogate.analysis.paper_figures import paper_figures
    from astrogate.errors import InputError

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} is a file, expected a folder")
    names = "all" if args.figure == "all" else [args.figure]
    results = paper_figures(names, out, quick=args.quick, progress=print)
    for name, result in results.items():
        print(f"{name}: {result['run']} cell(s) run, {result['skipped']} already there, {result['seconds']:.1f} s")
        for path in result["files"]:
            print(f"wrote {path}")
    return 0
