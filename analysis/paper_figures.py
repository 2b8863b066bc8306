"""The four figures of Vivet & Arenas (2026) reproduced with their protocol (Sec. II.3, appendix .5), as studies
of the study engine (runs/configs/paper_<figure>.toml; `astrogate sweep paper_fig1`, or `astrogate paper`).

- fig1, fig2, fig3 (evaluation "paper_dynamics"): N = 30, K = 100, the target with 6 flipped bits, x(0) = the
  cue, p(0) = 1/K, the paper's preset (T = 0.01, tau_x = tau_p = 1, sigma = 3: not stated in the paper) with one
  parameter swept (tau_p, tau_x, T: the study's one axis); a point is one value, over `sets` pattern sets: at
  t_f = 10 the soft Hamming error (eq. 13), the perplexity (eq. 14), the convergence time and the Hamming error
  (eq. 15) of each set; medians with the percentile bands BANDS. dt = 0.001, 0.05 alpha where alpha <= 0.01.
- fig4 (evaluation "paper_grid"): N = 20, K = 2..200, 0..10 flipped bits, 50 pattern sets; a point is one model
  at one load K: the Hamming error (eq. 15) of sign(x(t_f)) of each set and corruption, for classical Hopfield,
  NAAM and the gated model from the same cues to the same t_f.
- beyond the paper: sigma (the dynamics figure with sigma swept), fig4_baselines (Fig. 4 with modern Hopfield
  and the dense associative memory, z^3), fig4_correlated (the five models on correlated patterns).

Each study's folder holds the engine's output (points/, results.nc: the per-trial data, results.csv) and the
figure's: summary.csv (one row per value, or per model, load and corruption, with the bands' statistics),
figure.png and figure.pdf. The paper smooths its bands with a Gaussian filter for display; these figures do not
(the drawn values are the data's).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from astrogate.analysis.metrics import hamming_error, perplexity, soft_hamming_error
from astrogate.analysis.paper_numerics import (
    FIG4_DT,
    PAPER_NAMES,
    cue_generator,
    discrete_baseline_states,
    flipped_cues,
    integrate_gated,
    integrate_hopfield,
    integrate_naam,
    naam_states,
    paper_dt,
    paper_parameters,
    pattern_sets,
)
from astrogate.analysis.study import (
    Evaluation,
    Field,
    Study,
    choice,
    finite_or_none,
    fraction,
    positive,
    seed,
    valid_rows,
    whole,
)
from astrogate.errors import InputError

BANDS = ((5, 95), (10, 90), (20, 80), (25, 75))
DYNAMICS_OBSERVABLES = ("soft_hamming_error", "perplexity", "convergence_time", "hamming_error")
FIG4_MODELS = ("hopfield", "naam", "gated")
# beyond the paper: modern Hopfield and the dense associative memory (n = 3) on Fig. 4's grid
EXTRA_MODELS = ("modern", "dam3")
GRID_MODELS = FIG4_MODELS + EXTRA_MODELS
DYNAMICS_MODELS = ("gated", "hopfield")
MODEL_TITLES = {"hopfield": "classical Hopfield (eq. 12)", "naam": "NAAM (Kozachkov et al.)",
                "gated": "astrocyte-gated", "modern": "modern Hopfield (iterated)",
                "dam3": "dense associative memory, $z^3$"}
HORIZON = 10.0  # t_f of every figure (appendix .5: 10 / dt steps)
FIGURES = ("fig1", "fig2", "fig3", "fig4", "sigma", "fig4_baselines", "fig4_correlated")
PAPER_FIGURES = ("fig1", "fig2", "fig3", "fig4")
# the studies of the claims the figures do not settle (analysis/paper_claims.py): Fig. 1's slow-astrocyte values
# run to a 10x longer horizon, and eq. 12 on the cues of Figs. 1-3
CLAIM_STUDIES = ("fig1_horizon", "fig3_hopfield")
CORRELATION = 0.4  # fig4_correlated: the parent model's correlation (models.patterns.random_patterns)
# Fig. 4's float type per model: float32 only where it gives float64's Hamming errors. NAAM: the same in every
# trial compared. Eq. 12 and the gated model: not at K = 2, where a cue with no net overlap with the two
# patterns decays toward the saddle x = 0 (to |x| ~ e^-10 at t_f); float32's rounding grows along its unstable
# directions to O(1) within t_f and picks a sign, float64's does not (docs/results/paper_figures.md).
FIG4_DTYPES = {"gated": "float64", "hopfield": "float64", "naam": "float32"}
SUMMARY_FILE = "summary.csv"
FIGURE_FILES = ("figure.png", "figure.pdf")
# --quick: a few points of each figure (fixed fields and axes replacing the shipped study's), under a minute
QUICK_GRID = ({"sets": 6, "flips": [0, 4, 10]}, {"K": [2, 20, 200]})
QUICK = {"fig1": ({"sets": 6}, {"tau_p": [0.1, 1.0, 10.0, 100.0]}),
         "fig2": ({"sets": 6}, {"tau_x": [0.1, 1.0, 10.0, 100.0]}),
         "fig3": ({"sets": 6}, {"T": [0.03, 0.3, 3.0, 30.0]}),
         "sigma": ({"sets": 6}, {"sigma": [1.0, 3.0, 10.0]}),
         "fig4": QUICK_GRID, "fig4_baselines": QUICK_GRID, "fig4_correlated": QUICK_GRID}


def figure_study(name: str, quick: bool = False) -> Study:
    """The shipped study of a figure, or of a claim (CLAIM_STUDIES), runs/configs/paper_<name>.toml, or its quick
    grid (a few points and pattern sets)."""
    from astrogate.analysis.spec import shipped_study

    if name not in FIGURES + CLAIM_STUDIES:
        raise InputError(f"unknown figure {name!r}: use {', '.join(FIGURES + CLAIM_STUDIES)}")
    fixed, axes = QUICK.get(name, ({"sets": 6}, {})) if quick else ({}, {})
    return shipped_study(f"paper_{name}", fixed, axes)


# -- one point -------------------------------------------------------------------------------------------
def dynamics_point(values: dict) -> dict:
    """One value of a dynamics figure: the observables of each of values["sets"] pattern sets (arrays (sets,)),
    the step and the steps each set took. values: N, K, flips, sets, seed, t_f, varied, the paper's T, tau_p,
    tau_x, sigma, and model: "gated" (the default) or "hopfield" (eq. 12 on the same cues: perplexity K, no
    convergence time)."""
    N, K, flips, sets = values["N"], values["K"], values["flips"], values["sets"]
    xi = pattern_sets(N, K, sets, values["seed"])
    cues = flipped_cues(xi[:, 0], flips, cue_generator(values["seed"], N, K, flips))
    params = paper_parameters(**{name: values[name] for name in PAPER_NAMES})
    dt = paper_dt(values["varied"], values[values["varied"]])
    if values.get("model", "gated") == "hopfield":  # eq. 12: the gains frozen at 1/K
        x = integrate_hopfield(xi, cues, params["tau_x"], params["sigma"], dt, values["t_f"])
        run = {"x": x, "p": np.full((sets, K), 1.0 / K), "convergence_time": np.full(sets, np.nan),
               "steps": np.full(sets, round(values["t_f"] / dt))}
    else:
        run = integrate_gated(xi, cues, params, dt, values["t_f"])
    rates = np.tanh(params["sigma"] * run["x"])
    return {
        "soft_hamming_error": soft_hamming_error(rates, xi[:, 0]),
        "hamming_error": hamming_error(run["x"], xi[:, 0]),
        "perplexity": perplexity(run["p"]),
        "convergence_time": run["convergence_time"],
        "dt": dt, "steps": run["steps"],
    }


def grid_trials(values: dict) -> tuple[np.ndarray, np.ndarray]:
    """A grid point's pattern sets (sets, K, N) and cues (sets, len(flips), N): pattern 0 of each set with each
    number of values["flips"] flipped (the same for every model)."""
    N, K = values["N"], values["K"]
    xi = pattern_sets(N, K, values["sets"], values["seed"], values["correlation"])
    rng = cue_generator(values["seed"], N, K, 0)
    return xi, np.stack([flipped_cues(xi[:, 0], n, rng) for n in values["flips"]], axis=1)


def grid_point(values: dict, dtype: str | None = None) -> dict:
    """One model at one load: Hamming errors (flips, sets) of sign(x(t_f)) from the same cues for every model
    (the cues of one pattern set, its corruptions, integrated together: one matrix product per set), the steps
    of the gated model's trials and which final states are undefined (not finite, or all zero)."""
    model = values["model"]
    xi, cues = grid_trials(values)
    dtype = dtype or FIG4_DTYPES.get(model, "float64")
    params = paper_parameters()
    steps = np.zeros(cues.shape[:2])
    if model == "gated":
        run = integrate_gated(xi, cues, params, FIG4_DT, values["t_f"], stop="decided", dtype=dtype)
        states, steps = run["x"], run["steps"]
    elif model == "hopfield":
        states = integrate_hopfield(xi, cues, params["tau_x"], params["sigma"], FIG4_DT, values["t_f"], dtype=dtype)
    elif model == "naam":
        states = naam_states(integrate_naam(xi, cues, values["t_f"], dtype=dtype))
    elif model in EXTRA_MODELS:
        states = discrete_baseline_states(model, xi, cues)
    else:
        raise InputError(f"unknown model {model!r}: use {', '.join(GRID_MODELS)}")
    undefined = ~np.isfinite(states).all(axis=-1) | np.all(states == 0, axis=-1)
    return {"hamming_error": hamming_error(states, xi[:, None, 0]).T, "steps": steps.T, "undefined": undefined.T}


# -- the evaluations -------------------------------------------------------------------------------------
def _flip_counts(value):
    """A Field check: a non-empty list of distinct flipped-bit counts, each >= 0."""
    from astrogate.models.checks import whole_number

    counts = tuple(whole_number(v, "flips", 0) for v in value)
    if len(set(counts)) != len(counts):
        raise InputError(f"flips: the list repeats a count ({list(counts)})")
    return counts


def _axis_values(point, study: Study) -> dict:
    return {name: point.values[name] for axis in study.axes for name in axis.values}


class PaperFigure(Evaluation):
    """What the two kinds of figure share: the protocol's fields, defaults, checks and one row per trial."""

    DEFAULTS = {"N": 30, "K": 100, "flips": 6, "sets": 50, "seed": 0, "t_f": HORIZON}
    outputs = (SUMMARY_FILE, *FIGURE_FILES)

    def check_point(self, values: dict) -> None:
        from astrogate.models.checks import euler_steps

        largest = max(values["flips"]) if isinstance(values["flips"], tuple) else values["flips"]
        if largest > values["N"]:
            raise InputError(f"flips must be at most N = {values['N']}, got {largest}")
        euler_steps(values["t_f"], self.step(values))

    def step(self, values: dict) -> float:
        return FIG4_DT

    def valid(self, record: dict) -> bool:
        return valid_rows(record.get("rows"))

    def rows(self, point, record: dict, study: Study) -> list[dict]:
        at = {"point": point.id, **_axis_values(point, study)}
        if record["status"] != "ok":
            return [{**at, "status": record["status"], "error": record.get("error") or ""}]
        return [{**at, **row} for row in record["rows"]]

    def finish(self, study: Study, finished, stage) -> list[str]:
        from astrogate.analysis.io import save_figure, write_table

        table = self.summary(finished.dataset, study)
        write_table(stage / SUMMARY_FILE, table)
        for name in FIGURE_FILES:
            save_figure(self.draw(table, study), stage / name, dpi=110)
        return [SUMMARY_FILE, *FIGURE_FILES]


class DynamicsFigure(PaperFigure):
    """A point is one value of the paper parameter the study sweeps (its one axis: T, tau_p, tau_x or sigma;
    the others at the paper's preset) over `sets` pattern sets of K patterns of N bits, each with one cue (the
    target, pattern 0, with `flips` bits flipped), run to t_f: the observables of each set (a row per set)."""

    name = "paper_dynamics"
    fields = {**{p: Field("float", positive(p)) for p in PAPER_NAMES},
              "N": Field("int", whole("N", 2), fixed_only=True), "K": Field("int", whole("K", 2), fixed_only=True),
              "flips": Field("int", whole("flips", 0), fixed_only=True),
              "sets": Field("int", whole("sets", 1), fixed_only=True), "seed": Field("int", seed(), fixed_only=True),
              "t_f": Field("float", positive("t_f"), fixed_only=True),
              "model": Field("str", choice("model", DYNAMICS_MODELS), fixed_only=True)}
    metrics = (*DYNAMICS_OBSERVABLES, "dt", "steps")
    default_metrics = metrics
    dims = ("set",)
    DEFAULTS = {**PaperFigure.DEFAULTS, "model": "gated", **paper_parameters()}  # the preset where not swept

    def complete(self, fixed: dict, swept: dict, loc) -> None:
        varied = [name for name in swept if name in PAPER_NAMES]
        if len(varied) != 1 or len(swept) != 1:
            raise loc.error(f"a dynamics figure sweeps one of {', '.join(PAPER_NAMES)} (its one axis), got "
                            f"{', '.join(swept) or 'no axis'}", "axes" if swept else "fixed")
        super().complete(fixed, swept, loc)
        fixed["varied"] = varied[0]  # the figure's x axis, and the parameter that sets the step

    def step(self, values: dict) -> float:
        return paper_dt(values["varied"], values[values["varied"]])

    def order(self, points: list, study: Study) -> list:
        return sorted(points, key=lambda p: -self.step(p.values))  # the cheapest first

    def run(self, values: dict, settings: dict, context: dict) -> dict:
        point = dynamics_point(values)
        return {"rows": [{"set": s, **finite_or_none({obs: float(point[obs][s]) for obs in DYNAMICS_OBSERVABLES}),
                          "dt": point["dt"], "steps": int(point["steps"][s])} for s in range(values["sets"])]}

    @staticmethod
    def summary(dataset, study: Study):
        """One row per value: the protocol, the step, the most steps of a set, and per observable its median,
        mean and the percentiles of BANDS over the sets."""
        import pandas as pd

        fixed = study.fixed
        varied = fixed["varied"]
        rows = []
        for i, value in enumerate(dataset[varied].values):
            at = dataset.isel({varied: i})
            row = {"figure": study.name, "parameter": varied, "value": float(value), "N": fixed["N"],
                   "K": fixed["K"], "flips": fixed["flips"], "sets": fixed["sets"], "t_f": fixed["t_f"],
                   "dt": float(at["dt"].values[0]), "steps": int(np.nanmax(at["steps"].values))}
            for obs in DYNAMICS_OBSERVABLES:
                for stat, v in band_statistics(at[obs].values).items():
                    row[f"{obs}_{stat}"] = float(v)
            rows.append(row)
        return pd.DataFrame(rows)

    @staticmethod
    def draw(table, study: Study):
        return draw_dynamics(table, study.fixed["varied"])


class GridFigure(PaperFigure):
    """A point is one model at one load K (the axes `model` and `K`): `sets` pattern sets of N bits (correlated
    `correlation` by the parent model), each cued with pattern 0 with each count of `flips` flipped, run to t_f
    from x(0) = the cue: the Hamming error (eq. 15) of each set and corruption (a row each)."""

    name = "paper_grid"
    fields = {"model": Field("str", choice("model", GRID_MODELS)), "K": Field("int", whole("K", 2)),
              "N": Field("int", whole("N", 2), fixed_only=True),
              "flips": Field("ints", _flip_counts, fixed_only=True),
              "sets": Field("int", whole("sets", 1), fixed_only=True), "seed": Field("int", seed(), fixed_only=True),
              "correlation": Field("float", fraction("correlation"), fixed_only=True),
              "t_f": Field("float", positive("t_f"), fixed_only=True)}
    metrics = ("hamming_error", "steps", "undefined")
    default_metrics = metrics
    dims = ("flips", "set")
    DEFAULTS = {"N": 20, "flips": tuple(range(11)), "sets": 50, "seed": 0, "correlation": 0.0, "t_f": HORIZON}

    def complete(self, fixed: dict, swept: dict, loc) -> None:
        if set(swept) != {"model", "K"}:
            raise loc.error(f"a grid figure sweeps model and K (its two axes), got {', '.join(swept) or 'no axis'}",
                            "axes" if swept else "fixed")
        super().complete(fixed, swept, loc)

    def order(self, points: list, study: Study) -> list:
        """Every 8th load first, then every 4th, 2nd and the rest: a run stopped early leaves a coarser grid."""
        loads = next(axis.values["K"] for axis in study.axes if "K" in axis.values)
        index = {K: i for i, K in enumerate(loads)}

        def level(point):
            i = index[point.values["K"]]
            return next(lv for lv, step in enumerate((8, 4, 2, 1)) if i % step == 0), i

        return sorted(points, key=level)

    def run(self, values: dict, settings: dict, context: dict) -> dict:
        point = grid_point(values)
        return {"rows": [{"flips": n, "set": s, "hamming_error": float(point["hamming_error"][i, s]),
                          "steps": int(point["steps"][i, s]), "undefined": bool(point["undefined"][i, s])}
                         for i, n in enumerate(values["flips"]) for s in range(values["sets"])]}

    @staticmethod
    def summary(dataset, study: Study):
        """One row per model, load and corruption: the mean and median Hamming error over the sets and the
        fraction retrieved exactly."""
        import pandas as pd

        fixed = study.fixed
        errors = dataset["hamming_error"].transpose("model", "K", "flips", "set").values
        sigma = paper_parameters()["sigma"]
        rows = []
        for i, model in enumerate(dataset["model"].values):
            for j, K in enumerate(dataset["K"].values):
                for k, n in enumerate(dataset["flips"].values):
                    trial = errors[i, j, k]
                    rows.append({"model": str(model), "N": fixed["N"], "K": int(K), "flips": int(n),
                                 "sets": fixed["sets"], "sigma": sigma, "t_f": fixed["t_f"],
                                 "correlation": fixed["correlation"], "mean_hamming_error": float(np.mean(trial)),
                                 "median_hamming_error": float(np.median(trial)),
                                 "exact_fraction": float(np.mean(trial == 0))})
        return pd.DataFrame(rows)

    @staticmethod
    def draw(table, study: Study):
        return draw_fig4(table)


PAPER_DYNAMICS = DynamicsFigure()
PAPER_GRID = GridFigure()


def band_statistics(values) -> dict:
    """Median, mean and the percentiles of BANDS (NumPy's linear interpolation) over the last axis."""
    values = np.asarray(values, float)
    stats = {"median": np.median(values, axis=-1), "mean": np.mean(values, axis=-1)}
    for lo, hi in BANDS:
        stats[f"p{lo}"], stats[f"p{hi}"] = np.percentile(values, [lo, hi], axis=-1)
    return stats


def check_old_folder(out) -> None:
    """Refuse a folder of the earlier `astrogate paper` format (its cells in DIR/cells as .npz files): those
    cells are not read by the study engine."""
    cells = Path(out) / "cells"
    if cells.is_dir() and any(cells.glob("*/*.npz")):
        raise InputError(f"{out} holds figure cells of an earlier astrogate version ({cells}): they cannot be "
                         f"resumed; choose another --out")


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
        if not np.isfinite(table[f"{obs}_median"].to_numpy(float)).any():  # eq. 12 has no convergence time
            ax.text(0.5, 0.5, "no finite value", transform=ax.transAxes, ha="center", va="center")
            ax.set_xlim(x.min() / 2, x.max() * 2)
        ax.set_xscale("log")
        ax.set_xlabel(PARAMETER_LABELS[parameter])
        ax.set_ylabel(OBSERVABLE_LABELS[obs])
        if obs == "perplexity":
            ax.set_yscale("log")
    axes[0].legend(fontsize=7, title="percentiles", title_fontsize=7)
    fig.suptitle(f"{PARAMETER_LABELS[parameter]} varied; N = {int(table['N'].iloc[0])}, K = {int(table['K'].iloc[0])}, "
                 f"{int(table['flips'].iloc[0])} flipped bits, {int(table['sets'].iloc[0])} pattern sets, "
                 f"$t_f$ = {table['t_f'].iloc[0]:g}", fontsize=10)
    return fig


def fig4_grids(table) -> dict:
    """model -> (n x K) array of the mean Hamming error, rows n ascending, columns K ascending (models in the
    table's order)."""
    grids = {}
    for model, part in table.groupby("model", sort=False):
        grids[model] = part.pivot(index="flips", columns="K", values="mean_hamming_error").sort_index().to_numpy()
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
    n = np.sort(table["flips"].unique())
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
    diffs = {f"gated - {b}": grids["gated"] - grids[b] for b in models if b != "gated" and "gated" in grids}
    limit = max([float(np.max(np.abs(d))) for d in diffs.values()] or [0.0]) or 1.0
    for ax, (name, diff) in zip(axes[1], diffs.items()):
        image = ax.imshow(diff, origin="lower", aspect="auto", extent=extent, vmin=-limit, vmax=limit,
                          cmap="RdBu_r", interpolation="nearest")
        ax.set_title(name)
        ax.set_xlabel("K (stored patterns)")
        ax.set_ylabel("n (flipped bits)")
    if diffs:
        fig.colorbar(image, ax=axes[1].tolist(), label="difference of mean Hamming errors")  # the rows stay aligned
    for ax in axes[1, len(diffs):]:
        ax.axis("off")
    sets = int(table["sets"].iloc[0])
    correlation = float(table["correlation"].iloc[0]) if "correlation" in table else 0.0
    patterns = f"patterns correlated {correlation:g} (parent model)" if correlation else "independent patterns"
    fig.suptitle(f"N = {int(table['N'].iloc[0])}, {sets} pattern sets per cell, {patterns}, "
                 f"$t_f$ = {table['t_f'].iloc[0]:g}, x(0) = the cue", fontsize=10)
    return fig
