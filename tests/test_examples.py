"""Every script of examples/ at its small size: what it computes and what its figure shows.

Each example runs in its own Python process (the standalone one sets Brian2's device for the whole process):
a driver imports the script, calls its ``main("small")``, saves the figure as the script does and prints the
results and a description of the figure (axes, labels, lines, images, texts) as JSON, which the tests check.
The runtime examples use Brian2's numpy target here, so that the default tests compile no Cython; the
standalone example compiles its small C++ project (about a minute on a loaded 2-core machine).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
MARKER = "EXAMPLE-RESULT "

DRIVER = r"""
import json, runpy, sys
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
script = Path(sys.argv[1])
sys.path.insert(0, str(script.parent))  # as `python examples/x.py` does: example_utils is importable
from brian2 import prefs

from astrogate.network.devices import quiet_brian2

quiet_brian2()
prefs.codegen.target = "numpy"
namespace = runpy.run_path(str(script))
results, figure = namespace["main"]("small")
path = namespace["save_figure"](figure, namespace["NAME"], "small")


def floats(values):
    return np.asarray(values, dtype=float).tolist()


def describe(ax):
    legend = ax.get_legend()
    return {"xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(), "title": ax.get_title(),
            "xscale": ax.get_xscale(), "yscale": ax.get_yscale(),
            "lines": [{"label": line.get_label(), "x": floats(line.get_xdata()), "y": floats(line.get_ydata())}
                      for line in ax.lines],
            "images": [floats(image.get_array()) for image in ax.images],
            "bars": [patch.get_height() for patch in ax.patches],
            "texts": [text.get_text() for text in ax.texts],
            "legend": [text.get_text() for text in legend.get_texts()] if legend else []}


print("EXAMPLE-RESULT " + json.dumps({"results": results, "axes": [describe(ax) for ax in figure.axes],
                                      "figure": str(path)}, default=lambda x: np.asarray(x).tolist()))
"""


def run_example(name: str, tmp_path: Path) -> dict:
    env = dict(os.environ, ASTROGATE_EXAMPLE_SIZE="small", ASTROGATE_EXAMPLE_OUT=str(tmp_path / "figures"),
               MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, "-c", DRIVER, str(EXAMPLES / f"{name}.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    line = next(line for line in done.stdout.splitlines() if line.startswith(MARKER))
    output = json.loads(line[len(MARKER):])
    figure = Path(output["figure"])
    assert figure.parent == tmp_path / "figures" and figure.name == f"{name}.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    output["stdout"] = done.stdout
    return output


def line(ax: dict, label_start: str) -> dict:
    return next(line for line in ax["lines"] if line["label"].startswith(label_start))


def test_every_example_has_a_test_and_is_listed_in_the_readme():
    scripts = sorted(path.stem for path in EXAMPLES.glob("example_[0-9]*.py"))
    tested = sorted(name[len("test_"):] for name in globals() if name.startswith("test_example_"))
    assert tested == scripts
    readme = (EXAMPLES / "README.md").read_text()
    for script in scripts:
        assert f"{script}.py" in readme and f"{script}.png" in readme, script


def test_example_1_retrieval(tmp_path):
    out = run_example("example_1_retrieval", tmp_path)
    results = out["results"]
    assert results["retrieved"] == results["target"] and results["exact_match"]
    assert results["final_overlap"] > 0.99 > 0.9 > results["cue_overlap"]
    ax_m, ax_g = out["axes"]
    assert ax_g["xlabel"] == "t (ms)" and ax_g["xscale"] == "log"
    traced = len(results["trace_patterns"])
    assert len(ax_m["lines"]) == traced and len(ax_g["lines"]) == traced + 1  # + the uniform-gain line
    target_m, target_g = line(ax_m, "target"), line(ax_g, "target")
    assert target_m["label"] == f"target ({results['target']})"
    assert target_m["y"][-1] == pytest.approx(results["final_overlap"], abs=1e-12)
    assert target_g["y"][0] == pytest.approx(1 / 40) and target_g["y"][-1] == pytest.approx(results["max_gain"])
    assert np.all(np.diff(target_m["x"]) > 0) and target_m["x"][-1] == pytest.approx(results["t_converged"])


@pytest.mark.brian2
def test_example_2_own_network(tmp_path):
    out = run_example("example_2_own_network", tmp_path)
    results = out["results"]
    for memory in ("timed", "poisson"):
        assert results[memory]["retrieved"] == results[memory]["target"] and results[memory]["exact_match"], memory
        assert results[memory]["target_gain"] > 0.99
    assert results["samples"] == [200, 200]  # 20 ms at the memories' dt = 0.1 ms: every step
    current, raster, timed_gains, poisson_gains = out["axes"]
    assert len(current["lines"]) == 5
    values = np.array([line["y"] for line in current["lines"]])
    t = np.array(current["lines"][0]["x"])
    on, off = t < 9.95, t > 9.95  # the TimedArray's first interval is [0, t_cue = 10 ms)
    assert set(np.unique(values[:, on])) == {-1.0, 1.0} and np.all(values[:, off] == 0)  # the cue, then nothing
    spikes = raster["lines"][0]
    assert len(spikes["x"]) == results["input_spikes"] > 0 and max(spikes["x"]) < 10  # Poisson input while t < t_cue
    for ax, memory in ((timed_gains, "timed"), (poisson_gains, "poisson")):
        gains = [line for line in ax["lines"] if len(line["x"]) > 2]  # not the 2-point line where the cue ends
        assert len(gains) == 20  # K
        target = line(ax, "target")
        assert target["label"] == f"target ({results[memory]['target']})" and target["y"][-1] > 0.99
        assert target["y"][0] == pytest.approx(1 / 20)  # recorded at the step's end: g(0) = softmax(a(0)), uniform


@pytest.mark.brian2
def test_example_3_standalone_scan(tmp_path):
    out = run_example("example_3_standalone_scan", tmp_path)
    results = out["results"]
    assert results["runs"] == 4  # 2 betas x 2 cues on one build
    assert results["max_abs_difference_from_abstract"] < 1e-9
    # the runs did get their beta: spread gains at 0.1 N, one-hot and retrieved at 30 N
    assert results["mean_max_gain"][0] < 0.5 < 0.99 < results["mean_max_gain"][-1]
    assert results["fraction_retrieved"][-1] == 1.0 and results["fraction_gain_on_target"][-1] == 1.0
    assert "output" not in {path.name for path in tmp_path.iterdir()}  # built in a temporary folder
    ax_retrieved, ax_gain = out["axes"]
    assert ax_retrieved["xscale"] == ax_gain["xscale"] == "log"
    np.testing.assert_allclose(line(ax_retrieved, "retrieved")["x"], np.array(results["betas"]) / 16)
    np.testing.assert_allclose(line(ax_retrieved, "retrieved")["y"], results["fraction_retrieved"])
    np.testing.assert_allclose(ax_gain["lines"][0]["y"], results["mean_max_gain"])


@pytest.mark.brian2
def test_example_4_spiking_lif(tmp_path):
    out = run_example("example_4_spiking_lif", tmp_path)
    results = out["results"]
    assert results["retrieved"] == results["target"] and results["exact_match"]
    assert results["target_gain"] > 0.99 and results["final_overlap"] > 0.7
    # after the retrieval the target's +1 bits fire near nu_max = 200 Hz, its -1 bits are nearly silent
    assert results["rate_plus_hz"] > 150 and results["rate_minus_hz"] < 10
    ax_raster, ax_m, ax_g = out["axes"]
    raster = ax_raster["lines"][0]
    assert len(raster["x"]) == results["spikes"] > 0
    assert ax_raster["texts"] == ["target\n+1", "target\n-1"]
    assert line(ax_g, "target")["y"][-1] == pytest.approx(results["target_gain"], abs=1e-6)
    assert len(ax_m["lines"]) == len(ax_g["lines"]) == 6  # the target and 5 competitors


def test_example_5_attention(tmp_path):
    out = run_example("example_5_attention", tmp_path)
    results = out["results"]
    assert all(results["converged"])
    assert max(results["distance"]) < 1e-8 and max(results["gain_distance"]) < 1e-8
    # not a trivial agreement: at the smallest beta the attention weights are spread over several patterns
    assert results["largest_weight"][0] < 0.9 and results["largest_weight"][-1] > 0.99
    ax_u, ax_g, ax_r = out["axes"]
    points = [line for line in ax_u["lines"] if line["label"].startswith("$\\beta$")]
    assert len(points) == 3
    for run in points:  # the plotted u* lie on the attention output
        np.testing.assert_allclose(run["y"], run["x"], rtol=0, atol=1e-8)
    assert len(ax_g["bars"]) == 6 and sum(ax_g["bars"]) == pytest.approx(1.0)  # K attention weights
    np.testing.assert_allclose(line(ax_g, "astrocytes")["y"], ax_g["bars"], atol=1e-8)
    assert ax_r["yscale"] == "log" and all(curve["y"][-1] < 1e-8 for curve in ax_r["lines"])


def test_example_6_explore(tmp_path):
    out = run_example("example_6_explore", tmp_path)
    results = out["results"]
    assert results["dims"] == ["correlation", "beta_per_neuron"] and results["shape"] == [2, 2]
    assert results["status"] == ["ok"] * 4
    fraction = np.array(results["fraction_retrieved"])
    assert np.all((fraction >= 0) & (fraction <= 1)) and np.all(fraction[:, -1] == 1.0)  # beta = 30 N retrieves
    ax_fraction, ax_overlap = out["axes"][:2]  # then their colour bars
    np.testing.assert_allclose(ax_fraction["images"][0], fraction)
    np.testing.assert_allclose(ax_overlap["images"][0], results["final_overlap"])
    assert ax_fraction["texts"] == [f"{value:.2f}" for value in fraction.ravel()]
