"""The paper's four figures (analysis/paper_figures.py): the batched integrators against the per-trial model,
the quick figures' data (studies of the study engine) and what they draw, the percentile bands, a resumed
figure, bad specs and Fig. 4's Hopfield column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from astrogate.analysis import paper_figures as pf
from astrogate.analysis import paper_numerics as pn
from astrogate.analysis.metrics import hamming_error, perplexity, soft_hamming_error
from astrogate.cli.main import main
from astrogate.errors import InputError


def _trials(N, K, flips, sets, seed=7):
    xi = pn.pattern_sets(N, K, sets, seed)
    return xi, pn.flipped_cues(xi[:, 0], flips, pn.cue_generator(seed, N, K, flips))


# -- batched against per-trial -----------------------------------------------------------------------------
@pytest.mark.parametrize("changes", [{"tau_p": 0.1}, {"T": 100.0}, {"tau_x": 0.03, "sigma": 1.0}])
def test_batched_gated_equals_the_models_run(changes):
    """The paper's dynamics cell, batched over pattern sets, against AstroGateModel.run with the paper preset
    one trial at a time: identical Hamming errors, soft errors, perplexities and convergence times to round-off."""
    xi, cues = _trials(30, 100, 6, 3)
    params = pn.paper_parameters(**changes)
    name = next(iter(changes))
    dt = pn.paper_dt(name, changes[name])
    batched = pn.integrate_gated(xi, cues, params, dt, 4.0)  # past the transient (convergence times ~1-2)
    single = pn.gated_per_trial(xi, cues, params, dt, 4.0)
    targets = xi[:, 0]
    np.testing.assert_array_equal(hamming_error(batched["x"], targets), hamming_error(single["x"], targets))
    sigma = params["sigma"]
    np.testing.assert_allclose(soft_hamming_error(np.tanh(sigma * batched["x"]), targets),
                               soft_hamming_error(np.tanh(sigma * single["x"]), targets), atol=1e-9)
    np.testing.assert_allclose(perplexity(batched["p"]), perplexity(single["p"]), rtol=1e-9)
    np.testing.assert_allclose(batched["convergence_time"], single["convergence_time"], atol=1e-12)


def test_fig4_models_batched_equal_per_trial():
    """A Fig. 4 cell at high load: the gated model stopped once decided gives the Hamming errors of the full run
    and of AstroGateModel.run; eq. 12 batched equals the gated model at beta = 0 run per trial; StackedNaam
    equals NeuronAstrocyteMemory per pattern set."""
    xi, cues = _trials(20, 120, 5, 4)
    targets = xi[:, 0]
    params = pn.paper_parameters()
    stopped = pn.integrate_gated(xi, cues, params, 0.001, 5.0, stop="decided")
    full = pn.integrate_gated(xi, cues, params, 0.001, 5.0)
    single = pn.gated_per_trial(xi, cues, params, 0.001, 5.0)
    assert stopped["decided"].any() and stopped["steps"].min() < 5_000  # the rule did stop trials early
    expected = hamming_error(single["x"], targets)
    np.testing.assert_array_equal(hamming_error(stopped["x"], targets), expected)
    np.testing.assert_array_equal(hamming_error(full["x"], targets), expected)
    hop = pn.integrate_hopfield(xi, cues, 1.0, 3.0, 0.001, 5.0)
    hop_single = pn.hopfield_per_trial(xi, cues, 1.0, 3.0, 0.001, 5.0)
    np.testing.assert_array_equal(hamming_error(hop, targets), hamming_error(hop_single, targets))
    np.testing.assert_allclose(hop, hop_single, atol=1e-9)
    naam = pn.integrate_naam(xi, cues, 10.0)
    naam_single = pn.naam_per_trial(xi, cues, 10.0)
    np.testing.assert_allclose(naam, naam_single, atol=1e-9)


def _grouped_trials(N, K, flips, sets, seed=3, correlation=0.0):
    """Fig. 4's layout: each pattern set with several corruptions, cues (sets, len(flips), N)."""
    xi = pn.pattern_sets(N, K, sets, seed, correlation)
    rng = pn.cue_generator(seed, N, K, 0)
    return xi, np.stack([pn.flipped_cues(xi[:, 0], n, rng) for n in flips], axis=1)


def test_grouped_cues_equal_one_cue_per_set():
    """The corruptions of one pattern set integrated together (products per set, then per trial once half are
    decided) give what each cue gives alone with its own copy of the set: the same Hamming errors, steps and
    final states to round-off, for the three models."""
    xi, cues = _grouped_trials(20, 150, (1, 3, 6, 9), 3)
    S, F, N = cues.shape
    flat_xi, flat_cues = np.repeat(xi, F, axis=0), cues.reshape(-1, N)
    targets = xi[:, None, 0]
    params = pn.paper_parameters()
    grouped = pn.integrate_gated(xi, cues, params, 0.001, 6.0, stop="decided")
    alone = pn.integrate_gated(flat_xi, flat_cues, params, 0.001, 6.0, stop="decided")
    steps = grouped["steps"].ravel()
    assert S * F / 2 <= np.count_nonzero(steps < 6_000) < S * F  # half decided (the switch), some never
    np.testing.assert_array_equal(hamming_error(grouped["x"], targets).ravel(), hamming_error(alone["x"], flat_xi[:, 0]))
    np.testing.assert_array_equal(steps, alone["steps"])
    np.testing.assert_allclose(grouped["x"].reshape(-1, N), alone["x"], atol=1e-9)
    hop = pn.integrate_hopfield(xi, cues, 1.0, 3.0, 0.001, 3.0)
    np.testing.assert_allclose(hop.reshape(-1, N), pn.integrate_hopfield(flat_xi, flat_cues, 1.0, 3.0, 0.001, 3.0),
                               atol=1e-9)
    naam = pn.integrate_naam(xi, cues, 10.0)
    np.testing.assert_allclose(naam.reshape(-1, N), pn.naam_per_trial(flat_xi, flat_cues, 10.0), atol=1e-9)


@pytest.mark.parametrize("correlation", [0.0, 0.4])
def test_float32_gives_the_float64_hamming_errors(correlation):
    """On sampled cells (high load, every corruption level, independent and correlated patterns) each model's
    Hamming errors in float32 are float64's, trial by trial, and the gated trials stop at the same steps to
    within a few (rounding moves the step at which the rule first holds). Fig. 4 uses float32 for NAAM only
    (FIG4_DTYPES: see the saddle test below)."""
    xi, cues = _grouped_trials(20, 150, (0, 2, 4, 6, 8, 10), 3, seed=11, correlation=correlation)
    targets = xi[:, None, 0]
    params = pn.paper_parameters()
    runs = {d: pn.integrate_gated(xi, cues, params, 0.001, 6.0, stop="decided", dtype=d) for d in pn.FLOAT_TYPES}
    np.testing.assert_array_equal(hamming_error(runs["float32"]["x"], targets),
                                  hamming_error(runs["float64"]["x"], targets))
    assert np.max(np.abs(runs["float32"]["steps"] - runs["float64"]["steps"])) <= 20
    for d in pn.FLOAT_TYPES:  # Python scalars keep float32 float32 (NEP 50): the states are what was integrated
        assert runs[d]["x"].dtype == np.float64
    hop = {d: pn.integrate_hopfield(xi, cues, 1.0, 3.0, 0.001, 4.0, dtype=d) for d in pn.FLOAT_TYPES}
    np.testing.assert_array_equal(hamming_error(hop["float32"], targets), hamming_error(hop["float64"], targets))
    naam = {d: pn.naam_states(pn.integrate_naam(xi, cues, 10.0, dtype=d)) for d in pn.FLOAT_TYPES}
    np.testing.assert_array_equal(hamming_error(naam["float32"], targets), hamming_error(naam["float64"], targets))
    assert not np.array_equal(hop["float32"], hop["float64"])  # the float32 path did run in float32


def test_a_cue_without_overlap_decays_to_the_saddle_in_fig4s_float_type():
    """Two orthogonal patterns (K = 2) and a cue with zero overlap with both (n = 10 of N = 20 bits flipped): the
    drive W phi(x) is 0, so eq. 12 and the gated model (gains stay 1/2) only decay, x(t) = cue (1 - dt)^steps,
    keeping the cue's signs (Hamming error 10). The zero state is a saddle, unstable once |x| is small: float32's
    rounding grows to O(1) within t_f = 10 and flips bits, so Fig. 4 integrates these models in float64."""
    rng = np.random.default_rng(5)
    N, dt = 20, 5e-4
    target = rng.choice([-1.0, 1.0], N)
    differ = rng.permutation(N)
    other, cue = target.copy(), target.copy()
    other[differ[:10]] *= -1
    cue[np.concatenate([differ[:5], differ[10:15]])] *= -1
    assert cue @ target == cue @ other == target @ other == 0
    xi = np.stack([target, other])[None]
    decay = (1 - dt) ** 20_000
    hop = pn.integrate_hopfield(xi, cue[None], 1.0, 3.0, dt, 10.0, dtype=pf.FIG4_DTYPES["hopfield"])
    gated = pn.integrate_gated(xi, cue[None], pn.paper_parameters(), dt, 10.0, stop="decided",
                               dtype=pf.FIG4_DTYPES["gated"])
    for x in (hop[0], gated["x"][0]):
        np.testing.assert_allclose(x, cue * decay, rtol=1e-6)
        assert hamming_error(x, target) == 10
    assert not gated["decided"][0]


def test_eq12_hopfield_keeps_stored_patterns_and_padding_is_inert():
    """Eq. 12 at low load from an uncorrupted cue stays on it; a padded stack (zero patterns, gain 0) gives the
    gated run of the unpadded one."""
    xi, cues = _trials(20, 2, 0, 5)
    np.testing.assert_array_equal(hamming_error(pn.integrate_hopfield(xi, cues, 1.0, 3.0, 0.001, 10.0), xi[:, 0]), 0)
    padded = np.concatenate([xi, np.zeros((5, 3, 20))], axis=1)
    live = np.concatenate([np.ones((5, 2), bool), np.zeros((5, 3), bool)], axis=1)
    params = pn.paper_parameters()
    a = pn.integrate_gated(xi, cues, params, 0.001, 2.0)
    b = pn.integrate_gated(padded, cues, params, 0.001, 2.0, live=live)
    np.testing.assert_allclose(a["x"], b["x"], atol=1e-12)
    np.testing.assert_allclose(a["p"], b["p"][:, :2], atol=1e-12)
    assert np.all(b["p"][:, 2:] == 0)


def test_paper_dt_follows_appendix_5():
    assert pn.paper_dt("tau_p", 1.0) == 0.001 and pn.paper_dt("tau_x", 0.01) == pytest.approx(5e-4)
    assert pn.paper_dt("tau_p", 1e-3) == pytest.approx(5e-5) and pn.paper_dt("sigma", 0.01) == 0.001
    assert pn.paper_dt("T", 1e-4) == pn.SMALLEST_DT  # the floor: see SMALLEST_DT


# -- the bands ------------------------------------------------------------------------------------------------
def test_band_statistics_on_a_constructed_sample():
    """0..100 shuffled: the p-th percentile is p, the median 50; a second row scaled by 2 gives 2p."""
    rng = np.random.default_rng(0)
    sample = np.stack([rng.permutation(np.arange(101.0)), 2 * rng.permutation(np.arange(101.0))])
    stats = pf.band_statistics(sample)
    np.testing.assert_allclose(stats["median"], [50, 100])
    np.testing.assert_allclose(stats["mean"], [50, 100])
    for lo, hi in pf.BANDS:
        np.testing.assert_allclose(stats[f"p{lo}"], [lo, 2 * lo])
        np.testing.assert_allclose(stats[f"p{hi}"], [hi, 2 * hi])
    # an uneven sample: linear interpolation between order statistics, as NumPy's default
    odd = pf.band_statistics(np.array([0.0, 10.0, 20.0, 30.0]))
    assert odd["p5"] == pytest.approx(1.5) and odd["p75"] == pytest.approx(22.5) and odd["median"] == 15


# -- the quick figures --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def quick_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("paper")
    assert main(["paper", "all", "--quick", "--no-progress", "--out", str(out)]) == 0
    for extra in ("fig4_baselines", "fig4_correlated"):
        assert main(["paper", extra, "--quick", "--no-progress", "--out", str(out)]) == 0
    return out


def summary(folder, name):
    return pd.read_csv(folder / name / pf.SUMMARY_FILE)


def test_quick_data_has_every_point_and_observable(quick_dir):
    import xarray as xr

    for name in ("fig1", "fig2", "fig3"):
        study = pf.figure_study(name, quick=True)
        varied = study.fixed["varied"]
        table = summary(quick_dir, name)
        np.testing.assert_allclose(table["value"], study.axes[0].values[varied])
        assert (table["parameter"] == varied).all() and (table["sets"] == study.fixed["sets"]).all()
        for obs in pf.DYNAMICS_OBSERVABLES:
            for stat in ("median", "mean", *(f"p{q}" for band in pf.BANDS for q in band)):
                assert table[f"{obs}_{stat}"].notna().all(), (name, obs, stat)
        data = xr.open_dataset(quick_dir / name / "results.nc", engine="scipy")
        assert data["soft_hamming_error"].sizes == {"set": study.fixed["sets"], varied: study.n_points}
        assert (data["status"] == "ok").all()
        # the table's medians are those of the per-trial data
        np.testing.assert_allclose(table["perplexity_median"],
                                   np.median(data["perplexity"].transpose(varied, "set").values, axis=1))
        assert np.all(table["perplexity_p5"] >= 1 - 1e-9) and np.all(table["perplexity_p95"] <= 100 + 1e-9)
    study = pf.figure_study("fig4", quick=True)
    table = summary(quick_dir, "fig4")
    for column in ("model", "N", "K", "flips", "sets", "sigma", "mean_hamming_error"):
        assert column in table
    assert len(table) == study.n_points * len(study.fixed["flips"])
    assert set(table["model"]) == {"hopfield", "naam", "gated"} and (table["N"] == 20).all()
    assert (table["sets"] == study.fixed["sets"]).all() and (table["sigma"] == 3.0).all()
    data = xr.open_dataset(quick_dir / "fig4" / "results.nc", engine="scipy")
    errors = data["hamming_error"].transpose("model", "K", "flips", "set").values
    np.testing.assert_allclose(table["mean_hamming_error"], errors.mean(axis=-1).ravel())


def test_quick_fig4_hopfield_column(quick_dir):
    """Stored patterns are fixed points of eq. 12 at low load (n = 0, K = 2: error 0). At K = 200 = 10 N eq. 12's
    W(1/K) = Xi Xi^T / N has the self-coupling K / N = 10 on its diagonal: the cue itself is then a fixed point,
    so the network corrects nothing (error at least the cue's n flipped bits, 0 only for n = 0), while at K = 2 it
    corrects a 4-bit cue."""
    table = summary(quick_dir, "fig4").set_index(["model", "K", "flips"])
    assert table.loc[("hopfield", 2, 0), "mean_hamming_error"] == 0
    assert table.loc[("hopfield", 2, 4), "mean_hamming_error"] < 1
    for n in (0, 4, 10):
        assert table.loc[("hopfield", 200, n), "mean_hamming_error"] >= n - 0.5
    assert table.loc[("hopfield", 200, 10), "mean_hamming_error"] >= 9


def rerun(quick_dir, name, saved_figures):
    """A rerun of a finished figure with --resume: no point runs again, the table is rewritten the same, and
    the figure is drawn again (returned, as saved)."""
    before = (quick_dir / name / pf.SUMMARY_FILE).read_text()
    points = {p: p.stat().st_mtime_ns for p in (quick_dir / name / "points").glob("*.json")}
    saved_figures.clear()
    assert main(["paper", name, "--quick", "--resume", "--no-progress", "--out", str(quick_dir)]) == 0
    assert (quick_dir / name / pf.SUMMARY_FILE).read_text() == before
    assert {p: p.stat().st_mtime_ns for p in (quick_dir / name / "points").glob("*.json")} == points
    return summary(quick_dir, name), saved_figures["figure.png"]


def test_quick_figures_draw_the_data(quick_dir, saved_figures):
    """Each figure shows its table's values: medians as the lines, each band's edges as the shaded areas, heat
    maps as the grids."""
    for name in ("fig1", "fig2", "fig3"):
        table, fig = rerun(quick_dir, name, saved_figures)
        for ax, obs in zip(fig.axes, pf.DYNAMICS_OBSERVABLES[:3]):
            line = ax.lines[0]
            np.testing.assert_allclose(line.get_xdata(), table["value"])
            np.testing.assert_allclose(line.get_ydata(), table[f"{obs}_median"])
            assert ax.get_xscale() == "log"
            for band, collection in zip(pf.BANDS, ax.collections):
                assert collection.get_label() == f"({band[0]}, {band[1]})"
                y = collection.get_paths()[0].vertices[:, 1]
                x = collection.get_paths()[0].vertices[:, 0]
                for k, value in enumerate(table["value"]):
                    at = np.isclose(x, value)
                    np.testing.assert_allclose(sorted({round(v, 9) for v in y[at]}),
                                               sorted({round(table[f"{obs}_p{band[0]}"][k], 9),
                                                       round(table[f"{obs}_p{band[1]}"][k], 9)}))
    table, fig = rerun(quick_dir, "fig4", saved_figures)
    grids = pf.fig4_grids(table)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 5
    for image, model in zip(images[:3], pf.FIG4_MODELS):
        np.testing.assert_allclose(image.get_array(), grids[model])
    assert len({image.get_clim() for image in images[:3]}) == 1  # one colour scale for the three models
    np.testing.assert_allclose(images[3].get_array(), grids["gated"] - grids["hopfield"])
    np.testing.assert_allclose(images[4].get_array(), grids["gated"] - grids["naam"])


def test_quick_extra_grids_draw_the_data(quick_dir, saved_figures):
    """fig4_baselines adds modern Hopfield and the DAM to Fig. 4's models (the same numbers for those three);
    fig4_correlated draws its five models on correlated patterns. Each heat map is its model's grid, on one
    colour scale; each difference map is gated minus that model."""
    for name, correlation in (("fig4_baselines", 0.0), ("fig4_correlated", pf.CORRELATION)):
        table, fig = rerun(quick_dir, name, saved_figures)
        models = pf.FIG4_MODELS + pf.EXTRA_MODELS
        assert list(table["model"].unique()) == list(models) and (table["correlation"] == correlation).all()
        grids = pf.fig4_grids(table)
        images = [ax.images[0] for ax in fig.axes if ax.images]
        assert len(images) == 2 * len(models) - 1
        for image, model in zip(images, models):
            np.testing.assert_allclose(image.get_array(), grids[model])
        assert len({image.get_clim() for image in images[:len(models)]}) == 1
        others = [m for m in models if m != "gated"]
        for image, model in zip(images[len(models):], others):
            np.testing.assert_allclose(image.get_array(), grids["gated"] - grids[model])
            assert image.axes.get_title() == f"gated - {model}"
        assert (f"correlated {correlation:g}" in fig._suptitle.get_text()) == bool(correlation)
    same = summary(quick_dir, "fig4_baselines").query("model in @pf.FIG4_MODELS").reset_index(drop=True)
    pd.testing.assert_frame_equal(same, summary(quick_dir, "fig4"))
    # stored patterns are fixed points of both discrete baselines at low load
    table = summary(quick_dir, "fig4_baselines").set_index(["model", "K", "flips"])
    assert table.loc[("modern", 2, 0), "mean_hamming_error"] == 0 and table.loc[("dam3", 2, 0), "mean_hamming_error"] == 0


def test_claims_from_the_quick_studies(quick_dir):
    """`paper claims` runs the two claim studies and tests every claim on the folder's tables: eq. 12 on the
    dynamics figures' cues is integrate_hopfield on the same sets (uniform gains: perplexity K), and the horizon
    study reruns Fig. 1's slow values to t_f = 100."""
    assert main(["paper", "claims", "--quick", "--no-progress", "--out", str(quick_dir)]) == 0
    claims = pd.read_csv(quick_dir / "claims.csv")
    assert len(claims) == 8 and set(claims["holds"]) <= {"yes", "no", "partly"}
    assert (quick_dir / "claims.md").read_text().count("\n| Fig.") == 8
    hop = summary(quick_dir, "fig3_hopfield")
    xi, cues = _trials(30, 100, 6, 6, seed=0)
    x = pn.integrate_hopfield(xi, cues, 1.0, 3.0, 0.001, 10.0)
    assert hop["hamming_error_mean"][0] == np.mean(hamming_error(x, xi[:, 0]))
    assert hop["perplexity_median"][0] == pytest.approx(100) and hop["convergence_time_median"].isna().all()
    horizon = summary(quick_dir, "fig1_horizon")
    assert (horizon["t_f"] == 100).all()
    np.testing.assert_allclose(horizon["value"], [10, 10 ** 1.5, 100])
    finite = claims[claims["claim"].str.contains("finite horizon")]["evidence"].iloc[0]
    assert "at t_f = 10," in finite and "at t_f = 100" in finite


def test_interrupted_figure_resumes(tmp_path):
    """Points finished before an interruption are kept and skipped; a damaged point file is run again; the
    resumed study's table equals an uninterrupted run's."""
    from distributed import Client, LocalCluster

    from astrogate.analysis.engine import execute, prepare_folder, run_study
    from astrogate.analysis.spec import shipped_study

    # Fig. 1's study at a short horizon (what resuming keeps does not depend on it)
    study = shipped_study("paper_fig1", {"sets": 3, "t_f": 1.0}, {"tau_p": [0.1, 1.0, 10.0, 100.0]})
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0") as cluster, Client(cluster) as client:
        with prepare_folder(study, tmp_path / "a") as folder:
            first = execute(study, folder, client, progress=False, max_points=2)
        assert first.ran == 2 and not first.complete
        points = sorted((tmp_path / "a" / "points").glob("*.json"))
        points[0].write_text("{half")
        again = run_study(study, tmp_path / "a", client, resume=True, progress=False)
        assert again.complete and (again.skipped, again.ran) == (1, study.n_points - 1)
        whole = run_study(study, tmp_path / "b", client, progress=False)
    assert (tmp_path / "a" / pf.SUMMARY_FILE).read_text() == (tmp_path / "b" / pf.SUMMARY_FILE).read_text()
    assert whole.ran == study.n_points


def test_bad_requests(tmp_path, capsys):
    from astrogate.analysis.spec import parse_study

    with pytest.raises(InputError, match="unknown figure"):
        pf.figure_study("fig9")
    with pytest.raises(InputError, match="unknown paper parameter"):
        pn.paper_parameters(beta=3)
    head = '[study]\nevaluation = "paper_dynamics"\n'
    with pytest.raises(InputError, match=r"spec.toml:\d+: a dynamics figure sweeps one of T, tau_p, tau_x, sigma"):
        parse_study(head + "[axes]\nT = { values = [0.1] }\ntau_p = { values = [1.0] }\n", tmp_path / "spec.toml")
    with pytest.raises(InputError, match=r"spec.toml:4: at .*flips must be at most N = 30, got 40"):
        parse_study(head + "[fixed]\nflips = 40\n[axes]\nT = { values = [0.1] }\n", tmp_path / "spec.toml")
    grid = '[study]\nevaluation = "paper_grid"\n[axes]\nmodel = { values = ["gated"] }\nK = { values = [4] }\n'
    with pytest.raises(InputError, match=r"spec.toml:7: flips: expected a non-empty list of whole numbers"):
        parse_study(grid + "[fixed]\nflips = 3\n", tmp_path / "spec.toml")
    with pytest.raises(InputError, match=r"spec.toml:7: flips: the list repeats a count"):
        parse_study(grid + "[fixed]\nflips = [1, 1]\n", tmp_path / "spec.toml")
    with pytest.raises(InputError, match=r"spec.toml:4: unknown model 'hebb'"):
        parse_study(grid.replace('"gated"', '"hebb"'), tmp_path / "spec.toml")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["paper", "fig1", "--quick", "--out", str(blocker)]) == 2
    assert "is a file" in capsys.readouterr().err
    old = tmp_path / "old"
    (old / "cells" / "fig1").mkdir(parents=True)
    (old / "cells" / "fig1" / "tau_p_1.000000e-01.npz").write_bytes(b"PK")
    assert main(["paper", "fig1", "--quick", "--out", str(old)]) == 2
    assert "earlier astrogate version" in capsys.readouterr().err and not (old / "fig1").exists()


def test_fig4_comparison_counts_cells():
    """A constructed table: the gated model lowest in 3 cells, tied in 1, above NAAM in 1 (at high load)."""
    from astrogate.analysis.paper_claims import claims_table, fig4_comparison

    rows = []
    for K, n, errors in ((2, 0, (0, 0, 0)), (10, 2, (3, 2, 1)), (50, 2, (6, 5, 2)), (150, 4, (9, 8, 1)),
                         (200, 4, (9, 3, 4))):
        rows += [{"model": m, "K": K, "flips": n, "mean_hamming_error": e} for m, e in zip(pf.FIG4_MODELS, errors)]
    table = pd.DataFrame(rows)
    c = fig4_comparison(table)
    assert (c["cells"], c["gated_lowest"], c["tied"], c["gated_above"]) == (5, 3, 1, 1)
    assert c["gated_above_naam"] == 1 and c["gated_above_hopfield"] == 0
    assert c["worst_cell"] == {"K": 200, "flips": 4, "gap": -1.0}
    assert c["advantage_by_load"]["K <= 20"] == pytest.approx(0.5)
    claims = claims_table({"fig4": table})
    assert [row["holds"] for row in claims] == ["no", "yes"]  # not lowest everywhere; largest gain at K > 100


@pytest.mark.brian2
@pytest.mark.compile
def test_one_point_of_each_figure_on_the_brian2_network_agrees(tmp_path):
    """cpp_standalone, the points of Figs. 1-3 one build re-run with run_args: the same Hamming errors as the
    batched NumPy path on the same pattern sets and cues, soft errors within 1e-6."""
    from astrogate.analysis.paper_claims import brian2_check

    rows = brian2_check(sets=2, build_dir=str(tmp_path))
    assert [row["figure"] for row in rows] == ["fig1", "fig2", "fig3", "fig4"]
    for row in rows:
        assert row["hamming_errors_agree"] and row["largest_soft_error_difference"] < 1e-6, row
    assert len(list(tmp_path.rglob("build-*/main"))) == 2  # one build per network size


def test_a_quick_figures_folder_reads_back_as_its_study(quick_dir):
    """A shipped study changed by options (--quick) keeps its spec copy: load_folder (and `astrogate plot`) read
    the folder back as the study that ran."""
    from astrogate.analysis.engine import load_folder
    from astrogate.analysis.study import definition_hash

    study, data, table, damaged = load_folder(quick_dir / "fig1")
    assert definition_hash(study) == definition_hash(pf.figure_study("fig1", quick=True)) and not damaged
    assert data["perplexity"].sizes == {"set": 6, "tau_p": 4} and len(table) == 24
