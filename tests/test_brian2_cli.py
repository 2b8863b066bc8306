"""astrogate recall --backend brian2 and astrogate compare from the command line."""

import json

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
         "unknown device 'gpu': use one of runtime, cpp_standalone, cuda_standalone"),
        (["recall", "--backend", "brian2", "--target", "fortran"], "use one of cython, numpy"),
        (["recall", "--backend", "brian2", "--gating", "sparse"], "use one of factorised, wired, dense"),
        (["recall", "--backend", "brian2", "--method", "adaptive"], "method must be 'euler'"),
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


def test_compare_prints_discrepancies_and_writes_the_figure(tmp_path, capsys):
    plot, out = tmp_path / "compare.png", tmp_path / "compare.json"
    argv = ["compare", *SMALL, "--duration", "20", "--target", "numpy", "--gating", "dense",
            "--plot", str(plot), "--json", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "max|dg|" in text and "dense gating" in text
    assert plot.stat().st_size > 10_000
    diffs = json.loads(out.read_text())["discrepancies"]
    assert diffs["same_retrieved"] and diffs["max_abs_gain"] < 1e-9 and diffs["max_abs_overlap_trace"] < 1e-9
