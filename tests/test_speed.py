"""astrogate bench speed: the table, the plot and the reported rows (never timings: those belong in the
benchmark's output, not in tests)."""

import csv
import json
import math

import numpy as np
import pytest

from astrogate.analysis.speed import CSV_COLUMNS, NAAM_REFERENCE_STEP, fit_exponents, naam_step_estimate
from astrogate.main import main
from astrogate.models.baselines import NeuronAstrocyteMemory, naam_stepper

TINY = "200:20,400:30"


def read_rows(out):
    with open(out / "speed.csv") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == CSV_COLUMNS
        return list(reader)


def check_measured(rows, simulators):
    for row in rows:
        if row["simulator"] in simulators:
            assert row["status"] == "measured", row
            for key in ("seconds_per_step", "ratio_to_limit", "peak_rss_mb"):
                value = float(row[key])
                assert math.isfinite(value) and value > 0, (key, row)


def test_quick_numpy_table_plot_and_unmeasured_rows(tmp_path, capsys):
    out = tmp_path / "speed"
    argv = ["bench", "speed", "--sizes", TINY, "--simulators", "numpy,batched,cuda,gpu_limit,naam",
            "--repeats", "1", "--out", str(out)]
    assert main(argv) == 0
    rows = read_rows(out)
    sims = {row["simulator"] for row in rows}
    assert {"matvec_limit", "numpy_reference", "numpy_batched_B32"} <= sims or {"matvec_limit", "numpy_reference"} <= sims
    assert {(int(r["N"]), int(r["K"])) for r in rows} == {(200, 20), (400, 30)}
    batched_rows = {s for s in sims if s.startswith("numpy_batched")}
    check_measured(rows, {"matvec_limit", "numpy_reference", "naam"} | batched_rows)
    batched = [r for r in rows if r["simulator"].startswith("numpy_batched")]
    assert batched and all(float(r["trials_per_second"]) > 0 and float(r["fraction_of_gemm_peak"]) > 0 for r in batched)
    # nothing is skipped silently: a row says why it was not measured
    for row in rows:
        if row["simulator"] in ("cuda_standalone", "gpu_matvec_limit") and row["status"] != "measured":
            assert row["status"].startswith("not measured") and row["seconds_per_step"] == ""
    assert (out / "speed.png").stat().st_size > 0 and (out / "speed.json").exists()
    printed = capsys.readouterr().out
    assert "x limit" in printed and "exponent of time per step" in printed


def test_sizes_over_the_memory_cap_are_reported_not_run(tmp_path):
    out = tmp_path / "speed"
    assert main(["bench", "speed", "--sizes", "100000:10000", "--simulators", "numpy", "--memory-cap-gb", "1",
                 "--out", str(out)]) == 0
    rows = read_rows(out)
    assert rows and all(r["status"].startswith("not measured: estimated") for r in rows)


def test_naam_rows_and_their_exponents_in_N_and_K(tmp_path, capsys):
    out = tmp_path / "speed"
    assert main(["bench", "speed", "--sizes", "100:10,200:10,200:20", "--simulators", "naam", "--repeats", "1",
                 "--out", str(out)]) == 0
    rows = read_rows(out)
    assert [(r["N"], r["K"]) for r in rows if r["simulator"] == "naam"] == [("100", "10"), ("200", "10"), ("200", "20")]
    check_measured(rows, {"matvec_limit", "naam"})
    fits = json.loads((out / "speed.json").read_text())["naam_exponents"]
    assert set(fits["in_N"]) == {"K=10"} and set(fits["in_K"]) == {"N=200"}
    assert fits["in_N"]["K=10"]["points"] == 2 and math.isfinite(fits["in_K"]["N=200"]["exponent"])
    printed = capsys.readouterr().out
    assert "exponent of NAAM's time per step in N" in printed and "exponent of NAAM's time per step in K" in printed


def test_naam_over_the_memory_cap_is_reported_not_run(tmp_path):
    """N x N processes and synapses: 20000 neurons need about 20 GB for NAAM, 5 MB for the limit."""
    out = tmp_path / "speed"
    # two sizes: a plot of one measured size alone sometimes warns in matplotlib's tight_layout
    assert main(["bench", "speed", "--sizes", "20000:10,30000:10", "--simulators", "naam", "--memory-cap-gb", "1",
                 "--out", str(out)]) == 0
    rows = read_rows(out)
    check_measured(rows, {"matvec_limit"})
    naam = [r for r in rows if r["simulator"] == "naam"]
    assert len(naam) == 2
    for row in naam:
        assert row["status"].startswith("not measured: estimated") and "memory cap 1 GB" in row["status"]
        assert row["seconds_per_step"] == ""


def test_naam_over_the_time_cap_is_reported_not_run(tmp_path):
    out = tmp_path / "speed"
    assert main(["bench", "speed", "--sizes", "1000:100,1000:200", "--simulators", "naam", "--naam-time-cap-s",
                 "0.01", "--out", str(out)]) == 0
    naam = [r for r in read_rows(out) if r["simulator"] == "naam"]
    assert len(naam) == 2
    for row in naam:
        assert row["status"].startswith("not measured: estimated") and "time cap 0.01 s" in row["status"]
        assert row["seconds_per_step"] == ""


def test_naam_step_estimate_scales_as_N_squared_and_K_beyond_the_measured_K():
    measured = [(1000, 100, 0.1)]
    assert naam_step_estimate(2000, 100, measured) == pytest.approx(0.4)
    assert naam_step_estimate(1000, 1000, measured) == pytest.approx(1.0)
    assert naam_step_estimate(2000, 50, measured) == pytest.approx(0.4)  # the O(N^2) part does not shrink with K
    assert naam_step_estimate(2000, 100, measured + [(2000, 100, 0.3)]) == pytest.approx(0.3)  # the tightest bound
    N, K, t = NAAM_REFERENCE_STEP
    assert naam_step_estimate(N, K, []) == t


def test_naam_stepper_takes_one_step_of_the_documented_dynamics():
    """One call = one forward-Euler step of NeuronAstrocyteMemory's equations, with the tensor T built."""
    stepper = naam_stepper(12, 3, seed=4)
    model, state = stepper.model, stepper.state
    x, p, s = state.x[0].copy(), state.p[0].copy(), state.s[0].copy()
    xi, N = model.xi, model.N
    T = np.einsum("mi,mj,mk,ml->ijkl", xi, xi, xi, xi) / N**3
    v = np.tanh(model.gain * x)
    x1 = x + model.dt * (s @ v - x)
    p1 = p + model.dt * (np.outer(v, v) - p) / model.tau_p
    s1 = s + model.dt * (np.einsum("ijkl,kl->ij", T, np.tanh(p)) - s) / model.tau_s
    stepper()
    for got, want in ((state.x[0], x1), (state.p[0], p1), (state.s[0], s1), (state.v[0], np.tanh(model.gain * x1))):
        assert np.allclose(got, want, rtol=1e-12, atol=1e-12)


def test_naam_stepper_follows_retrieve():
    """n stepper calls and retrieve capped at n steps (never settling: tol 0) reach the same neurons."""
    stepper = naam_stepper(40, 4, seed=6, flip=0.2)
    model = stepper.model
    cue = stepper.state.x / model.cue_scale
    assert set(np.unique(cue)) == {-1.0, 1.0} and np.sum(cue[0] != model.xi[0]) == 8  # pattern 0, 20 % flipped
    done, changed = 0, False
    for n in (1, 5, 30):
        for _ in range(n - done):
            stepper()
        done = n
        result = NeuronAstrocyteMemory(model.xi, max_steps=n, tol=0.0).retrieve(cue)
        assert result.steps[0] == n and not result.converged[0]
        assert np.array_equal(result.states, np.sign(stepper.state.x))
        changed |= not np.array_equal(result.states, np.sign(cue))
    assert changed  # the comparison covers neurons that flipped back towards the pattern


@pytest.mark.parametrize("argv, message", [
    (["--sizes", "1000x100"], "is not N:K"),
    (["--naam-time-cap-s", "0"], "--naam-time-cap-s must be positive"),
    (["--simulators", "numpy,fortran"], "unknown fortran"),
    (["--repeats", "0"], "--repeats must be at least 1"),
])
def test_bad_options_are_one_line_errors(argv, message, tmp_path, capsys):
    assert main(["bench", "speed", *argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_exponent_of_a_linear_cost_is_one():
    rows = [{"simulator": "s", "N": n, "K": k, "seconds_per_step": 3e-9 * n * k}
            for n, k in ((1000, 100), (1000, 1000), (10000, 1000))]
    fits = fit_exponents(rows)["s"]
    assert fits["all_sizes"]["exponent"] == pytest.approx(1.0)


@pytest.mark.brian2
@pytest.mark.compile
def test_brian2_runtime_and_cpp_standalone_rows(tmp_path):
    out = tmp_path / "speed"
    assert main(["bench", "speed", "--sizes", "300:20", "--simulators", "runtime,cpp", "--repeats", "1",
                 "--out", str(out)]) == 0
    rows = read_rows(out)
    check_measured(rows, {"matvec_limit", "brian2_runtime_cython", "cpp_standalone_1thread"})
    cpp = next(r for r in rows if r["simulator"] == "cpp_standalone_1thread")
    assert float(cpp["compile_seconds"]) > 0 and float(cpp["synaptic_mb"]) > 0


@pytest.mark.brian2
def test_overlap_layouts_give_identical_trajectories():
    """The benchmark's 'by_neuron' synapse order sums each overlap in the same order as the default."""
    import brian2 as b2
    import numpy as np

    from astrogate.models.parameters import Parameters
    from astrogate.network import builder, devices

    rng = np.random.default_rng(5)
    xi = rng.choice([-1.0, 1.0], size=(12, 25))
    u0 = 0.5 * xi[3] * np.where(rng.random(25) < 0.2, -1.0, 1.0)
    params = Parameters(dt=0.1)
    finals = {}
    for layout in ("by_pattern", "by_neuron"):
        devices.activate(devices.DeviceChoice("runtime", "numpy"), params.dt)
        handles = builder.build_network(xi, params, overlap_layout=layout)
        builder.apply_state(builder.state_values(handles, xi, u0))
        handles.net.run(5 * b2.ms)
        finals[layout] = np.concatenate([handles.neurons.u[:], handles.astrocytes.g[:]])
    assert np.array_equal(finals["by_pattern"], finals["by_neuron"])
