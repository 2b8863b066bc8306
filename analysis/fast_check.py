"""Do the fast settings retrieve what the reference retrieves? Paired, trial by trial (issue 20).

Every cell's patterns and cues are made once; the gated model retrieves them with the reference settings
(forward Euler at the Brian2 clock, float64, stopped at the fixed point) and with the settings under test.
Three sets of cells:
- "quick": the cells of the quick retrieval benchmark (runs/configs/bench_quick.toml, the same patterns and
  cues as `astrogate bench retrieval --quick`), for each of its gated models and each of their tuning
  candidates;
- "hidden": cells the benchmark never draws (their own seed stream), correlated patterns at K/N = 2 and 10,
  48 cues each, N = 64 and 100, flips and masks, the default gated model and fast astrocytes with sharp
  allocation (beta = 80 N, tau_g = 2 ms);
- "similarities": as "hidden" at N = 64, for F linear and power 3 (the full benchmark's other gated models).
Targets (issue 20): in every cell the exact-match counts differ by at most one trial in 48, and over all
cells the fast settings lose at most 0.5 % of the trials the reference retrieves exactly.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np

from astrogate.analysis.benchmark import (
    cell_rng,
    grid_cells,
    load_benchmark_config,
    make_problem,
    pattern_set_N,
    resolve_options,
)
from astrogate.models.abstract import REFERENCE_SETTINGS, RunSettings
from astrogate.models.baselines import make_model

HIDDEN_SEED = 20_2026  # a seed stream of its own: none of these cells is a benchmark cell
HIDDEN_N = (64, 100)
HIDDEN_CORRELATIONS = (0.2, 0.4, 0.6)
HIDDEN_LOADS = (2.0, 10.0)
HIDDEN_CORRUPTIONS = ("flip:0.2", "mask:0.3")
HIDDEN_CUES = 48
# the gated models of the hidden cells: the defaults, and the quick benchmark's other extreme (fast astrocytes,
# sharp allocation)
HIDDEN_VARIANTS = (("gated-default", {"similarity": "quadratic"}),
                   ("gated beta=80N tau_g=2", {"similarity": "quadratic", "beta_times_N": 80.0, "tau_g": 2.0}))
# the targets: per cell at most this share of the trials apart, over all cells at most this share of the
# reference's exact retrievals lost
MAX_CELL_DIFFERENCE = 1 / 48
MAX_LOST_SHARE = 0.005


def gated_variants(config) -> list[tuple[str, dict]]:
    """(name, options) of every gated model of a benchmark config, one per tuning candidate."""
    variants = []
    for m in config.models:
        if m.kind != "gated":
            continue
        keys = sorted(m.tune)
        for values in itertools.product(*(m.tune[k] for k in keys)):
            choice = dict(zip(keys, values))
            label = m.name + "".join(f" {k}={v:g}" for k, v in choice.items())
            variants.append((label, {**m.options, **choice}))
    return variants


def quick_problems(config: str | Path = "quick"):
    """(cell label, patterns, targets, cues) of every cell of the quick benchmark, as it draws them."""
    config = load_benchmark_config(config)
    for spec, load, corruption in grid_cells(config):
        N = pattern_set_N(spec, config)
        K = max(1, int(round(load * N)))
        for instance in range(config.instances):
            rng = cell_rng(config.seed, "cells", spec, load, corruption, instance)
            patterns, targets, cues = make_problem(spec, K, N, config.cues, corruption, rng)
            yield f"{spec} {corruption} K/N={load:g} #{instance}", patterns, targets, cues


def hidden_problems(seed: int = HIDDEN_SEED):
    """Correlated patterns at K/N = 2 and 10, several N, correlations and corruptions, 48 cues a cell."""
    for N, c, load, corruption in itertools.product(HIDDEN_N, HIDDEN_CORRELATIONS, HIDDEN_LOADS, HIDDEN_CORRUPTIONS):
        K = int(round(load * N))
        rng = cell_rng(seed, "hidden", N, c, load, corruption)
        patterns, targets, cues = make_problem(f"corr:{c}", K, N, HIDDEN_CUES, corruption, rng)
        yield f"corr:{c} {corruption} N={N} K/N={load:g}", patterns, targets, cues


# the other similarity functions of the full benchmark (gated-linear, gated-power3) at its tuning extremes
SIMILARITY_VARIANTS = tuple((f"{F} beta={beta:g}N tau_g={tau_g:g}",
                             {"similarity": F, "beta_times_N": beta, "tau_g": tau_g})
                            for F in ("linear", "power:3") for beta in (5.0, 80.0) for tau_g in (2.0, 20.0))


def similarity_problems(seed: int = HIDDEN_SEED):
    """Correlated patterns (c = 0.4, 0.6) at K/N = 2 and 10, N = 64, 20 % flips, 48 cues a cell."""
    for c, load in itertools.product((0.4, 0.6), HIDDEN_LOADS):
        N = 64
        rng = cell_rng(seed, "similarities", N, c, load)
        patterns, targets, cues = make_problem(f"corr:{c}", int(round(load * N)), N, HIDDEN_CUES, "flip:0.2", rng)
        yield f"corr:{c} flip:0.2 N={N} K/N={load:g}", patterns, targets, cues


CELL_SETS = ("quick", "hidden", "similarities")


def exact(states, patterns, targets) -> np.ndarray:
    return np.all(states == patterns[targets], axis=1)


def compare(problems, variants, fast: RunSettings, reference: RunSettings = REFERENCE_SETTINGS,
            reference_cache: dict | None = None) -> list[dict]:
    """One row per (cell, gated variant): trials, exact matches of both, lost and gained trials, seconds.
    reference_cache: a dict that keeps the reference's outcomes between calls (they do not depend on `fast`)."""
    cache = {} if reference_cache is None else reference_cache
    rows = []
    for label, patterns, targets, cues in problems:
        N = patterns.shape[1]
        for name, options in variants:
            options = resolve_options(options, N)
            model = make_model("gated", patterns, **options)
            if (label, name) not in cache:
                cache[label, name] = _outcome(model, reference, patterns, targets, cues)
            ref, ref_seconds, ref_steps = cache[label, name]
            fast_exact, fast_seconds, fast_steps = _outcome(model, fast, patterns, targets, cues)
            rows.append({"cell": label, "model": name, "trials": len(targets),
                         "reference_exact": int(ref.sum()), "fast_exact": int(fast_exact.sum()),
                         "lost": int(np.sum(ref & ~fast_exact)), "gained": int(np.sum(~ref & fast_exact)),
                         "reference_seconds": ref_seconds, "fast_seconds": fast_seconds,
                         "reference_steps": ref_steps, "fast_steps": fast_steps})
    return rows


def _outcome(model, settings: RunSettings, patterns, targets, cues):
    """(exact match per trial, seconds, mean steps) of the gated model with these run settings."""
    model.settings = settings
    start = time.perf_counter()
    result = model.retrieve(cues)
    return exact(result.states, patterns, targets), time.perf_counter() - start, float(np.mean(result.steps))


def verdict(rows: list[dict]) -> dict:
    """The issue's two targets over a set of rows."""
    worst = max(abs(r["fast_exact"] - r["reference_exact"]) / r["trials"] for r in rows)
    retrieved = sum(r["reference_exact"] for r in rows)
    lost = sum(r["lost"] for r in rows)
    return {"rows": len(rows), "trials": sum(r["trials"] for r in rows), "worst_cell_difference": worst,
            "cells_apart": sum(r["fast_exact"] != r["reference_exact"] for r in rows),
            "reference_exact": retrieved, "lost": lost, "gained": sum(r["gained"] for r in rows),
            "lost_share": lost / retrieved if retrieved else 0.0,
            "reference_seconds": sum(r["reference_seconds"] for r in rows),
            "fast_seconds": sum(r["fast_seconds"] for r in rows),
            "met": bool(worst <= MAX_CELL_DIFFERENCE + 1e-12 and (lost / max(retrieved, 1)) <= MAX_LOST_SHARE)}


def run_check(fast: RunSettings, which=CELL_SETS, cache: dict | None = None) -> dict:
    """The cell sets named in `which` (CELL_SETS); {'quick': (rows, verdict), 'hidden': ...}. cache: see compare."""
    from threadpoolctl import threadpool_limits

    sets = {"quick": lambda: (quick_problems(), gated_variants(load_benchmark_config("quick"))),
            "hidden": lambda: (hidden_problems(), HIDDEN_VARIANTS),
            "similarities": lambda: (similarity_problems(), SIMILARITY_VARIANTS)}
    out = {}
    with threadpool_limits(1):  # one BLAS thread: small products, and threads fight over shared cores
        for name in (which,) if isinstance(which, str) else which:
            problems, variants = sets[name]()
            rows = compare(problems, variants, fast, reference_cache=cache)
            out[name] = (rows, verdict(rows))
    return out


def write_check(result: dict, out: str | Path) -> list[Path]:
    """OUT/fast_check.csv (one row per cell and model) and OUT/fast_check.json (the verdicts)."""
    from astrogate.analysis.io import write_csv, write_json

    rows = [{"cells": which, **row} for which, (rows, _) in result.items() for row in rows]
    table = write_csv(rows, Path(out) / "fast_check.csv", float_format=".6g")
    verdicts = write_json(Path(out) / "fast_check.json", {which: verdict for which, (_, verdict) in result.items()})
    return [table, Path(verdicts)]


def report(result: dict) -> str:
    lines = []
    for which, (rows, v) in result.items():
        lines.append(f"{which} cells: {v['rows']} (cell, model) pairs, {v['trials']} trials; the reference retrieves "
                     f"{v['reference_exact']} exactly, the fast settings lose {v['lost']} ({100 * v['lost_share']:.2f} %, "
                     f"target <= {100 * MAX_LOST_SHARE:g} %) and gain {v['gained']}; {v['cells_apart']} pairs apart, "
                     f"the worst by {v['worst_cell_difference']:.3f} of its trials (target <= 1/48 = "
                     f"{MAX_CELL_DIFFERENCE:.3f}); {v['reference_seconds']:.1f} s against {v['fast_seconds']:.1f} s: "
                     f"{'met' if v['met'] else 'NOT met'}")
        for r in rows:
            if r["lost"] or r["gained"]:
                lines.append(f"  {r['cell']}, {r['model']}: reference {r['reference_exact']}/{r['trials']}, "
                             f"fast {r['fast_exact']}/{r['trials']}")
    return "\n".join(lines)
