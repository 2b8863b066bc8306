"""astrogate bench speed: the table, the plot and the reported rows (never timings: those belong in the
benchmark's output, not in tests)."""

import csv
import json
import math

import numpy as np
import pytest

from astrogate.analysis.io import write_csv
from astrogate.analysis.speed import CSV_COLUMNS, NAAM_REFERENCE_STEP, fit_exponents, naam_step_estimate
from astrogate.cli.main import main
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


def test_quick_numpy_table_plot_and_unmeasured_rows(tmp_path, capsys, saved_figures):
    out = tmp_path / "speed"
    argv = ["bench", "speed", "--sizes", TINY, "--simulators", "numpy,batched,cuda,gpu_limit,naam",
            "--repeats", "1", "--out", str(out)]
    assert main(argv) == 0
    rows = read_rows(out)
    sims = {row["simulator"] for row in rows}
    assert {"matvec_limit", "numpy_reference", "naam"} <= sims
    assert {(int(r["N"]), int(r["K"])) for r in rows} == {(200, 20), (400, 30)}
    batched_rows = {s for s in sims if s.startswith("numpy_batched")}
    check_measured(rows, {"matvec_limit", "numpy_reference", "naam"} | batched_rows)
    batched = [r for r in rows if r["simulator"].startswith("numpy_batched")]
    assert batched and all(float(r["trials_per_second"]) > 0 and float(r["fraction_of_gemm_peak"]) > 0 for r in batched)
    # nothing is skipped silently: a row says why it was not measured
    for row in rows:
        if row["simulator"] in ("cuda_standalone", "gpu_matvec_limit") and row["status"] != "measured":
            assert row["status"].startswith("not measured") and row["seconds_per_step"] == ""
    assert (out / "speed.json").exists()
    assert_plot_shows_rows(saved_figures["speed.png"], rows)
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


def test_naam_stepper_follows_integrate():
    """n stepper calls = NeuronAstrocyteMemory.integrate with n steps: the speed rows time the benchmark's Euler
    step (itself checked against the equations with T built in tests/test_baselines.py)."""
    stepper = naam_stepper(40, 4, seed=6, flip=0.2)
    model = stepper.model
    cue = stepper.state.x.copy()
    assert set(np.unique(cue)) == {-1.0, 1.0} and np.sum(cue[0] != model.xi[0]) == 8  # pattern 0, 20 % flipped
    done = 0
    for n in (1, 5, 30):
        for _ in range(n - done):
            stepper()
        done = n
        assert np.array_equal(NeuronAstrocyteMemory(model.xi, steps=n).integrate(cue), stepper.state.x)
    assert not np.allclose(stepper.state.x, cue)


@pytest.mark.parametrize("argv, message", [
    (["--sizes", "1000x100"], "is not N:K"),
    (["--naam-time-cap-s", "0"], "argument --naam-time-cap-s: value must be a positive number"),
    (["--simulators", "numpy,fortran"], "unknown fortran"),
    (["--repeats", "0"], "argument --repeats: value must be at least 1"),
])
def test_bad_options_are_one_line_errors(argv, message, tmp_path, capsys):
    try:
        code = main(["bench", "speed", *argv, "--out", str(tmp_path)])
    except SystemExit as exc:  # argparse's own errors (the option types)
        code = exc.code
    assert code == 2
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
    from astrogate.network import devices
    from astrogate.network.memory import AstrocyteGatedMemory

    rng = np.random.default_rng(5)
    xi = rng.choice([-1.0, 1.0], size=(12, 25))
    u0 = 0.5 * xi[3] * np.where(rng.random(25) < 0.2, -1.0, 1.0)
    params = Parameters(dt=0.1)
    finals = {}
    for layout in ("by_pattern", "by_neuron"):
        devices.activate(devices.DeviceChoice("runtime", "numpy"), params.dt)
        memory = AstrocyteGatedMemory(xi, params, overlap_layout=layout)
        memory.apply_state(memory.state_values(u0=u0))
        b2.Network(memory).run(5 * b2.ms)
        finals[layout] = np.concatenate([memory.neurons.u[:], memory.astrocytes.g[:]])
    assert np.array_equal(finals["by_pattern"], finals["by_neuron"])


# -- standalone variants, the GPU rows and the targets, without a GPU ----------------------------------------

from astrogate.analysis import speed  # noqa: E402


def test_standalone_variants_are_named_per_device():
    assert speed.StandaloneVariant().name == "cpp_standalone_1thread"
    assert speed.StandaloneVariant(threads=2, gating="wired").name == "cpp_standalone_2threads_wired"
    assert speed.cuda_variant().name == "cuda_standalone"
    assert speed.cuda_variant(gating="wired").name == "cuda_standalone_wired"
    assert speed.cuda_variant(weight_dtype="float32").name == "cuda_standalone_float32"
    with pytest.raises(speed.InputError, match="cpp_standalone only"):
        speed.cuda_variant(threads=2)
    full = speed.full_config()
    target = speed.TARGET_SIZE
    assert [v.name for v in full.variants("cuda", (1000, 100))] == ["cuda_standalone", "cuda_standalone_wired"]
    assert "cpp_standalone_1thread_by_pattern" in [v.name for v in full.variants("cpp", target)]
    assert "cpp_standalone_1thread_by_pattern" not in [v.name for v in full.variants("cpp", (1000, 100))]
    names = {v.name for sim in ("cpp", "cuda") for v in speed.targets_config().variants(sim, target)}
    assert names == {"cpp_standalone_1thread", "cpp_standalone_2threads", "cpp_standalone_1thread_wired",
                     "cpp_standalone_2threads_wired", "cuda_standalone", "cuda_standalone_wired"}
    assert speed.targets_config().sizes == [target]


def test_standalone_steps_give_cuda_longer_runs():
    config = speed.full_config()
    N, K = speed.TARGET_SIZE
    assert speed.standalone_steps(speed.StandaloneVariant(), N, K, config) == 100
    assert speed.standalone_steps(speed.cuda_variant(), N, K, config) == 1000
    assert speed.standalone_steps(speed.cuda_variant(), 1000, 100, config) == 20000


def test_memory_estimates_per_gating_and_device():
    N, K = 10**4, 10**4
    factorised, wired = speed.estimated_bytes("brian2", N, K), speed.estimated_bytes("brian2", N, K, "wired")
    # the measurement process holds the connect(i, j) arrays of wired gating: a little more than factorised
    assert factorised == 110 * N * K and wired == 120 * N * K
    # brian2cuda's host adds a std::map over the synapses of one Synapses (N K factorised, N K / 2 wired)
    assert speed.estimated_bytes("cuda", N, K) == (110 + 48) * N * K
    assert speed.estimated_bytes("cuda", N, K, "wired") == (120 + 24) * N * K
    assert speed.estimated_gpu_bytes(N, K, "wired") < speed.estimated_gpu_bytes(N, K) < 80e9


def write_cuda_run_file(path, loop=0.05, host=0.002, context=500 * 2**20, after=900 * 2**20):
    path.write_text(f"loop_seconds {loop}\nbrian2cuda_loop_seconds {host}\ngpu_used_bytes_context {context}\n"
                    f"gpu_used_bytes_after_loop {after}\ngpu_total_bytes {80 * 2**30}\n")
    return path


def test_the_cuda_run_file_is_read_and_summarised(tmp_path):
    runs = [speed.read_cuda_run_file(write_cuda_run_file(tmp_path / f"run{i}.txt", loop=0.05 + 0.01 * i,
                                                         after=(900 + i) * 2**20)) for i in range(3)]
    assert runs[0]["loop_seconds"] == 0.05 and runs[0]["gpu_total_bytes"] == 80 * 2**30
    summary = speed.cuda_summary(runs, n_steps=1000)
    assert summary["gpu_memory_mb"] == pytest.approx(402) and summary["gpu_context_mb"] == pytest.approx(500)
    assert summary["brian2cuda_seconds_per_step"] == pytest.approx(2e-6)
    (tmp_path / "bad.txt").write_text("loop_seconds 1\n")
    with pytest.raises(RuntimeError, match="gpu_used_bytes_after_loop"):
        speed.read_cuda_run_file(tmp_path / "bad.txt")


def test_cuda_instrumentation_times_the_loop_between_two_synchronisations():
    code = speed.cuda_instrumentation(gpu_id=0)
    assert set(code) == {"before_start", "before_network_run", "after_network_run"}
    for slot in ("before_network_run", "after_network_run"):
        assert code[slot].index("cudaDeviceSynchronize") < code[slot].index("clock_gettime")
    assert speed.CUDA_RUN_FILE in code["after_network_run"] and "cudaMemGetInfo" in code["before_start"]


def test_a_cuda_row_is_compared_with_the_gpu_limit():
    result = {"seconds_per_step": 2e-4, "build_seconds": 3.0, "compile_seconds": 60.0, "binary_peak_rss_mb": 900.0,
              "process_peak_rss_mb": 1000.0, "gpu_memory_mb": 250.0, "gpu_context_mb": 520.0,
              "brian2cuda_seconds_per_step": 1e-5, "steps": 1000}
    row = speed.standalone_row_values(speed.cuda_variant(gating="wired"), 10**4, 10**3, result, limit=5e-5)
    assert row["simulator"] == "cuda_standalone_wired" and row["ratio_to_limit"] == pytest.approx(4.0)
    assert row["peak_rss_mb"] == 900.0 and row["gpu_memory_mb"] == 250.0 and row["threads"] == 1
    assert row["synaptic_mb"] == pytest.approx(2 * 5 * 10**6 * 8 / 2**20)
    for words in ("host memory of the binary", "gpu_matvec_limit", "520 MB", "cudaDeviceSynchronize", "10.0 us",
                  "wired gating"):
        assert words in row["note"], words
    unmeasured = speed.standalone_row_values(speed.cuda_variant(), 10**4, 10**3, {"status": "not measured: no GPU"}, None)
    assert unmeasured["seconds_per_step"] == "" and unmeasured["ratio_to_limit"] == ""
    assert unmeasured["status"] == "not measured: no GPU"
    # without /usr/bin/time the peak is the Python process's, and the note says so
    cpp = speed.standalone_row_values(speed.StandaloneVariant(threads=2), 1000, 100,
                                      {"seconds_per_step": 1e-3, "process_peak_rss_mb": 300.0}, limit=1e-4)
    assert cpp["peak_rss_mb"] == 300.0 and cpp["note"].startswith("peak: the Python process")
    assert cpp["ratio_to_limit"] == pytest.approx(10.0) and "OpenMP" in cpp["note"]


def synthetic_rows(gpu: bool):
    """Rows of one run at the target size: CPU limit 8 ms, cpp 43 / 24 / 10 ms (2 threads, wired) and a 4-thread
    row (not a target's), batched 0.73 of the GEMM peak, and with a GPU the GPU limit 0.06 ms and cuda 0.4 / 0.15 ms."""
    N, K = speed.TARGET_SIZE

    def row(sim, seconds, threads="", status="measured", **extra):
        return speed._row(sim, N, K, seconds_per_step=seconds, threads=threads, status=status, **extra)

    no_gpu = "not measured: no GPU"
    return [row("matvec_limit", 8e-3, 2), row("numpy_batched_B128", 7e-4, 2, fraction_of_gemm_peak=0.73),
            row("cpp_standalone_1thread", 43e-3, 1), row("cpp_standalone_2threads", 24e-3, 2),
            row("cpp_standalone_2threads_wired", 10e-3, 2), row("cpp_standalone_4threads_wired", 4e-3, 4),
            row("gpu_matvec_limit", 6e-5 if gpu else "", status="measured" if gpu else no_gpu),
            row("cuda_standalone", 4e-4 if gpu else "", 1, status="measured" if gpu else no_gpu),
            row("cuda_standalone_wired", 1.5e-4 if gpu else "", 1, status="measured" if gpu else no_gpu),
            speed._row("cpp_standalone_1thread", 1000, 100, seconds_per_step=1e-6, threads=1, status="measured")]


def test_targets_from_the_rows_of_a_run_with_a_gpu():
    t = speed.targets(synthetic_rows(gpu=True))
    assert (t["N"], t["K"]) == speed.TARGET_SIZE
    # the fastest cpp row with 1 or 2 threads (not the 4-thread one, not another size's)
    assert t["cpp_ratio_to_limit"]["value"] == pytest.approx(1.25) and t["cpp_ratio_to_limit"]["met"]
    assert t["cpp_ratio_to_limit"]["rows"] == ["cpp_standalone_2threads_wired", "matvec_limit"]
    assert t["batched_fraction_of_gemm_peak"]["value"] == 0.73 and t["batched_fraction_of_gemm_peak"]["met"]
    speedup = t["cuda_speedup_over_cpp"]
    assert speedup["value"] == pytest.approx(10e-3 / 1.5e-4) and speedup["met"]
    assert speedup["rows"] == ["cuda_standalone_wired", "cpp_standalone_2threads_wired"]
    ratio = t["cuda_ratio_to_gpu_limit"]
    assert ratio["value"] == pytest.approx(2.5) and ratio["met"] and ratio["status"] == "measured"
    text = "\n".join(speed.targets_report(t))
    assert "66.7x (cuda_standalone_wired vs cpp_standalone_2threads_wired): met" in text
    assert "2.5x (cuda_standalone_wired vs gpu_matvec_limit): met" in text


def test_targets_not_met_and_not_measured():
    rows = synthetic_rows(gpu=True)
    for row in rows:
        if row["simulator"] == "cuda_standalone_wired":
            row["seconds_per_step"] = 2e-3  # 5x over cpp, 33x the GPU limit; the factorised one is faster
    t = speed.targets(rows)
    assert t["cuda_speedup_over_cpp"]["value"] == pytest.approx(25.0) and t["cuda_speedup_over_cpp"]["met"]
    assert t["cuda_ratio_to_gpu_limit"]["value"] == pytest.approx(4e-4 / 6e-5)
    assert t["cuda_ratio_to_gpu_limit"]["met"] is False
    assert "NOT met" in "\n".join(speed.targets_report(t))
    # a GPU, but no GPU limit (neither CuPy nor PyTorch): the cuda ratio says why, the speedup is there
    no_limit = [dict(r, seconds_per_step="", status="not measured: neither CuPy nor PyTorch can be imported here")
                if r["simulator"] == "gpu_matvec_limit" else r for r in rows]
    t = speed.targets(no_limit)
    assert t["cuda_ratio_to_gpu_limit"]["value"] is None and "CuPy" in t["cuda_ratio_to_gpu_limit"]["status"]
    assert t["cuda_speedup_over_cpp"]["value"] is not None


def test_targets_without_a_gpu_say_so():
    t = speed.targets(synthetic_rows(gpu=False))
    for key in ("cuda_speedup_over_cpp", "cuda_ratio_to_gpu_limit"):
        assert t[key]["value"] is None and t[key]["met"] is None and t[key]["status"] == "not measured: no GPU"
    assert t["cpp_ratio_to_limit"]["met"]
    text = "\n".join(speed.targets_report(t))
    assert "at least 20x faster per step than cpp_standalone (1 or 2 threads): not measured: no GPU" in text
    # a run without the target size, or without the rows
    t = speed.targets([speed._row("matvec_limit", 1000, 100, seconds_per_step=1e-5, status="measured")])
    assert t["cpp_ratio_to_limit"]["status"] == "not measured: no cpp_standalone row at N = 10000, K = 1000 in this run"
    assert t["cuda_speedup_over_cpp"]["status"].startswith("not measured: no cuda_standalone row")
    assert t["batched_fraction_of_gemm_peak"]["status"].startswith("not measured: no numpy_batched row")


def fake_measure(calls):
    """measure() as on a machine with a GPU, without one: fixed timings per measurement."""
    def measure(fn_name, **kwargs):
        calls.append((fn_name, kwargs))
        if fn_name == "time_matvec_limit":
            return {"seconds_per_step": 8e-3, "one_core": 1.4e-2, "all_cores": 8e-3, "process_peak_rss_mb": 130.0}
        if fn_name == "time_gpu_limit":
            return {"seconds_per_step": 5e-5, "library": "CuPy", "process_peak_rss_mb": 600.0}
        if fn_name == "time_brian2":
            cuda = kwargs["device"] == "cuda_standalone"
            wired = kwargs["gating"] == "wired"
            seconds = (1e-4 if wired else 2e-4) if cuda else (10e-3 if wired else 40e-3) / kwargs["threads"]
            result = {"seconds_per_step": seconds, "build_seconds": 2.0, "compile_seconds": 30.0,
                      "binary_peak_rss_mb": 400.0, "process_peak_rss_mb": 900.0, "steps": kwargs["steps"]}
            if cuda:
                result.update(gpu_memory_mb=300.0, gpu_context_mb=500.0, brian2cuda_seconds_per_step=1e-6)
            return result
        raise AssertionError(fn_name)
    return measure


def test_a_run_with_a_gpu_compares_cuda_with_the_gpu_limit_and_states_the_targets(tmp_path, monkeypatch, capsys):
    """The benchmark's loop on a pretended GPU machine (measurements replaced): cuda rows for both gatings,
    their ratios to the GPU limit, and the targets in speed.json and in the report."""
    calls = []
    # patched where the benchmark's loop (speed/run.py) looks them up: the GPU probes in speed/gpu.py,
    # measure() in speed/run.py; targets_config is looked up on the package by the CLI
    monkeypatch.setattr(speed.gpu, "gpu_present", lambda: 9.0)
    monkeypatch.setattr(speed.gpu, "gpu_memory_bytes", lambda: 80 * 2**30)
    monkeypatch.setattr(speed.run, "measure", fake_measure(calls))
    monkeypatch.setattr(speed, "targets_config", lambda: speed.SpeedConfig(
        sizes=[speed.TARGET_SIZE, (10**5, 10**5)], simulators=("cpp", "cuda", "gpu_limit"), repeats=1,
        variant_sizes={v: [speed.TARGET_SIZE] for v in (speed.StandaloneVariant(threads=2, gating="wired"),
                                                         speed.cuda_variant(gating="wired"))}))
    out = tmp_path / "speed"
    assert main(["bench", "speed", "--targets", "--memory-cap-gb", "2000", "--out", str(out)]) == 0
    rows = {(r["simulator"], int(r["N"])): r for r in read_rows(out)}
    cuda = rows[("cuda_standalone_wired", 10**4)]
    assert float(cuda["ratio_to_limit"]) == pytest.approx(2.0) and float(cuda["gpu_memory_mb"]) == 300.0
    assert float(rows[("cuda_standalone", 10**4)]["ratio_to_limit"]) == pytest.approx(4.0)
    assert float(rows[("gpu_matvec_limit", 10**4)]["ratio_to_limit"]) == 1.0
    assert "CuPy" in rows[("gpu_matvec_limit", 10**4)]["note"]
    assert float(rows[("cpp_standalone_2threads_wired", 10**4)]["ratio_to_limit"]) == pytest.approx(0.625)
    # each measurement by a name that a fresh process finds (run.MEASUREMENTS, whichever module defines it)
    assert {fn for fn, _ in calls} <= set(speed.MEASUREMENTS)
    cuda_steps = {kw["steps"] for fn, kw in calls if fn == "time_brian2" and kw["device"] == "cuda_standalone"}
    assert cuda_steps == {1000}
    # N K = 10^10: cuda_standalone would need ~450 GB of GPU memory: not tried
    assert "of GPU memory > the GPU's 80.0 GB" in rows[("cuda_standalone", 10**5)]["status"]
    assert not [kw for fn, kw in calls if fn == "time_brian2" and kw["N"] == 10**5 and kw["device"] == "cuda_standalone"]
    t = json.loads((out / "speed.json").read_text())["targets"]
    assert t["cuda_speedup_over_cpp"]["value"] == pytest.approx(50.0) and t["cuda_speedup_over_cpp"]["met"]
    assert t["cuda_ratio_to_gpu_limit"]["value"] == pytest.approx(2.0)
    printed = capsys.readouterr().out
    assert "targets at N = 10000, K = 1000:" in printed and "50x (cuda_standalone_wired vs " in printed


def assert_plot_shows_rows(fig, rows) -> None:
    """speed.png: for every measured simulator, a legend entry and its points at (N K, seconds per step)."""
    (ax,) = fig.axes
    assert ax.get_xscale() == ax.get_yscale() == "log" and ax.get_ylabel() == "seconds per time step"
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    measured = [r for r in rows if r["status"] == "measured"]
    for sim in dict.fromkeys(r["simulator"] for r in measured):
        assert any(label.startswith(sim) for label in labels), (sim, labels)
        expected = sorted((int(r["N"]) * int(r["K"]), float(r["seconds_per_step"])) for r in measured
                          if r["simulator"] == sim)
        points = [sorted(zip(line.get_xdata(), line.get_ydata())) for line in ax.lines
                  if line.get_linestyle() == "None"]
        assert any(len(p) == len(expected) and np.allclose(p, expected, rtol=1e-5) for p in points), sim


def test_the_table_reads_back_and_replots(tmp_path, capsys, saved_figures):
    rows = synthetic_rows(gpu=True)
    for row in rows:
        row.update(seconds_per_simulated_second="", note="a, b")
    out = tmp_path / "speed"
    out.mkdir()
    write_csv(out / "speed.csv", rows, speed.CSV_COLUMNS, float_format=".6g")
    back = speed.read_csv(out / "speed.csv")
    assert [r["simulator"] for r in back] == [r["simulator"] for r in rows]
    assert back[2]["seconds_per_step"] == pytest.approx(43e-3) and back[2]["threads"] == 1 and back[2]["N"] == 10**4
    assert back[0]["note"] == "a, b" and back[0]["gpu_memory_mb"] == ""
    # a table written before the gpu_memory_mb column
    old = out / "old.csv"
    lines = (out / "speed.csv").read_text().splitlines()
    header = lines[0].split(",")
    drop = header.index("gpu_memory_mb")
    old.write_text("\n".join(",".join(c for i, c in enumerate(line.split(",")) if i != drop) for line in lines[:3]))
    assert speed.read_csv(old)[1]["fraction_of_gemm_peak"] == 0.73 and speed.read_csv(old)[1]["gpu_memory_mb"] == ""
    assert main(["bench", "speed", "--replot", str(out)]) == 0
    assert_plot_shows_rows(saved_figures["speed.png"], [{k: str(v) for k, v in r.items()} for r in back])
    printed = capsys.readouterr().out
    assert "targets at N = 10000, K = 1000:" in printed and "2.5x (cuda_standalone_wired vs gpu_matvec_limit)" in printed
    assert main(["bench", "speed", "--replot", str(out), "--sizes", "100:10"]) == 2
    assert main(["bench", "speed", "--replot", str(tmp_path / "nowhere")]) == 2


def test_the_runtime_long_run_is_sized_from_the_pair_and_bounded_when_it_is_noise():
    # 0.4 ms a step and 1 ms per run: 25 steps in 11 ms, 5 in 3 ms -> about 2500 steps for a second
    assert speed.long_run_steps(0.011, 0.003, 25, 5) == 5 + 2500
    # the short run took longer than the long one (a busy machine): the long run's 0.44 ms a step sizes it
    assert speed.long_run_steps(0.011, 0.012, 25, 5) == 5 + int(1.0 / (0.011 / 25))
    # never fewer steps than the pair had
    assert speed.long_run_steps(10.0, 1.0, 25, 5) == 25


def test_retrieval_rows_side_by_side_with_modern_hopfield(tmp_path, capsys):
    from astrogate.analysis.speed.retrieval import ROW_COLUMNS

    out = tmp_path / "speed"
    assert main(["bench", "speed", "--quick", "--sizes", "200:20", "--simulators", "retrieval",
                 "--retrieval-sizes", "60:30", "--repeats", "1", "--out", str(out)]) == 0
    with open(out / "speed_retrieval.csv") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == ROW_COLUMNS
        rows = {r["model"]: r for r in reader}
    assert set(rows) == {"modern_hopfield_iterated", "modern_hopfield_iterated_float32", "gated_reference",
                         "gated_fast_float64", "gated_fast"}
    assert float(rows["modern_hopfield_iterated"]["ratio_to_modern"]) == 1.0
    for name, row in rows.items():
        assert float(row["seconds_per_cue"]) > 0 and float(row["exact_match"]) >= 0.9, name
    assert rows["gated_fast"]["exact_match"] == rows["gated_reference"]["exact_match"]
    # the reference runs to the time limit; the decided rule stops every cue within a few steps
    assert float(rows["gated_reference"]["steps_per_cue"]) == 3000 and "time limit: 32" in rows["gated_reference"]["stop_rules"]
    assert float(rows["gated_fast"]["steps_per_cue"]) < 30 and rows["gated_fast"]["stop_rules"] == "decided: 32"
    summary = json.loads((out / "speed.json").read_text())
    assert set(summary["retrieval"]["targets"]) == {"60x30"}
    printed = capsys.readouterr().out
    assert "x modern" in printed and "target: gated_fast within 10x" in printed


def test_the_reference_is_extrapolated_only_where_it_cannot_stop_before_its_time_limit():
    from astrogate.analysis.speed.retrieval import time_retrieval

    rows = {r["model"]: r for r in time_retrieval(60, 40, 8, 1, reference_max_work=1e6)}
    reference = rows["gated_reference"]
    assert reference["note"].startswith("extrapolated: 100 steps timed, x 3000 steps")
    assert reference["steps_per_cue"] == 3000 and reference["stop_rules"] == "time limit: 8"


def test_a_speed_study_runs_its_own_loop_from_astrogate_sweep(tmp_path, monkeypatch, capsys):
    """The speed benchmark read from the study schema: `astrogate sweep SPEC` runs the sizes and simulators of
    the spec through the benchmark's own loop (measurements replaced), in a folder the engine holds."""
    calls = []
    monkeypatch.setattr(speed.run, "measure", fake_measure(calls))
    spec = tmp_path / "speed.toml"
    spec.write_text('[study]\nevaluation = "speed"\n[model]\npreset = "quick"\nsimulators = ["cpp"]\n'
                    '[fixed]\nrepeats = 1\n[[zip]]\nname = "size"\nN = { values = [1000, 2000] }\n'
                    'K = { values = [100, 100] }\n')
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out)]) == 0
    rows = read_rows(out)
    assert {("cpp_standalone_1thread", 1000), ("cpp_standalone_1thread", 2000)} <= {(r["simulator"], int(r["N"])) for r in rows}
    assert {kw["N"] for fn, kw in calls if fn == "time_brian2"} == {1000, 2000}
    assert json.loads((out / "study.json").read_text())["evaluation"] == "speed"
    assert "points run" not in capsys.readouterr().out
    from astrogate.analysis.spec import load_study
    from astrogate.analysis.speed.study import speed_config

    assert speed_config(load_study("speed_quick")) == speed.quick_config()  # the shipped spec is --quick


def test_batch_speed_benchmark_is_a_study(tmp_path, monkeypatch):
    """The batch speed benchmark reads the study schema (runs/configs/speed_batch.toml) and runs its own loop into
    the study's folder: the sizes, batch sizes, repeats and devices reach it as the spec gives them; bad specs are
    refused at their line before anything runs."""
    from pathlib import Path

    from astrogate.analysis.engine import run_study
    from astrogate.analysis.spec import load_study, parse_study
    from astrogate.analysis.speed import batch
    from astrogate.errors import InputError

    calls = []
    monkeypatch.setattr(batch, "run", lambda out, sizes, batches, repeats, runtime, standalone: calls.append(
        (Path(out), sizes, batches, repeats, runtime, standalone)))
    study = load_study("speed_batch")
    outcome = run_study(study, tmp_path / "out", progress=False)
    assert calls == [(tmp_path / "out", [(20, 100)], [1, 10, 50, 500], 1, True, True)]
    assert outcome.total == 0 and (tmp_path / "out" / "study.json").exists()
    spec = tmp_path / "batch.toml"
    head = '[study]\nevaluation = "speed_batch"\n[fixed]\ndevices = "runtime"\n'
    spec.write_text(head + '[[zip]]\nname = "size"\nN = { values = [10, 30] }\nK = { values = [5, 7] }\n')
    calls.clear()
    run_study(load_study(spec), tmp_path / "two", progress=False)
    assert calls[0][1:] == ([(10, 5), (30, 7)], [1, 10, 50, 500], 2, True, False)
    with pytest.raises(InputError, match=r"batch.toml:5: batches: the list repeats a size"):
        parse_study(head + "batches = [1, 1]\n", spec)
    with pytest.raises(InputError, match=r"batch.toml:4: unknown devices 'gpu'"):
        parse_study(head.replace('"runtime"', '"gpu"'), spec)
    with pytest.raises(InputError, match=r"batch.toml:3: the sizes are N and K together"):
        parse_study(head + "N = 10\n", spec)
