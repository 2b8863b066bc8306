"""Spiking retrievals against the softmax fixed point of the abstract model.

The astrocytes of a spiking network see the rate-coded overlaps m_hat (models/spiking_equations.py).
Two distances say how close its gains come to the abstract model:

- the softmax residual max_mu |g_t - softmax(beta F(m_hat_t))_mu| at each recorded step, averaged over the
  second half of the run (the first half holds the retrieval transient): how far the astrocytes are from
  the fixed point of their own, noisy, input;
- the time-averaged gains of the second half against the abstract model's fixed point g* for the same
  cue (the abstract model run to convergence).

The noise in m_hat comes from counting spikes: a neuron firing at rate f has a readout with variance
f / (2 tau_r), so m_hat has a standard deviation ~ 1 / sqrt(N nu_max tau_r) and the residual should shrink
like a power of N, nu_max and tau_r (the study fits the exponents).
"""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np

from astrogate.analysis.metrics import log_log_slope
from astrogate.analysis.recall import RecallProblem, generated_problem, recall, retrieved_name
from astrogate.analysis.study import Evaluation, Field, Study, choice, fraction, positive, seed, valid_rows, whole
from astrogate.errors import InputError
from astrogate.machine import require_memory
from astrogate.models.checks import euler_steps, pattern_bytes
from astrogate.models.parameters import Parameters
from astrogate.models.spiking_equations import SPIKING, SpikingParameters


def spiking_vs_abstract(problem, params: Parameters, neuron: str = "poisson",
                        spiking: SpikingParameters | None = None, duration: float = 400.0,
                        abstract_duration: float = 2000.0, record_every: float = 1.0, session=None,
                        **brian2_options) -> dict:
    """One spiking retrieval and the abstract model's fixed point for the same cue.
    Returns both records and the distances of the module docstring."""

    network = recall(problem, params, duration=duration, tol=0.0, backend="brian2", neuron=neuron,
                         spiking=spiking, record_every=record_every, session=session, **brian2_options)
    reference = recall(problem, params, duration=abstract_duration, tol=1e-9)
    spikes = network["brian2"]["spiking"]
    mean_gains = np.asarray(spikes["late_mean_gains"])
    return {
        "spiking": network,
        "abstract": reference,
        "same_retrieved": (network["retrieved"], network["retrieved_sign"])
        == (reference["retrieved"], reference["retrieved_sign"]),
        "correct": problem.target is not None and network["retrieved"] == problem.target and not network["mirror"],
        "mean_softmax_residual": spikes["mean_softmax_residual"],
        "mean_gain_error": float(np.max(np.abs(mean_gains - np.asarray(reference["g"])))),
        "abstract_converged": bool(reference["converged"]),
    }


class SpikingStudy(Evaluation):
    """A point is one spiking retrieval (runtime device) against the abstract fixed point for the same cue: each
    seed draws its own patterns and cue and its own spikes. The study's default grid varies N, nu_max and tau_r one
    at a time around K = 10, N = 100, beta = 10 (the soft-gain regime where the residual is measurable: at the
    default beta = 20 N the gains are one-hot to double precision once a pattern is retrieved), as a zipped
    axis whose field `axis` names the parameter varied (runs/configs/spiking_study.toml)."""

    name = "spiking"
    fields = {"axis": Field("str"), "N": Field("int", whole("N", 2)), "nu_max": Field("float", positive("nu_max")),
              "tau_r": Field("float", positive("tau_r")), "seed": Field("int", seed()),
              "K": Field("int", whole("K", 2), fixed_only=True),
              # fixed (not 20 N): N changes only the number of spiking neurons
              "beta": Field("float", positive("beta", zero=True), fixed_only=True),
              "flip": Field("float", fraction("flip"), fixed_only=True),
              # ms; the residual is averaged over the second half
              "duration": Field("float", positive("duration"), fixed_only=True),
              "neuron": Field("str", choice("spiking neuron", SPIKING), fixed_only=True),
              "target": Field("str", choice("runtime code generation target", ("numpy", "cython")), fixed_only=True)}
    metrics = ("mean_softmax_residual", "mean_gain_error", "correct", "same_retrieved", "mean_rate_hz", "run_seconds")
    default_metrics = metrics
    text_columns = ("axis", "neuron")
    outputs = ("scaling.png",)
    DEFAULTS = {"axis": "none", "K": 10, "N": 100, "beta": 10.0, "flip": 0.1, "nu_max": 200.0, "tau_r": 20.0,
                "duration": 400.0, "neuron": "poisson", "target": "numpy", "seed": 0}

    def check_point(self, values: dict) -> None:
        euler_steps(values["duration"], Parameters().dt)
        SpikingParameters(nu_max=values["nu_max"], tau_r=values["tau_r"]).check(values["neuron"], Parameters().dt)

    def check(self, study: Study, loc) -> None:
        from astrogate.analysis.study import point_values
        from astrogate.network.recall import network_bytes

        super().check(study, loc)
        largest_N = max([2, *(values["N"] for _, values in point_values(study))])
        K = study.fixed["K"]
        try:
            require_memory(network_bytes(K, largest_N) + pattern_bytes(K, largest_N),
                           f"a spiking network of K = {K} astrocytes and N = {largest_N} neurons")
        except InputError as exc:
            raise loc.error(str(exc), "axes" if study.axes else "fixed") from None

    def run(self, values: dict, settings: dict, context: dict) -> dict:
        problem = generated_problem(values["K"], values["N"], 0.0, values["flip"], values["seed"])
        spiking = SpikingParameters(nu_max=values["nu_max"], tau_r=values["tau_r"], seed=values["seed"])
        both = spiking_vs_abstract(problem, Parameters(beta=values["beta"]), values["neuron"], spiking,
                                   values["duration"], device="runtime", target=values["target"])
        spikes = both["spiking"]["brian2"]["spiking"]
        return {"rows": [{"axis": values["axis"], "N": values["N"], "nu_max": values["nu_max"],
                          "tau_r": values["tau_r"], "seed": values["seed"], "neuron": values["neuron"],
                          "K": values["K"], "beta": values["beta"],
                          "mean_softmax_residual": both["mean_softmax_residual"],
                          "mean_gain_error": both["mean_gain_error"], "correct": both["correct"],
                          "same_retrieved": both["same_retrieved"], "mean_rate_hz": spikes["mean_rate_hz"],
                          "run_seconds": both["spiking"]["timings"]["run_seconds"]}]}

    def valid(self, record: dict) -> bool:
        return valid_rows(record.get("rows"), self.text_columns)

    def rows(self, point, record: dict, study: Study) -> list[dict]:
        if record["status"] == "ok":
            return record["rows"]
        return [{k: point.values[k] for k in ("axis", "N", "nu_max", "tau_r", "seed", "neuron", "K", "beta")}
                | {"status": record["status"], "error": record.get("error") or ""}]

    def finish(self, study: Study, finished, stage) -> list[str]:
        table = finished.table
        if "status" in table:
            table = table[table["status"].isna()]
        if len(table):
            plot_scaling(table.to_dict("records"), stage / "scaling.png")
        return ["scaling.png"]


SPIKING_STUDY = SpikingStudy()


def spiking_study(quick: bool = False, seeds: int | None = None, **fixed) -> Study:
    """The shipped spiking study (runs/configs/spiking_study.toml, or spiking_study_quick.toml) with fixed
    fields changed (K, beta, duration, neuron, target; None: unchanged) and `seeds` (a count) where given."""
    from astrogate.analysis.spec import shipped_study

    return shipped_study("spiking_study_quick" if quick else "spiking_study", fixed,
                         {"seed": range(seeds) if seeds is not None else None})


def scaling_exponents(rows: list[dict], quantity: str = "mean_softmax_residual") -> dict:
    """Per varied parameter, the exponent of `quantity` (its mean over seeds) as a power of that parameter."""
    fits = {}
    for axis in dict.fromkeys(row["axis"] for row in rows):
        values = sorted({row[axis] for row in rows if row["axis"] == axis})
        means = [np.mean([row[quantity] for row in rows if row["axis"] == axis and row[axis] == v]) for v in values]
        fit = log_log_slope(list(zip(values, means)))
        if fit:
            fits[axis] = fit["exponent"]
    return fits


def plot_scaling(rows: list[dict], path) -> Path:
    """Residual and gain error against N, nu_max and tau_r (log-log), with the fitted exponents."""
    from astrogate.analysis.io import prepare_output, save_figure
    from astrogate.analysis.plots import plt

    path = prepare_output(path, "plot")
    axes_names = list(dict.fromkeys(row["axis"] for row in rows))
    labels = {"N": "N (neurons)", "nu_max": "$\\nu_{max}$ (Hz)", "tau_r": "$\\tau_r$ (ms)"}
    quantities = {"mean_softmax_residual": ("max|g - softmax($\\beta F(\\hat m)$)|, time mean", "C0", "o"),
                  "mean_gain_error": ("max|<g> - g* (abstract)|", "C3", "s")}
    fits = {q: scaling_exponents(rows, q) for q in quantities}
    fig, axs = plt.subplots(1, len(axes_names), figsize=(4 * len(axes_names), 3.6), squeeze=False)
    for ax, axis in zip(axs[0], axes_names):
        sub = [row for row in rows if row["axis"] == axis]
        values = sorted({row[axis] for row in sub})
        for quantity, (label, color, marker) in quantities.items():
            ax.plot([row[axis] for row in sub], [row[quantity] for row in sub], color=color, marker=marker,
                    ls="none", alpha=0.35, ms=4)
            means = [np.mean([row[quantity] for row in sub if row[axis] == v]) for v in values]
            slope = fits[quantity].get(axis)
            ax.plot(values, means, color=color, marker=marker,
                    label=f"{label}, slope {slope:.2f}" if slope is not None else label)
        reference = np.array(values, dtype=float) ** -0.5
        first = np.mean([row["mean_softmax_residual"] for row in sub if row[axis] == values[0]])
        ax.plot(values, first * reference / reference[0], color="0.5", ls="--", lw=1, label="slope -1/2")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(values, [f"{v:g}" for v in values])
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
        ax.set_xlabel(labels.get(axis, axis))
        ax.legend(fontsize=6)
    axs[0][0].set_ylabel("distance of the spiking gains")
    first = rows[0]
    fig.suptitle(f"{first['neuron']} neurons, K={first['K']}, beta={first['beta']:g}: dots are seeds, "
                 f"lines their means", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    return path


def plot_raster_and_gains(record: dict, path, max_neurons: int = 50) -> Path:
    """A spiking retrieval: gains and rate-coded overlaps over time above the raster of the first neurons,
    sorted by their final activity so that retrieval shows as two bands."""
    from astrogate.analysis.io import prepare_output, save_figure
    from astrogate.analysis.plots import pattern_label, pattern_style, plt

    path = prepare_output(path, "plot")
    spikes = record["brian2"]["spiking"]
    t = np.asarray(record["t"])
    fig, (ax_g, ax_m, ax_r) = plt.subplots(3, 1, figsize=(7, 7.5), sharex=True,
                                           gridspec_kw={"height_ratios": [1.2, 0.8, 2]})
    # the traced patterns hold the target and the largest final gain (a mirror state's pattern too)
    for column, mu in enumerate(record["trace_patterns"]):
        style = pattern_style(record, mu, 2.0)
        name = pattern_label(record, mu)
        ax_g.plot(t, np.asarray(record["gain_trace"])[:, column], label=name, **style)
        ax_m.plot(t, np.asarray(record["overlap_trace"])[:, column], **style)
    ax_g.set_ylabel("gain $g_\\mu$")
    ax_g.legend(fontsize=6, loc="center right")
    ax_m.set_ylabel("rate-coded\noverlap $\\hat m_\\mu$")
    n_shown = min(max_neurons, spikes["raster_neurons"])
    raster_i, raster_t = np.asarray(spikes["raster_i"]), np.asarray(spikes["raster_t"])
    keep = raster_i < n_shown
    # rows: neurons active at the end (the retrieved pattern's +1 bits) on top, then the silent ones
    order = np.argsort(-np.sign(np.asarray(record["v"])[:n_shown]), kind="stable")
    row_of = np.empty(n_shown, dtype=int)
    row_of[order] = np.arange(n_shown)
    ax_r.plot(raster_t[keep], row_of[raster_i[keep]], "|", color="k", ms=2.5, mew=0.6)
    ax_r.set_ylim(n_shown, -1)
    ax_r.set_ylabel(f"neuron (first {n_shown},\nactive at the end on top)")
    ax_r.set_xlabel("time (ms)")
    ax_r.set_xlim(0, t[-1])
    params = spikes["params"]
    ax_g.set_title(f"{record['brian2']['neuron']} neurons ({record['brian2']['device']}), K={record['K']}, "
                   f"N={record['N']}, nu_max={params['nu_max']:g} Hz, tau_r={params['tau_r']:g} ms: "
                   f"retrieved {retrieved_name(record)}", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    return path


def spiking_retrieval_trials(patterns, cues, targets, params: Parameters, duration: float = 300.0,
                             neuron: str = "poisson", spiking: SpikingParameters | None = None,
                             **session_options) -> dict:
    """Retrieve each cue (B x N) on one spiking network (a benchmark column beside the rate model); the
    session's device, target and build_dir as Brian2Session takes them (runtime, cython by default).
    One Brian2Session: on cpp_standalone the first trial compiles and the others re-run it with run_args;
    on runtime the first trial builds the network and the others re-run it (Brian2Session); the seed is set
    at the build, so every trial draws the same random-number stream.
    Brian2's Network.run starts with a full gc.collect(), which at N = 100 costs as much as 80 ms of
    simulated time; the objects alive after the first trial (Brian2's, the network's) are frozen out of
    the collector (gc.freeze) until the last trial is done (gc.unfreeze).
    Returns per-trial final states: 'v' = tanh(gamma u) (B x N), 'g' (B x K), the gains averaged over the
    second half 'late_mean_gains' (B x K), 'retrieved', 'correct', 'exact_match', and timings."""
    from astrogate.network.recall import Brian2Session

    cues = np.atleast_2d(np.asarray(cues, dtype=float))
    targets = list(targets) if targets is not None else [None] * len(cues)
    keys = ("v", "g", "late_mean_gains", "retrieved", "correct", "exact_match", "final_overlap", "run_seconds")
    out = {key: [] for key in keys}
    frozen = False
    try:
        with Brian2Session(record_every=1.0, neuron=neuron, spiking=spiking or SpikingParameters(),
                           **session_options) as session:
            for cue, goal in zip(cues, targets):
                record = recall(RecallProblem(patterns, cue, goal), params, backend="brian2", duration=duration,
                                           tol=0.0, session=session)
                if not frozen and len(cues) > 1:
                    gc.collect()
                    gc.freeze()
                    frozen = True
                _append_trial(out, record, goal)
    finally:
        if frozen:
            gc.unfreeze()
    return {key: np.asarray(value) for key, value in out.items()}


def _append_trial(out: dict, record: dict, goal) -> None:
    out["v"].append(record["v"])
    out["g"].append(record["g"])
    out["late_mean_gains"].append(record["brian2"]["spiking"]["late_mean_gains"])
    out["retrieved"].append(record["retrieved"])
    out["correct"].append(goal is not None and record["retrieved"] == goal and not record["mirror"])
    out["exact_match"].append(record["exact_match"])
    out["final_overlap"].append(record["final_overlap"])
    out["run_seconds"].append(record["timings"]["run_seconds"])
