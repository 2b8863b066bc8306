"""Metrics, confidence intervals, pairing, config errors and `astrogate bench retrieval --quick` end to end."""

import numpy as np
import pandas as pd
import pytest

from astrogate.analysis.benchmark import cap_reason, cell_rng, load_benchmark_config, make_problem, models_of
from astrogate.analysis.spec import study_from_tables


def config_from_dict(data: dict, source: str = "<config>"):
    return study_from_tables(data, source)
from astrogate.analysis.datasets import load_image_set
from astrogate.analysis.metrics import bootstrap_interval, summarise, trial_metrics, wilson_interval
from astrogate.errors import InputError
from astrogate.cli.main import main

REQUIRED_COLUMNS = ["model", "family", "correlation", "load", "corruption", "trials", "exact_match",
                    "nearest_accuracy", "mean_overlap"]


def test_wilson_interval_matches_the_textbook_values():
    low, high = wilson_interval(8, 10)  # Wilson (1927) score interval, z = 1.96: 0.490 to 0.943
    assert low == pytest.approx(0.4902, abs=1e-3) and high == pytest.approx(0.9433, abs=1e-3)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-3)
    assert np.isnan(wilson_interval(0, 0)[0])


def test_bootstrap_interval_covers_the_mean_and_narrows_with_more_data():
    rng = np.random.default_rng(0)
    small, large = rng.normal(1.0, 1.0, 30), rng.normal(1.0, 1.0, 3000)
    lo_s, hi_s = bootstrap_interval(small)
    lo_l, hi_l = bootstrap_interval(large)
    assert lo_s < small.mean() < hi_s and lo_l < large.mean() < hi_l
    assert hi_l - lo_l < (hi_s - lo_s) / 4
    assert bootstrap_interval(np.full(5, 2.0)) == (2.0, 2.0)


def test_trial_metrics_classify_target_sign_flip_mixture_and_other_memory():
    rng = np.random.default_rng(1)
    xi = rng.choice([-1.0, 1.0], size=(10, 201))
    mixture = np.sign(xi[0] + xi[1] + xi[2])
    states = np.stack([xi[0], -xi[0], mixture, xi[4]])
    targets = np.zeros(4, int)
    cues = np.stack([xi[0]] * 4)
    m = trial_metrics(states, xi, targets, cues)
    assert m["exact_match"].tolist() == [True, False, False, False]
    # the mixture is equally close (overlap 1/2) to xi[0], xi[1] and xi[2]: its nearest-memory verdict is a tie
    assert m["nearest_accuracy"][[0, 1, 3]].tolist() == [True, False, False]
    assert m["sign_flip"].tolist() == [False, True, False, False]
    assert m["mixture"].tolist() == [False, False, True, False]
    assert m["improvement"][0] == pytest.approx(0.0) and m["final_overlap"][1] == pytest.approx(-1.0)
    row = summarise({**m, "steps": np.arange(4), "converged": np.array([1, 1, 0, 1], bool)})
    assert row["trials"] == 4 and row["exact_match"] == 0.25 and row["not_converged"] == 0.25
    assert row["exact_match_lo"] < 0.25 < row["exact_match_hi"]


def test_trial_metrics_give_the_papers_observables():
    xi = np.array([[1.0, 1.0, -1.0, -1.0], [1.0, -1.0, 1.0, -1.0]])
    rates = np.array([[0.9, 1.0, -1.0, 0.2], [1.0, -1.0, 1.0, -1.0]])  # one wrong sign, then exact
    gains = np.array([[0.5, 0.5], [1.0, 0.0]])
    m = trial_metrics(np.sign(rates), xi, [0, 1], xi[[0, 1]], gains=gains, rates=rates)
    # eq. 13: (0.1 + 0 + 0 + 1.2) / 2; eq. 15: one bit off by 2, halved; eq. 14: exp(ln 2) and exp(0)
    assert m["soft_hamming_error"] == pytest.approx([0.65, 0.0]) and m["hamming_error"].tolist() == [1.0, 0.0]
    assert m["perplexity"] == pytest.approx([2.0, 1.0])
    assert np.isnan(trial_metrics(rates, xi, [0, 1], xi[[0, 1]])["perplexity"]).all()  # no gains: NaN
    assert trial_metrics(rates, xi, [0, 1], xi[[0, 1]])["soft_hamming_error"] == pytest.approx([0.65, 0.0])


def test_the_defaults_configs_run_the_full_grid_and_models_select(tmp_path, capsys):
    from astrogate.analysis.benchmark import select_models
    from astrogate.configs import config_path

    from astrogate.analysis.benchmark import models_of

    full = load_benchmark_config("full")
    defaults = load_benchmark_config(config_path("bench_paper_defaults_full.toml"))
    # the same grid, cells, seeds and tuning: only the models differ
    assert (defaults.fixed, defaults.axes, defaults.settings["tuning"]) == (full.fixed, full.axes,
                                                                            full.settings["tuning"])
    quick = load_benchmark_config(config_path("bench_paper_defaults.toml"))
    paper = {m.name: m for m in models_of(quick)}["gated-paper-protocol"].options
    assert paper["form"] == "replicator" and paper["T"] == 0.01 and paper["dt"] * 1000 == paper["tau_p"]
    gated = select_models(full, ["gated-quadratic", "gated-default", "gated-spiking"])
    assert [m.name for m in models_of(gated)] == ["gated-default", "gated-quadratic", "gated-spiking"]
    with pytest.raises(InputError, match="takes its parameters from 'gated-quadratic'"):
        select_models(full, ["gated-spiking"])
    with pytest.raises(InputError, match=r"model\(s\) nonsense not in config"):
        select_models(full, ["naam", "nonsense"])
    assert main(["bench", "retrieval", "--quick", "--models", "cue,nonsense", "--out", str(tmp_path)]) == 2
    assert "nonsense not in config" in capsys.readouterr().err


def test_cells_are_paired_and_tuning_seeds_are_separate():
    a = make_problem("corr:0.4", 50, 100, 8, "flip:0.2", cell_rng(3, "cells", "corr:0.4", 0.5, "flip:0.2", 0))
    b = make_problem("corr:0.4", 50, 100, 8, "flip:0.2", cell_rng(3, "cells", "corr:0.4", 0.5, "flip:0.2", 0))
    c = make_problem("corr:0.4", 50, 100, 8, "flip:0.2", cell_rng(3, "tuning", "corr:0.4", 0.5, "flip:0.2", 0))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_corruptions_and_image_sets():
    digits = load_image_set("digits")
    assert digits.N == 64 and set(np.unique(digits.images)) == {-1.0, 1.0}
    assert len(np.unique(digits.images, axis=0)) == len(digits.images)
    rng = np.random.default_rng(2)
    patterns, targets, cues = make_problem("digits-same", 40, 64, 6, "occlude:0.5", rng)
    image = cues.reshape(-1, 8, 8)
    assert np.all(image[:, 4:] == 0) and np.array_equal(image[:, :4], patterns[targets].reshape(-1, 8, 8)[:, :4])
    assert len(set(digits.labels[[np.flatnonzero((digits.images == p).all(1))[0] for p in patterns[targets]]])) == 1
    _, _, masked = make_problem("iid", 10, 100, 3, "mask:0.3", rng)
    assert np.all(np.sum(masked == 0, axis=1) == 30)
    with pytest.raises(InputError, match="image pattern sets only"):
        make_problem("iid", 10, 100, 3, "occlude:0.5", rng)


def test_config_errors_name_the_file_and_the_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[benchmark]\nN = 10\ninstances = 1\ncues = 2\nloads = [1.0]\npattern_sets = ["iid"]\n'
                    'corruptions = ["flip:0.1"]\nspeed = 3\n[models.cue]\nkind = "cue"\n')
    with pytest.raises(InputError, match=r"bad\.toml:8: unknown key 'speed' in \[benchmark\]"):
        load_benchmark_config(path)
    base = {"benchmark": {"N": 10, "instances": 1, "cues": 2, "loads": [1.0], "pattern_sets": ["iid"],
                          "corruptions": ["flip:0.1"]}, "models": {"cue": {"kind": "cue"}}}
    config_from_dict(base)  # the valid base
    with pytest.raises(InputError, match=r"\[models.x\] unknown kind 'perceptron'"):
        config_from_dict({**base, "models": {"x": {"kind": "perceptron"}}})
    with pytest.raises(InputError, match=r"\[models.x\] .*unexpected keyword argument 'colour'"):
        config_from_dict({**base, "models": {"x": {"kind": "modern", "beta": 1.0, "colour": 2}}})
    with pytest.raises(InputError, match="pattern set .corr:2.: correlation must be"):
        config_from_dict({**base, "benchmark": {**base["benchmark"], "pattern_sets": ["corr:2"]}})
    with pytest.raises(InputError, match="does not exist"):
        load_benchmark_config(tmp_path / "missing.toml")


def test_cli_bad_config_is_one_line_and_exit_2(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("[benchmark\n")
    assert main(["bench", "retrieval", "--config", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("astrogate: error:") and "bad.toml" in err and "\n" not in err


def test_bench_retrieval_quick_end_to_end(tmp_path, saved_figures):
    import xarray as xr

    out = tmp_path / "quick"
    assert main(["bench", "retrieval", "--quick", "--out", str(out), "--no-progress"]) == 0
    table = pd.read_csv(out / "results.csv")
    assert set(REQUIRED_COLUMNS) <= set(table.columns)
    n_models = table["model"].nunique()
    assert len(table) == n_models * len(table.groupby(["pattern_set", "load", "corruption"]))
    ok = table[table["status"] == "ok"]
    assert (ok["trials"] > 0).all() and ok[REQUIRED_COLUMNS[6:]].notna().all().all()
    assert (table.loc[table["status"] != "ok", "trials"] == 0).all()  # caps are rows saying so, not gaps
    oracle = ok[ok["model"] == "oracle"]
    assert (oracle["exact_match"] == oracle["nearest_accuracy"]).all()  # the oracle returns a stored pattern
    cue = ok[ok["model"] == "cue"]
    assert (cue["exact_match"] == 0).all()
    # the paper's observables: the cue's Hamming error is its flips; perplexity only where there are gains
    assert (cue["hamming_error"] == cue["soft_hamming_error"]).all()
    assert cue.loc[cue["corruption"] == "flip:0.2", "hamming_error"].eq(round(0.2 * 64)).all()
    assert ok.loc[ok["model"] == "hopfield", "perplexity"].isna().all()
    gated = ok[ok["model"].str.startswith("gated")]
    assert gated["perplexity"].between(1.0, gated["K"].max()).all() and (gated["convergence_time"] > 0).all()
    for name in ("results.nc", "tuning.json", "summary.json", "gallery.png"):
        assert (out / name).is_file(), name
    # each panel (pattern set, corruption) draws every model's measured loads at its table values
    for metric in ("nearest_accuracy", "exact_match"):
        panels = [ax for ax in saved_figures[f"{metric}_vs_load.png"].axes if ax.get_visible() and ax.lines]
        cells = ok.groupby(["pattern_set", "corruption"])
        assert len(panels) == cells.ngroups
        for ax in panels:
            spec, corruption = ax.get_title().split(", ")
            cell = cells.get_group((spec, corruption))
            drawn = {line.get_label(): line for line in ax.lines if not line.get_label().startswith("_")}
            assert set(drawn) == set(cell["model"])
            for model, rows in cell.groupby("model"):
                rows = rows.sort_values("load")
                np.testing.assert_allclose(drawn[model].get_xdata(), rows["load"])
                np.testing.assert_allclose(drawn[model].get_ydata(), rows[metric])
    ds = xr.open_dataset(out / "results.nc", engine="scipy")
    assert set(ds.sizes) == {"model", "pattern_set", "corruption", "load"}
    # a figure of chosen models only (the results page's baseline figure), from results.csv
    from astrogate.analysis.bench_plots import plot_accuracy_vs_load

    chosen = ["oracle", "hopfield"]
    plot_accuracy_vs_load(table, tmp_path, models=chosen, prefix="two_")
    for ax in saved_figures["two_exact_match_vs_load.png"].axes:
        if ax.get_visible() and ax.lines:
            assert [line.get_label() for line in ax.lines if not line.get_label().startswith("_")] == chosen
    with pytest.raises(InputError, match="models not in the table: naam-typo"):
        plot_accuracy_vs_load(table, tmp_path, models=["oracle", "naam-typo"])


NAAM_CONFIG = """
[benchmark]
seed = 0
N = 16
instances = 1
cues = 4
loads = [0.25, 1.0]
pattern_sets = ["iid"]
corruptions = ["flip:0.1"]

[models.naam]
kind = "naam"
steps = 200
max_K = 8
"""


def test_naam_cost_cap_is_a_skipped_cell_with_its_reason(tmp_path, capsys):
    """K = 4 runs (the authors' dynamics, 200 steps); K = 16 is above max_K = 8: a row saying so, in
    results.csv, summary.json and the command's output."""
    import json

    config = tmp_path / "naam.toml"
    config.write_text(NAAM_CONFIG)
    out = tmp_path / "out"
    assert main(["bench", "retrieval", "--config", str(config), "--out", str(out), "--no-progress"]) == 0
    table = pd.read_csv(out / "results.csv").set_index(["model", "load"])
    ran, capped = table.loc[("naam", 0.25)], table.loc[("naam", 1.0)]
    assert ran["status"] == "ok" and ran["trials"] == 4 and ran["mean_steps"] == 200
    reason = "skipped: K = 16 above this model's cost cap 8"
    assert capped["status"] == reason and capped["trials"] == 0
    summary = json.loads((out / "summary.json").read_text())
    assert f"naam: {reason}" in summary["cost_caps"] and summary["models"]["naam"]["max_K"] == 8
    assert f"cost cap: naam: {reason}" in capsys.readouterr().out


# -- the spiking column (gated_spiking: the gated network with Poisson neurons on Brian2) ---------------

SPIKING_CONFIG = """
[benchmark]
seed = 0
N = 64
instances = 1
cues = 8
loads = [0.3, 1.0]
pattern_sets = ["iid"]
corruptions = ["flip:0.1"]

[models.hopfield]
kind = "hopfield"

[models.gated]
kind = "gated"
beta_times_N = 80.0
tau_g = 2.0
max_duration = 100.0

[models.gated-spiking]
kind = "gated_spiking"
neuron = "poisson"
duration = 50.0
target = "numpy"
params_from = "gated"
max_load = 0.5
"""


@pytest.mark.brian2
def test_spiking_column_retrieves_above_the_classical_capacity_and_reports_its_cap(tmp_path):
    """N = 64, K = 19 (load 0.3, above 0.138), iid patterns, 10 % flips, 8 cues, 50 ms of Poisson neurons
    (runtime/numpy, ~3 s). Measured with seeds 0-9: the spiking column 80/80 exact, classical Hopfield
    0 to 2 of 8 per seed; we assert at least 7/8 for the spiking column. Load 1.0 is above its cap 0.5."""
    import json

    config = tmp_path / "spiking.toml"
    config.write_text(SPIKING_CONFIG)
    out = tmp_path / "out"
    assert main(["bench", "retrieval", "--config", str(config), "--out", str(out), "--no-progress"]) == 0
    table = pd.read_csv(out / "results.csv").set_index(["model", "load"])
    spiking = table.loc[("gated-spiking", 0.3)]
    assert spiking["status"] == "ok" and spiking["trials"] == 8
    assert spiking["exact_match"] >= 7 / 8
    assert table.loc[("hopfield", 0.3), "exact_match"] < 0.5  # the load is beyond the classical network
    assert spiking["mean_steps"] == 500  # the full 50 ms: the spiking network has no early stop
    capped = table.loc[("gated-spiking", 1.0)]
    assert capped["status"] == "skipped: K/N = 1 above this model's cost cap 0.5" and capped["trials"] == 0
    summary = json.loads((out / "summary.json").read_text())
    assert "gated-spiking: skipped: K/N = 1 above this model's cost cap 0.5" in summary["cost_caps"]
    # the rate model's parameters, its run options not
    model = summary["models"]["gated-spiking"]
    assert model["params_from"] == "gated"
    assert model["options"] == {"beta_times_N": 80.0, "tau_g": 2.0, "neuron": "poisson", "duration": 50.0,
                                "target": "numpy"}
    assert json.loads(spiking["options"])["beta"] == 80.0 * 64


def test_tracked_configs_load_and_the_full_grid_has_the_spiking_column():
    from astrogate.configs import config_path

    for name in ("bench_full.toml", "bench_quick.toml", "bench_spiking.toml"):
        load_benchmark_config(config_path(name))
    full = {m.name: m for m in models_of(load_benchmark_config("full"))}
    spiking = full["gated-spiking"]
    assert spiking.kind == "gated_spiking" and spiking.options["neuron"] == "poisson"
    assert spiking.params_from == "gated-quadratic" and full["gated-quadratic"].tune
    assert spiking.max_load < 1 and spiking.max_N <= 100  # capped: it costs ~0.2 s per cue
    naam = full["naam"]  # the authors' NAAM, O(K N^2) a step: K/N up to 2 at N = 100, MNIST (N = 196) up to 1
    assert cap_reason(naam, 2.0, 100, 200) == cap_reason(naam, 1.0, 196, 196) == ""
    # the results page's cap: every load at N = 100 (K/N = 20 is K = 2000), MNIST up to K/N = 10
    assert cap_reason(naam, 20.0, 100, 2000) == cap_reason(naam, 10.0, 196, 1960) == ""
    assert cap_reason(naam, 20.0, 196, 3920).startswith("skipped")


def test_inherit_parameters_takes_the_tuned_model_parameters_only():
    from astrogate.analysis.benchmark import ModelSpec, inherit_parameters

    rate = ModelSpec("rate", "gated", {"beta_times_N": 80.0, "tau_g": 2.0, "similarity": "linear", "max_duration": 50.0})
    spiking = ModelSpec("spk", "gated_spiking", {"beta": 5.0, "duration": 40.0}, params_from="rate")
    _, inherited = inherit_parameters((rate, spiking))
    # its own beta wins over the rate model's beta_times_N; max_duration is a run option of the rate model
    assert inherited.options == {"tau_g": 2.0, "similarity": "linear", "beta": 5.0, "duration": 40.0}


@pytest.mark.parametrize(
    "spec, key, message",
    [
        ({"neuron": "izhikevich"}, "models.spk", "option neuron = 'izhikevich': use one of poisson, lif"),
        ({"device": "cuda_standalone"}, "models.spk", "option device = 'cuda_standalone': use one of runtime, cpp_standalone"),
        ({"duration": -5.0}, "models.spk", "option duration must be a positive number of ms, got -5.0"),
        ({"nu_max": 20000.0}, "models.spk", "cannot fire more than once per step"),
        ({"colour": 2}, "models.spk", "unknown parameter(s): colour"),
        ({"params_from": "hop"}, "models.spk", "params_from must name a model of kind 'gated'"),
        ({"params_from": "rate", "tune": {"tau_g": [2.0, 20.0]}}, "models.spk", "params_from: a model takes its parameters from another model or tunes them, not both"),
    ],
)
def test_spiking_column_bad_options_are_one_line_errors(spec, key, message):
    base = {"benchmark": {"N": 10, "instances": 1, "cues": 2, "loads": [1.0], "pattern_sets": ["iid"],
                          "corruptions": ["flip:0.1"]},
            "models": {"hop": {"kind": "hopfield"}, "rate": {"kind": "gated"},
                       "spk": {"kind": "gated_spiking", **spec}},
            "tuning": {"cells": [{"pattern_set": "iid", "load": 1.0, "corruption": "flip:0.1"}]}}
    with pytest.raises(InputError) as error:
        config_from_dict(base, "bench.toml")
    text = str(error.value)
    assert text.startswith("bench.toml:1: ") and f"[{key}]" in text and message in text and "\n" not in text


def test_spiking_column_bad_neuron_on_the_command_line(tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text(SPIKING_CONFIG.replace('neuron = "poisson"', 'neuron = "izhikevich"'))
    assert main(["bench", "retrieval", "--config", str(config), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "models.gated-spiking" in err and "option neuron = 'izhikevich'" in err


def test_head_to_head_sorts_cells_by_disjoint_intervals():
    from astrogate.analysis.benchmark import head_to_head

    def row(model, spec, lo, hi, status="ok"):
        return {"model": model, "pattern_set": spec, "corruption": "flip:0.2", "load": 2.0, "status": status,
                "exact_match": (lo + hi) / 2, "exact_match_lo": lo, "exact_match_hi": hi}

    table = pd.DataFrame([row("gated", "a", 0.9, 1.0), row("naam", "a", 0.2, 0.5),       # above
                          row("gated", "b", 0.4, 0.8), row("naam", "b", 0.7, 0.9),       # overlap
                          row("gated", "c", 0.0, 0.1), row("naam", "c", 0.3, 0.6),       # below
                          row("gated", "d", 0.9, 1.0), row("naam", "d", 0.0, 0.0, "skipped: K = 300"),
                          row("gated", "e", 0.5, 0.5), row("naam", "e", 0.5, 0.5)])      # touching: overlap
    verdict = head_to_head(table, "gated", "naam")
    assert verdict == {"above": [("a", "flip:0.2", 2.0)], "overlap": [("b", "flip:0.2", 2.0), ("e", "flip:0.2", 2.0)],
                       "below": [("c", "flip:0.2", 2.0)], "skipped": [("d", "flip:0.2", 2.0)]}
    swapped = head_to_head(table, "naam", "gated")
    assert swapped["above"] == verdict["below"] and swapped["below"] == verdict["above"]
    with pytest.raises(InputError, match="'hopfield' is not in the table"):
        head_to_head(table, "hopfield", "naam")
    with pytest.raises(InputError, match="metric 'final_overlap'"):
        head_to_head(table, "gated", "naam", metric="final_overlap")
