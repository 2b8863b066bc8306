"""astrogate attention and astrogate bench mqar: files, one-line errors, the MQAR table and figure."""

import json

import numpy as np
import pytest

from astrogate.analysis.mqar import make_sequence, markdown_table, mqar_study, plot_mqar, read_rows, score

QUICK = mqar_study(quick=True)
QUICK_LOADS = QUICK.axes[1].values["load"]
QUICK_INTERFERENCE = list(zip(QUICK.axes[0].values["correlation"], QUICK.axes[0].values["noise"]))
QUICK_METHODS = QUICK.settings["methods"]
from astrogate.cli.main import main
from astrogate.errors import InputError


@pytest.fixture
def arrays(tmp_path):
    rng = np.random.default_rng(0)
    paths = {}
    for name, shape in (("queries", (3, 4)), ("keys", (6, 4)), ("values", (6, 2))):
        paths[name] = tmp_path / f"{name}.npy"
        np.save(paths[name], rng.normal(size=shape))
    return paths


def run_cli(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_attention_from_files_writes_the_result(arrays, tmp_path, capsys):
    out = tmp_path / "result"
    code, stdout, _ = run_cli(["attention", "--queries", str(arrays["queries"]), "--keys", str(arrays["keys"]),
                               "--values", str(arrays["values"]), "--out", str(out)], capsys)
    assert code == 0
    assert "max |outputs - softmax attention|" in stdout
    Q, K, V = (np.load(arrays[name]) for name in ("queries", "keys", "values"))
    scores = Q @ K.T / 2.0
    weights = np.exp(scores - scores.max(1, keepdims=True))
    weights /= weights.sum(1, keepdims=True)
    assert np.max(np.abs(np.load(out / "outputs.npy") - weights @ V)) < 1e-8
    assert np.max(np.abs(np.load(out / "gains.npy") - weights)) < 1e-8
    summary = json.loads((out / "summary.json").read_text())
    assert summary["output_distance"] < 1e-8 and summary["mode"] == "query"


@pytest.mark.parametrize("bad, message", [
    ("values", "keys and values must pair up row by row: keys have n = 6 rows, values have 5"),
    ("queries", "queries have width 3 but keys have d = 4"),
    ("nan", "queries: contains NaN or inf"),
])
def test_attention_bad_files_are_one_line_errors(arrays, bad, message, capsys):
    if bad == "values":
        np.save(arrays["values"], np.zeros((5, 2)))
    elif bad == "queries":
        np.save(arrays["queries"], np.zeros((3, 3)))
    else:
        Q = np.load(arrays["queries"])
        Q[1, 2] = np.nan
        np.save(arrays["queries"], Q)
    code, stdout, stderr = run_cli(["attention", "--queries", str(arrays["queries"]), "--keys", str(arrays["keys"]),
                                    "--values", str(arrays["values"])], capsys)
    assert code == 2
    assert stderr.startswith(f"astrogate: error: {message}") and stderr.count("\n") == 1


@pytest.mark.parametrize("argv, message", [
    (["attention", "--keys", "k.npy"], "--queries, --keys and --values go together"),
    (["attention", "--queries", "q.npy", "--keys", "k.npy", "--values", "v.npy"], "queries file 'q.npy' does not exist"),
    (["attention", "--n", "0"], "--n must be at least 1"),
    (["attention", "--target", "numpy"], "--target: for --backend brian2 only"),
    (["attention", "--mode", "retrieval", "--backend", "brian2", "--layout", "per_query"],
     "layout applies to query mode"),
    (["attention", "--scale", "0"], "scale must be a positive number"),
    (["bench", "mqar", "--loads", "4,x"], "--loads: expected whole numbers"),
    (["bench", "mqar", "--loads", "0"], "MQAR load must be at least 1, got 0"),
    (["bench", "mqar", "--replot", "nowhere"], "MQAR results file 'nowhere/results.csv' does not exist"),
])
def test_attention_bad_options_are_one_line_errors(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, stderr = run_cli(argv, capsys)
    assert code == 2
    assert stderr.count("\n") == 1 and message in stderr


def test_generated_retrieval_mode(capsys):
    code, stdout, _ = run_cli(["attention", "--mode", "retrieval", "--n", "5", "--d", "16"], capsys)
    assert code == 0 and "retrieval mode" in stdout and "F quadratic" in stdout


# -- MQAR ------------------------------------------------------------------------------------------------
def test_mqar_sequences_and_scoring():
    rng = np.random.default_rng(0)
    seq = make_sequence(10, 32, 8, 4, correlation=0.0, noise=0.0, rng=rng)
    np.testing.assert_array_equal(seq.queries, seq.keys[seq.targets])
    correct, exact = score(seq.values[seq.targets], seq)
    assert correct.all() and exact.all()
    others = seq.values[(seq.targets + 1) % 10]
    correct, exact = score(0.5 * seq.values[seq.targets] + 0.25 * others, seq)  # a blend, still the right sign
    assert correct.all() and exact.all()
    correct, exact = score(0.5 * seq.values[seq.targets] + 0.5 * others, seq)  # zeros where the two differ
    assert not exact.any()
    assert not score(others, seq)[0].any()


def test_mqar_quick_run_figure_and_table(tmp_path, capsys):
    code, stdout, _ = run_cli(["bench", "mqar", "--quick", "--out", str(tmp_path), "--no-progress"], capsys)
    assert code == 0 and "MQAR: 24 cells" in stdout
    rows = read_rows(tmp_path / "results.csv")
    assert len(rows) == len(QUICK_LOADS) * len(QUICK_INTERFERENCE) * len(QUICK_METHODS)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["gated_query_max_distance_to_softmax"] < 1e-8
    result = {"rows": rows}
    by_key = {(r["correlation"], r["noise"], r["load"], r["method"]): r for r in rows}
    # softmax attention and the gated query mode decide alike
    for (c, f, n, method), r in by_key.items():
        if method == "gated-query":
            assert r["accuracy"] == by_key[(c, f, n, "softmax")]["accuracy"]
        assert r["accuracy_lo"] <= r["accuracy"] <= r["accuracy_hi"]
    fig = plot_mqar(result["rows"])
    axes = fig.axes
    assert len(axes) == 2 * len(QUICK_INTERFERENCE)
    first = axes[0]
    assert first.get_title() == "key correlation 0, query noise 0.1"
    bottom = axes[len(QUICK_INTERFERENCE)]
    assert [tick.get_text() for tick in bottom.get_xticklabels()] == [str(n) for n in QUICK_LOADS]
    bars = first.containers  # one errorbar per method: its data line and its interval segments
    assert [bar.get_label() for bar in bars] == list(QUICK_METHODS)
    for bar in bars:
        cells = sorted((r for r in result["rows"] if r["method"] == bar.get_label() and r["correlation"] == 0.0
                        and r["noise"] == 0.1), key=lambda r: r["load"])
        line, _, (segments,) = bar.lines
        np.testing.assert_array_equal(line.get_xdata(), [r["load"] for r in cells])
        np.testing.assert_allclose(line.get_ydata(), [r["accuracy"] for r in cells])
        np.testing.assert_allclose([seg[:, 1] for seg in segments.get_segments()],
                                   [[r["accuracy_lo"], r["accuracy_hi"]] for r in cells])
    assert axes[1].get_title() == "key correlation 0.5, query noise 0.3"  # row-major: row 0 holds the levels
    exact_axes = axes[len(QUICK_INTERFERENCE)]
    assert exact_axes.get_ylabel() == "exact recall"
    for bar in exact_axes.containers:
        cells = sorted((r for r in result["rows"] if r["method"] == bar.get_label() and r["correlation"] == 0.0
                        and r["noise"] == 0.1), key=lambda r: r["load"])
        np.testing.assert_allclose(bar.lines[0].get_ydata(), [r["exact"] for r in cells])
    table = markdown_table(result["rows"])
    assert table.splitlines()[0].startswith("| key corr. | query noise | pairs | softmax")
    assert len(table.splitlines()) == 2 + len(QUICK_LOADS) * len(QUICK_INTERFERENCE)


def test_mqar_config_errors(tmp_path):
    from astrogate.analysis.spec import load_study

    spec = tmp_path / "m.toml"
    text = '[study]\nevaluation = "mqar"\n[model]\nmethods = ["softmax", "lstm"]\n[fixed]\nload = 4\ncorrelation = 0.2\nnoise = 0.1\n'
    spec.write_text(text)
    with pytest.raises(InputError, match=r"m\.toml:4: unknown MQAR method\(s\) lstm"):
        load_study(spec)
    spec.write_text(text.replace('"lstm"', '"linear"').replace("noise = 0.1", "noise = 1.5"))
    with pytest.raises(InputError, match=r"m\.toml:8: MQAR noise must lie in \[0, 1\], got 1.5"):
        load_study(spec)
    with pytest.raises(InputError, match="MQAR seed must be at least 0"):
        mqar_study(quick=True, seed=-1)
