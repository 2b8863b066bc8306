"""astrogate paper: the four figures of Vivet & Arenas (2026) with the paper's protocol.

fig1, fig2, fig3: the soft Hamming error, perplexity and convergence time at t_f = 10 (N = 30, K = 100, 6 flipped
bits, 50 pattern sets per value) against tau_p, tau_x and T, medians with the (5, 95), (10, 90), (20, 80) and
(25, 75) percentile bands. fig4: the mean Hamming error of classical Hopfield, NAAM and the gated model over
K = 2..200 and 0..10 flipped bits (N = 20, 50 pattern sets per cell). sigma: fig1's layout with the neural gain
swept (the paper does not state it; the preset uses 3). fig4_baselines: Fig. 4's grid with modern Hopfield and
the dense associative memory (z^3) as extra panels. fig4_correlated: the five models on patterns correlated 0.4
(parent model), every 8th load. all: the paper's four. claims: the two studies of the claims the figures do not
settle (Fig. 1's slow astrocytes to t_f = 100, about 6 minutes; eq. 12 on the cues of Figs. 1-3), then every claim
of the paper's text tested on the studies in DIR: DIR/claims.csv and DIR/claims.md.

Each figure is a study of the study engine (runs/configs/paper_<figure>.toml; `astrogate sweep paper_fig1` runs
the same) written to DIR/<figure>: points/ (one file per finished point), results.nc (every trial),
results.csv, summary.csv (the figure's table), figure.png and figure.pdf. --resume continues an interrupted run.
"""

from __future__ import annotations

import argparse

from astrogate.cli.cmd_sweep import add_run_folder_options
from astrogate.cli.options import count

FIGURE_CHOICES = ("fig1", "fig2", "fig3", "fig4", "sigma", "fig4_baselines", "fig4_correlated", "all", "claims")


def register(subparsers) -> None:
    parser = subparsers.add_parser("paper", help="reproduce the paper's four figures (Vivet & Arenas 2026)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("figure", nargs="?", default="all", choices=FIGURE_CHOICES,
                        help="which figure (default all: fig1 to fig4)")
    add_run_folder_options(parser, default_out="runs/paper")  # one subfolder per figure
    parser.add_argument("--quick", action="store_true", help="a few points and pattern sets: under a minute")
    parser.add_argument("--workers", type=count("value"), default=None,
                        help="worker processes of the local cluster (default: one per core)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from pathlib import Path

    from astrogate.analysis.paper_claims import write_claims
    from astrogate.analysis.paper_figures import (
        CLAIM_STUDIES,
        FIGURE_FILES,
        PAPER_FIGURES,
        SUMMARY_FILE,
        check_old_folder,
        figure_study,
    )
    from astrogate.cli.cmd_sweep import run_studies_command
    from astrogate.errors import InputError

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} is a file, expected a folder")
    check_old_folder(out)
    names = {"all": PAPER_FIGURES, "claims": CLAIM_STUDIES}.get(args.figure, (args.figure,))
    studies = {out / name: figure_study(name, args.quick) for name in names}  # every study checked before any runs
    outcomes = run_studies_command(studies, args, workers=args.workers)
    status = 0
    for folder, outcome in zip(studies, outcomes):
        if not outcome.complete or outcome.failed:
            status = 1
            continue
        for file in (SUMMARY_FILE, *FIGURE_FILES):
            print(f"wrote {folder / file}")
    if args.figure == "claims" and status == 0:
        for path in write_claims(out):
            print(f"wrote {path}")
    return status
