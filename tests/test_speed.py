"""astrogate bench speed: the table, the plot and the reported rows (never timings: those belong in the
benchmark's output, not in tests)."""

import csv
import math

import pytest

from astrogate.analysis.speed import CSV_COLUMNS, fit_exponents
from astrogate.main import main

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
    check_measured(rows, {"matvec_limit", "numpy_reference"} | {s for s in sims if s.startswith("numpy_batched")})
    batched = [r for r in rows if r["simulator"].startswith("numpy_batched")]
    assert batched and all(float(r["trials_per_second"]) > 0 and float(r["fraction_of_gemm_peak"]) > 0 for r in batched)
    # nothing is skipped silently: a row says why it was not measured
    for row in rows:
        if row["simulator"] in ("cuda_standalone", "gpu_matvec_limit", "naam") and row["status"] != "measured":
            assert row["status"].startswith(("not measured", "not available")) and row["seconds_per_step"] == ""
    assert (out / "speed.png").stat().st_size > 0 and (out / "speed.json").exists()
    printed = capsys.readouterr().out
    assert "x limit" in printed and "exponent of time per step" in printed


def test_sizes_over_the_memory_cap_are_reported_not_run(tmp_path):
    out = tmp_path / "speed"
    assert main(["bench", "speed", "--sizes", "100000:10000", "--simulators", "numpy", "--memory-cap-gb", "1",
                 "--out", str(out)]) == 0
    rows = read_rows(out)
    assert rows and all(r["status"].startswith("not measured: estimated") for r in rows)


@pytest.mark.parametrize("argv, message", [
    (["--sizes", "1000x100"], "is not N:K"),
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
