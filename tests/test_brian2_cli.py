"""astrogate recall --backend brian2 and astrogate compare from the command line."""

import json

import numpy as np

import pytest

from astrogate.cli.main import main

pytestmark = pytest.mark.brian2
SMALL = ["--K", "10", "--N", "20", "--seed", "4"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["recall", "--device", "cpp_standalone"], "--device: for --backend brian2 only"),
        (["recall", "--gating", "dense"], "--gating: for --backend brian2 only"),
        (["recall", "--backend", "brian2", "--device", "gpu"],
         "--device 'gpu': unknown; use one of runtime, cpp_standalone, cuda_standalone"),
        (["recall", "--backend", "brian2", "--target", "fortran"], "use one of cython, numpy"),
        (["recall", "--backend", "brian2", "--gating", "sparse"], "use one of factorised, wired, dense"),
        (["recall", "--backend", "brian2", "--method", "adaptive"], "method 'euler' or 'exponential_euler'"),
        (["recall", "--backend", "brian2", "--threads", "2"], "threads (OpenMP) apply to device cpp_standalone only"),
        (["compare", "--device", "cpp_standalone", "--target", "numpy"], "applies to --device runtime only"),
    ],
)
def test_bad_options_are_one_line_errors(argv, message, capsys):
    assert main(argv + SMALL) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_recall_json_has_the_abstract_keys_plus_brian2(tmp_path, capsys):
    paths = {backend: tmp_path / f"{backend}.json" for backend in ("abstract", "brian2")}
    common = ["recall", *SMALL, "--duration", "20", "--tol", "0"]
    assert main(common + ["--json", str(paths["abstract"])]) == 0
    assert main(common + ["--backend", "brian2", "--target", "numpy", "--json", str(paths["brian2"])]) == 0
    abstract, network = (json.loads(paths[b].read_text()) for b in ("abstract", "brian2"))
    assert set(abstract) <= set(network)
    assert set(network) - set(abstract) == {"brian2"}
    assert {"build_seconds", "run_seconds"} <= set(network["timings"])
    assert network["retrieved"] == abstract["retrieved"]
    assert max(abs(x - y) for x, y in zip(network["g"], abstract["g"])) < 1e-9
    assert "Brian2 runtime: build" in capsys.readouterr().out


def test_compare_prints_discrepancies_and_writes_the_figure(tmp_path, capsys, saved_figures):
    plot, out = tmp_path / "compare.png", tmp_path / "compare.json"
    argv = ["compare", *SMALL, "--duration", "20", "--target", "numpy", "--gating", "dense",
            "--plot", str(plot), "--json", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "max|dg|" in text and "dense gating" in text
    record = json.loads(out.read_text())
    diffs = record["discrepancies"]
    assert diffs["same_retrieved"] and diffs["max_abs_gain"] < 1e-9 and diffs["max_abs_overlap_trace"] < 1e-9
    overlaps, gains, energy, differences = saved_figures["compare.png"].axes
    reference, network = record["abstract"], record["brian2"]
    for k in range(len(reference["trace_patterns"])):  # per pattern: the abstract line, then Brian2's dots
        np.testing.assert_allclose(overlaps.lines[2 * k].get_ydata(), np.asarray(reference["overlap_trace"])[:, k])
        np.testing.assert_allclose(gains.lines[2 * k + 1].get_ydata(), np.asarray(network["gain_trace"])[:, k])
        assert gains.lines[2 * k + 1].get_linestyle() == "None"
    np.testing.assert_allclose(energy.lines[1].get_ydata(), network["energy"])
    # the difference panel shows what the JSON says: below 1e-9 at every sample
    assert [line.get_label() for line in differences.lines] == ["overlaps", "gains", "L (relative)"]
    assert all(np.max(line.get_ydata()) < 1e-9 for line in differences.lines)
