"""The four figures of Vivet & Arenas (2026) reproduced with their protocol (Sec. II.3, appendix .5).

- fig1, fig2, fig3: N = 30, K = 100, the target with n = 6 flipped bits, x(0) = the cue, p(0) = 1/K, the paper's
  preset (T = 0.01, tau_x = tau_p = 1, sigma = 3: not stated in the paper) with one parameter varied (tau_p, tau_x,
  T); per value 50 pattern sets; at t_f = 10 the soft Hamming error (eq. 13), the perplexity (eq. 14) and the
  convergence time; medians with the percentile bands BANDS. dt = 0.001, 0.05 alpha where alpha <= 0.01.
- fig4: N = 20, K = 2..200, n = 0..10 flipped bits, 50 pattern sets per cell: the mean Hamming error (eq. 15) of
  sign(x(t_f)) for classical Hopfield, NAAM and the gated model, from the same cues, to the same t_f.
- sigma (beyond the paper): the dynamics figure with sigma varied.

Every cell (one parameter value, or one model at one load K) is written to DIR/cells/<figure>/ as it finishes;
a rerun into the same DIR skips the cells already there, and `assemble` makes DIR/<figure>.csv and .nc from the
cell files. The paper smooths its bands with a Gaussian filter for display; these figures do not (the drawn
values are the data's).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from astrogate.analysis.metrics import hamming_error, perplexity, soft_hamming_error
from astrogate.analysis.paper_numerics import (
    FIG4_DT,
    cue_generator,
    flipped_cues,
    integrate_gated,
    integrate_hopfield,
    integrate_naam,
    discrete_baseline_states,
    naam_states,
    paper_dt,
    paper_parameters,
    pattern_sets,
)
from astrogate.errors import InputError

BANDS = ((5, 95), (10, 90), (20, 80), (25, 75))
DYNAMICS_OBSERVABLES = ("soft_hamming_error", "perplexity", "convergence_time", "hamming_error")
FIG4_MODELS = ("hopfield", "naam", "gated")
# beyond the paper: modern Hopfield and the dense associative memory (n = 3) on Fig. 4's grid
EXTRA_MODELS = ("modern", "dam3")
MODEL_TITLES = {"hopfield": "classical Hopfield (eq. 12)", "naam": "NAAM (Kozachkov et al.)",
                "gated": "astrocyte-gated", "modern": "modern Hopfield (iterated)",
                "dam3": "dense associative memory, $z^3$"}
HORIZON = 10.0  # t_f of every figure (appendix .5: 10 / dt steps)
FIGURES = ("fig1", "fig2", "fig3", "fig4", "sigma", "fig4_baselines", "fig4_correlated")
GRIDS = ("fig4", "fig4_baselines", "fig4_correlated")  # the figures of Fig. 4's kind (heat maps over K and n)
CORRELATION = 0.4  # fig4_correlated: the parent model's correlation (models.patterns.random_patterns)
PAPER_FIGURES = ("fig1", "fig2", "fig3", "fig4")
VARIED = {"fig1": "tau_p", "fig2": "tau_x", "fig3": "T", "sigma": "sigma"}
# Fig. 4's float type per model: float32 only where it gives float64's Hamming errors. NAAM: the same in every
# trial compared. Eq. 12 and the gated model: not at K = 2, where a cue with no net overlap with the two
# patterns decays toward the saddle x = 0 (to |x| ~ e^-10 at t_f); float32's rounding grows along its unstable
# directions to O(1) within t_f and picks a sign, float64's does not (docs/results/paper_figures.md).
FIG4_DTYPES = {"gated": "float64", "hopfield": "float64", "naam": "float32"}


@dataclass(frozen=True)
class FigureSpec:
    """One figure's grid: the varied values (dynamics figures) or loads K and flips (fig4)."""

    name: str
    N: int
    sets: int
    values: tuple = ()  # dynamics: the varied parameter's values
    K: tuple = ()  # fig4: loads; dynamics: (K,)
    flips: tuple = ()  # fig4: flipped bits; dynamics: (n,)
    horizon: float = HORIZON
    seed: int = 0
    models: tuple = field(default=FIG4_MODELS)
    correlation: float = 0.0  # fig4 grids: the patterns' parent-model correlation
    cells: str = ""  # the folder of its cells under DIR/cells (default: the name); grids that share one share cells


def figure_spec(name: str, quick: bool = False) -> FigureSpec:
    """The paper's grid for a figure, or the quick grid (--quick: a few cells, under a minute for all)."""
    if name not in FIGURES:
        raise InputError(f"unknown figure {name!r}: use {', '.join(FIGURES)}")
    if name in GRIDS:
        grid = dict(N=20, sets=6, K=(2, 20, 200), flips=(0, 4, 10)) if quick else \
            dict(N=20, sets=50, K=tuple(range(2, 201, 2)), flips=tuple(range(11)))
        if name == "fig4":
            return FigureSpec(name, **grid)
        if name == "fig4_baselines":  # Fig. 4's cells (shared) and the two extra models
            return FigureSpec(name, models=FIG4_MODELS + EXTRA_MODELS, cells="fig4", **grid)
        if not quick:  # the correlated grid at every 8th load (25 of Fig. 4's 100)
            grid["K"] = tuple(range(2, 201, 8))
        return FigureSpec(name, models=FIG4_MODELS + EXTRA_MODELS, correlation=CORRELATION, **grid)
    parameter = VARIED[name]
    if quick:
        values = {"tau_p": (0.1, 1.0, 10.0, 100.0), "tau_x": (0.1, 1.0, 10.0, 100.0),
                  "T": (0.03, 0.3, 3.0, 30.0), "sigma": (1.0, 3.0, 10.0)}[parameter]
        sets = 6
    else:
        values = {"tau_p": np.geomspace(1e-3, 1e3, 25), "tau_x": np.geomspace(1e-3, 1e3, 25),
                  "T": np.geomspace(1e-4, 1e2, 25), "sigma": np.geomspace(0.1, 100.0, 13)}[parameter]
        sets = 50
    return FigureSpec(name, N=30, sets=sets, values=tuple(float(v) for v in values), K=(100,), flips=(6,))


# -- cells -----------------------------------------------------------------------------------------------
def _cell_path(out: Path, spec: FigureSpec, key: str) -> Path:
    return out / "cells" / (spec.cells or spec.name) / f"{key}.npz"


def _value_key(parameter: str, value: float) -> str:
    return f"{parameter}_{value:.6e}"


def _save_cell(path: Path, **arrays) -> None:
    """np.savez to a temporary name, then renamed: an interrupted run never leaves a half-written cell."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.stem + ".partial.npz")
    np.savez(partial, **arrays)
    partial.replace(path)


def dynamics_cell(spec: FigureSpec, value: float) -> dict:
    """One value of a dynamics figure: per-trial observables over spec.sets pattern sets (arrays (sets,))."""
    parameter = VARIED[spec.name]
    K, flips = spec.K[0], spec.flips[0]
    xi = pattern_sets(spec.N, K, spec.sets, spec.seed)
    cues = flipped_cues(xi[:, 0], flips, cue_generator(spec.seed, spec.N, K, flips))
    params = paper_parameters(**{parameter: value})
    dt = paper_dt(parameter, value)
    start = time.perf_counter()
    run = integrate_gated(xi, cues, params, dt, spec.horizon)
    seconds = time.perf_counter() - start
    rates = np.tanh(params["sigma"] * run["x"])
    return {
        "soft_hamming_error": soft_hamming_error(rates, xi[:, 0]),
        "hamming_error": hamming_error(run["x"], xi[:, 0]),
        "perplexity": perplexity(run["p"]),
        "convergence_time": run["convergence_time"],
        "dt": np.float64(dt), "steps": np.int64(run["steps"].max()), "seconds": np.float64(seconds),
    }


def fig4_trials(spec: FigureSpec, K: int) -> tuple[np.ndarray, np.ndarray]:
    """A grid cell's pattern sets (sets, K, N) and cues (sets, flips, N): pattern 0 of each set with n bits
    flipped for each n of spec.flips (the same for every model)."""
    xi = pattern_sets(spec.N, K, spec.sets, spec.seed, spec.correlation)
    rng = cue_generator(spec.seed, spec.N, K, 0)
    return xi, np.stack([flipped_cues(xi[:, 0], n, rng) for n in spec.flips], axis=1)


def fig4_cell(spec: FigureSpec, model: str, K: int, dtype: str | None = None) -> dict:
    """One model at one load: Hamming errors (flips, sets) of sign(x(t_f)), the same cues for every model. The
    cues of one pattern set (its spec.flips corruptions) are integrated together (one matrix product per set)."""
    xi, cues = fig4_trials(spec, K)
    dtype = dtype or FIG4_DTYPES.get(model, "float64")
    params = paper_parameters()
    dt = FIG4_DT
    start = time.perf_counter()
    steps = np.zeros(cues.shape[:2])
    if model == "gated":
        run = integrate_gated(xi, cues, params, dt, spec.horizon, stop="decided", dtype=dtype)
        states, steps = run["x"], run["steps"]
    elif model == "hopfield":
        states = integrate_hopfield(xi, cues, params["tau_x"], params["sigma"], dt, spec.horizon, dtype=dtype)
    elif model == "naam":
        states = naam_states(integrate_naam(xi, cues, spec.horizon, dtype=dtype))
    elif model in EXTRA_MODELS:
        states = discrete_baseline_states(model, xi, cues)
    else:
        raise InputError(f"unknown model {model!r}: use {', '.join(FIG4_MODELS + EXTRA_MODELS)}")
    seconds = time.perf_counter() - start
    undefined = ~np.isfinite(states).all(axis=-1) | np.all(states == 0, axis=-1)
    return {"hamming_error": hamming_error(states, xi[:, None, 0]).T, "steps": steps.T, "undefined": undefined.T,
            "seconds": np.float64(seconds)}


def _cells(spec: FigureSpec) -> list[tuple[str, tuple]]:
    if spec.name in GRIDS:
        return [(f"{model}_K{K:03d}", (model, K)) for K in spec.K for model in spec.models]
    return [(_value_key(VARIED[spec.name], v), (v,)) for v in spec.values]


def _run_order(spec: FigureSpec) -> list[tuple[str, tuple]]:
    """The cells in the order they are computed: the cheapest step first (dynamics figures); for fig4 every 8th
    load, then every 4th, 2nd and the rest, so that a run stopped early leaves a regular coarser grid."""
    cells = _cells(spec)
    if spec.name in GRIDS:
        index = {K: i for i, K in enumerate(spec.K)}

        def level(cell):
            i = index[cell[1][1]]
            return next(lv for lv, step in enumerate((8, 4, 2, 1)) if i % step == 0)

        return sorted(cells, key=lambda cell: (level(cell), index[cell[1][1]]))
    return sorted(cells, key=lambda cell: -paper_dt(VARIED[spec.name], cell[1][0]))


def compute(spec: FigureSpec, out, progress=None) -> dict:
    """Run the cells of `spec` that DIR/cells does not hold yet, writing each as it finishes; returns counts
    {"run": ..., "skipped": ..., "seconds": ...}."""
    out = Path(out)
    ran = skipped = 0
    start = time.perf_counter()
    for key, args in _run_order(spec):
        path = _cell_path(out, spec, key)
        if path.exists():
            skipped += 1
            continue
        cell = fig4_cell(spec, *args) if spec.name in GRIDS else dynamics_cell(spec, *args)
        _save_cell(path, **cell)
        ran += 1
        if progress:
            progress(f"{spec.name} {key}: {float(cell['seconds']):.1f} s")
    return {"run": ran, "skipped": skipped, "seconds": time.perf_counter() - start}


# -- tables ----------------------------------------------------------------------------------------------
def band_statistics(values) -> dict:
    """Median, mean and the percentiles of BANDS (NumPy's linear interpolation) over the last axis."""
    values = np.asarray(values, float)
    stats = {"median": np.median(values, axis=-1), "mean": np.mean(values, axis=-1)}
    for lo, hi in BANDS:
        stats[f"p{lo}"], stats[f"p{hi}"] = np.percentile(values, [lo, hi], axis=-1)
    return stats


def assemble(spec: FigureSpec, out):
    """The cell files of a figure as an xarray Dataset (per trial) and a pandas table (one row per model and
    cell with every observable), written as DIR/<figure>.nc and DIR/<figure>.csv. Missing cells are an
    InputError naming them (run `compute` first)."""
    import pandas as pd
    import xarray as xr

    from astrogate.analysis.io import write_netcdf, write_table

    out = Path(out)
    missing = [key for key, _ in _cells(spec) if not _cell_path(out, spec, key).exists()]
    if missing:
        raise InputError(f"{out}: {len(missing)} cell(s) of {spec.name} not computed yet (first: {missing[0]}); "
                         f"run the figure into this folder")
    cells = {key: dict(np.load(_cell_path(out, spec, key))) for key, _ in _cells(spec)}
    params = paper_parameters()
    if spec.name in GRIDS:
        errors = np.array([[cells[f"{m}_K{K:03d}"]["hamming_error"] for K in spec.K] for m in spec.models])
        seconds = np.array([[float(cells[f"{m}_K{K:03d}"]["seconds"]) for K in spec.K] for m in spec.models])
        dataset = xr.Dataset(
            {"hamming_error": (("model", "K", "n", "set"), errors),
             "seconds": (("model", "K"), seconds)},
            coords={"model": list(spec.models), "K": list(spec.K), "n": list(spec.flips), "set": np.arange(spec.sets)},
            attrs={"N": spec.N, "t_f": spec.horizon, "sigma": params["sigma"], "T": params["T"],
                   "correlation": spec.correlation,
                   "tau_p": params["tau_p"], "tau_x": params["tau_x"], "dt": FIG4_DT})
        rows = []
        for i, model in enumerate(spec.models):
            for j, K in enumerate(spec.K):
                for k, n in enumerate(spec.flips):
                    trial = errors[i, j, k]
                    rows.append({"model": model, "N": spec.N, "K": K, "n": n, "sets": spec.sets,
                                 "sigma": params["sigma"], "t_f": spec.horizon, "correlation": spec.correlation,
                                 "mean_hamming_error": float(np.mean(trial)),
                                 "median_hamming_error": float(np.median(trial)),
                                 "exact_fraction": float(np.mean(trial == 0))})
        table = pd.DataFrame(rows)
    else:
        parameter = VARIED[spec.name]
        keys = [_value_key(parameter, v) for v in spec.values]
        data = {obs: (("value", "set"), np.array([cells[k][obs] for k in keys])) for obs in DYNAMICS_OBSERVABLES}
        data["dt"] = (("value",), np.array([float(cells[k]["dt"]) for k in keys]))
        data["steps"] = (("value",), np.array([int(cells[k]["steps"]) for k in keys]))
        data["seconds"] = (("value",), np.array([float(cells[k]["seconds"]) for k in keys]))
        dataset = xr.Dataset(data, coords={"value": list(spec.values), "set": np.arange(spec.sets)},
                             attrs={"parameter": parameter, "N": spec.N, "K": spec.K[0], "n": spec.flips[0],
                                    "t_f": spec.horizon, **{f"preset_{k}": v for k, v in params.items()}})
        rows = []
        for i, value in enumerate(spec.values):
            row = {"figure": spec.name, "parameter": parameter, "value": value, "N": spec.N, "K": spec.K[0],
                   "n": spec.flips[0], "sets": spec.sets, "t_f": spec.horizon,
                   "dt": float(data["dt"][1][i]), "steps": int(data["steps"][1][i])}
            for obs in DYNAMICS_OBSERVABLES:
                for stat, v in band_statistics(data[obs][1][i]).items():
                    row[f"{obs}_{stat}"] = float(v)
            rows.append(row)
        table = pd.DataFrame(rows)
    write_netcdf(out / f"{spec.name}.nc", dataset)
    write_table(out / f"{spec.name}.csv", table)
    return dataset, table


# -- figures ---------------------------------------------------------------------------------------------
OBSERVABLE_LABELS = {"soft_hamming_error": "soft Hamming error (eq. 13)", "perplexity": "perplexity (eq. 14)",
                     "convergence_time": "convergence time", "hamming_error": "Hamming error (eq. 15)"}
PARAMETER_LABELS = {"tau_p": r"$\tau_p$", "tau_x": r"$\tau_x$", "T": r"$T$", "sigma": r"$\sigma$"}


def draw_dynamics(table, parameter: str):
    """Medians (lines) with the percentile bands (shaded, widest palest) of the soft Hamming error, the
    perplexity and the convergence time against the varied parameter (log axis). Returns the Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.3), constrained_layout=True)
    x = table["value"].to_numpy()
    for ax, obs in zip(axes, DYNAMICS_OBSERVABLES[:3]):
        for (lo, hi), alpha in zip(BANDS, (0.15, 0.22, 0.3, 0.4)):
            ax.fill_between(x, table[f"{obs}_p{lo}"], table[f"{obs}_p{hi}"], color="C0", alpha=alpha, lw=0,
                            label=f"({lo}, {hi})")
        ax.plot(x, table[f"{obs}_median"], color="C0", lw=1.8, marker="o", ms=3, label="median")
        ax.set_xscale("log")
        ax.set_xlabel(PARAMETER_LABELS[parameter])
        ax.set_ylabel(OBSERVABLE_LABELS[obs])
        if obs == "perplexity":
            ax.set_yscale("log")
    axes[0].legend(fontsize=7, title="percentiles", title_fontsize=7)
    fig.suptitle(f"{PARAMETER_LABELS[parameter]} varied; N = {int(table['N'].iloc[0])}, K = {int(table['K'].iloc[0])}, "
                 f"n = {int(table['n'].iloc[0])} flipped bits, {int(table['sets'].iloc[0])} pattern sets, "
                 f"$t_f$ = {table['t_f'].iloc[0]:g}", fontsize=10)
    return fig


def fig4_grids(table) -> dict:
    """model -> (n x K) array of the mean Hamming error, rows n ascending, columns K ascending (models in the
    table's order)."""
    grids = {}
    for model, part in table.groupby("model", sort=False):
        grids[model] = part.pivot(index="n", columns="K", values="mean_hamming_error").sort_index().to_numpy()
    return grids


def draw_fig4(table):
    """Top: the mean Hamming error of each model of the table over (K, n) on one colour scale; bottom: gated
    minus each other model (blue: the gated model lower), on one symmetric scale. Returns the Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grids = fig4_grids(table)
    models = list(grids)
    K = np.sort(table["K"].unique())
    n = np.sort(table["n"].unique())
    step = K[1] - K[0] if len(K) > 1 else 1
    extent = (K[0] - step / 2, K[-1] + step / 2, n[0] - 0.5, n[-1] + 0.5)
    vmax = max(float(np.max(g)) for g in grids.values())
    columns = len(models)
    fig, axes = plt.subplots(2, columns, figsize=(4 * columns, 6.5), constrained_layout=True, squeeze=False)
    for ax, model in zip(axes[0], models):
        image = ax.imshow(grids[model], origin="lower", aspect="auto", extent=extent, vmin=0, vmax=vmax,
                          cmap="viridis", interpolation="nearest")
        ax.set_title(MODEL_TITLES.get(model, model))
        ax.set_xlabel("K (stored patterns)")
        ax.set_ylabel("n (flipped bits)")
    fig.colorbar(image, ax=axes[0].tolist(), label="mean Hamming error (eq. 15)")
    diffs = {f"gated - {b}": grids["gated"] - grids[b] for b in models if b != "gated"}
    limit = max(float(np.max(np.abs(d))) for d in diffs.values()) or 1.0
    for ax, (name, diff) in zip(axes[1], diffs.items()):
        image = ax.imshow(diff, origin="lower", aspect="auto", extent=extent, vmin=-limit, vmax=limit,
                          cmap="RdBu_r", interpolation="nearest")
        ax.set_title(name)
        ax.set_xlabel("K (stored patterns)")
        ax.set_ylabel("n (flipped bits)")
    fig.colorbar(image, ax=axes[1].tolist(), label="difference of mean Hamming errors")  # the rows stay aligned
    for ax in axes[1, len(diffs):]:
        ax.axis("off")
    sets = int(table["sets"].iloc[0])
    correlation = float(table["correlation"].iloc[0]) if "correlation" in table else 0.0
    patterns = f"patterns correlated {correlation:g} (parent model)" if correlation else "independent patterns"
    fig.suptitle(f"N = {int(table['N'].iloc[0])}, {sets} pattern sets per cell, {patterns}, "
                 f"$t_f$ = {table['t_f'].iloc[0]:g}, x(0) = the cue", fontsize=10)
    return fig


def paper_figure(name: str, out, quick: bool = False, progress=None) -> dict:
    """Compute (resuming), assemble and draw one figure into DIR: <name>.csv, <name>.nc, <name>.png,
    <name>.pdf. Returns {"table", "dataset", "files", "run", "skipped", "seconds"}."""
    from astrogate.analysis.io import save_figure

    spec = figure_spec(name, quick)
    out = Path(out)
    counts = compute(spec, out, progress)
    dataset, table = assemble(spec, out)
    files = [out / f"{name}.csv", out / f"{name}.nc"]
    for suffix in ("png", "pdf"):
        fig = draw_fig4(table) if name in GRIDS else draw_dynamics(table, VARIED[name])
        files.append(save_figure(fig, out / f"{name}.{suffix}", dpi=110))
    return {"table": table, "dataset": dataset, "files": files, **counts}


def paper_figures(names, out, quick: bool = False, progress=None) -> dict:
    """`paper_figure` for each name ("all": the paper's four); name -> its result."""
    names = list(PAPER_FIGURES) if names in ("all", ["all"], ("all",)) else list(names)
    return {name: paper_figure(name, out, quick, progress) for name in names}
