"""`astrogate recall` end to end: reproduction of an independent Euler integration, and bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest

from astrogate.cli.main import main
from conftest import recall_figure_matches


def independent_euler(xi, cue, steps, beta, gamma=3.0, kappa=1.0, tau_u=10.0, tau_g=20.0, dt=0.1, cue_scale=0.5):
    """The model's equations (docs/model.md) with F quadratic, written out again: u and a stepped from the same state."""
    xi = xi / np.sqrt(np.mean(xi**2, axis=1, keepdims=True))
    K, N = xi.shape
    u = cue_scale * cue
    a = np.zeros(K)
    for _ in range(steps):
        v = np.tanh(gamma * u)
        m = xi @ v / N
        g = np.exp(a - a.max())
        g /= g.sum()
        du = (-u + kappa * K * (g * m) @ xi) / tau_u
        da = (beta * m**2 / 2 - a) / tau_g
        u, a = u + dt * du, a + dt * da
    v = np.tanh(gamma * u)
    g = np.exp(a - a.max())
    return v, g / g.sum(), xi @ v / N


@pytest.mark.parametrize("tol", [0.0, 1e-8])
@pytest.mark.parametrize("real_valued", [False, True])
def test_recall_json_reproduces_an_independent_euler_integration(tmp_path, tol, real_valued):
    rng = np.random.default_rng(11)
    K, N = 60, 30
    xi = rng.normal(size=(K, N)) * 1.7 if real_valued else rng.choice([-1.0, 1.0], size=(K, N))
    cue = xi[3] + 0.8 * rng.normal(size=N)
    np.save(tmp_path / "p.npy", xi)
    np.save(tmp_path / "c.npy", cue)
    out = tmp_path / "r.json"
    code = main(["recall", "--patterns", str(tmp_path / "p.npy"), "--cue", str(tmp_path / "c.npy"),
                 "--method", "euler", "--dt", "0.1", "--duration", "1000", "--beta", "150",
                 "--tol", str(tol), "--json", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    for key in ("v", "g", "m", "t", "energy", "softmax_residual", "retrieved", "params"):
        assert key in result
    steps = result["steps"]
    assert steps == 10000 if tol == 0 else steps < 10000
    v, g, m = independent_euler(xi, cue, steps, beta=150.0)
    np.testing.assert_allclose(result["v"], v, rtol=0, atol=1e-6)
    np.testing.assert_allclose(result["g"], g, rtol=0, atol=1e-6)
    np.testing.assert_allclose(result["m"], m, rtol=0, atol=1e-6)
    assert result["retrieved"] == int(np.argmax(m))


def test_recall_generated_problem_prints_summary_and_writes_plot(tmp_path, capsys, saved_figures):
    code = main(["recall", "--K", "40", "--N", "50", "--correlation", "0.3", "--plot", str(tmp_path / "f.png"),
                 "--json", str(tmp_path / "r.json")])
    assert code == 0
    text = capsys.readouterr().out
    assert "retrieved pattern" in text and "overlap with target" in text
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["retrieved"] == result["target"] and result["exact_match"]
    recall_figure_matches(saved_figures["f.png"], result)
    # the target's overlap rises to 1 while its gain takes the whole simplex
    target_line = saved_figures["f.png"].axes[1].lines[result["trace_patterns"].index(result["target"])]
    assert target_line.get_ydata()[0] < 0.2 and target_line.get_ydata()[-1] > 0.99
    assert result["energy_increase"] <= 1e-12 * result["energy_scale"]


def write(tmp_path, name, array):
    path = tmp_path / name
    np.save(path, array)
    return str(path)


def bad_inputs(tmp_path):
    rng = np.random.default_rng(0)
    good_xi = rng.choice([-1.0, 1.0], size=(5, 10))
    good_cue = good_xi[0].copy()
    nan_xi = good_xi.copy()
    nan_xi[2, 3] = np.nan
    inf_cue = good_cue.copy()
    inf_cue[0] = np.inf
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"this is not a numpy file")
    names = iter(range(100))

    def files(xi, cue):
        n = next(names)
        return ["--patterns", write(tmp_path, f"xi{n}.npy", xi), "--cue", write(tmp_path, f"cue{n}.npy", cue)]

    return {
        "1-D patterns": (files(good_xi[0], good_cue), "2-D"),
        "3-D patterns": (files(good_xi[None], good_cue), "2-D"),
        "cue length": (files(good_xi, good_cue[:7]), "N = 10"),
        "NaN patterns": (files(nan_xi, good_cue), "NaN"),
        "inf cue": (files(good_xi, inf_cue), "NaN or inf"),
        "K = 0 file": (files(np.zeros((0, 10)), good_cue), "K >= 1"),
        "K = 0 generated": (["--K", "0"], "K >= 1"),
        "negative tau_u": (["--tau-u", "-1"], "tau_u must be positive"),
        "zero tau_g": (["--tau-g", "0"], "tau_g must be positive"),
        "zero dt": (["--dt", "0"], "dt must be positive"),
        "NaN beta": (["--beta", "nan"], "beta"),
        "unknown similarity": (["--similarity", "cubic"], "unknown similarity"),
        "missing file": (["--patterns", str(tmp_path / "none.npy"), "--cue", str(tmp_path / "none.npy")],
                         "does not exist"),
        "unreadable file": (["--patterns", str(garbage), "--cue", str(garbage)], "not a readable .npy"),
        "patterns without cue": (["--patterns", write(tmp_path, "xi.npy", good_xi)], "go together"),
        "unknown method": (["--method", "rk4"], "invalid choice"),
        "bad number": (["--beta", "lots"], "argument --beta: expected a number"),
        "negative duration": (["--duration", "-5"], "duration"),
    }


@pytest.mark.parametrize("case", [
    "1-D patterns", "3-D patterns", "cue length", "NaN patterns", "inf cue", "K = 0 file", "K = 0 generated",
    "negative tau_u", "zero tau_g", "zero dt", "NaN beta", "unknown similarity", "missing file",
    "unreadable file", "patterns without cue", "unknown method", "bad number", "negative duration",
])
def test_bad_input_gives_one_line_error_and_exit_code_2(tmp_path, capsys, case):
    argv, fragment = bad_inputs(tmp_path)[case]
    try:
        code = main(["recall", "--K", "5", "--N", "10", *argv])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("astrogate") and "error" in lines[0]
    assert fragment in lines[0]
    assert "Traceback" not in captured.err + captured.out


def test_console_script_exit_code_and_no_traceback(tmp_path):
    bin_dir = __import__("pathlib").Path(sys.executable).parent
    proc = subprocess.run([str(bin_dir / "astrogate"), "recall", "--K", "0"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "astrogate: error: patterns: need at least one pattern (K >= 1), got K = 0"


def all_subparsers(parser, prefix=()):
    """(command words, parser) for every subcommand, nested ones (bench retrieval, ...) included."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from all_subparsers(sub, (*prefix, name))


def test_every_option_a_help_names_is_an_option_of_that_command():
    """A help that mentions --backend (a section title, a hint) offers --backend; `compare --help` once had a
    "Brian2 network (--backend brian2)" section without the option."""
    import re

    from astrogate.cli.main import build_parser

    checked = 0
    for words, sub in all_subparsers(build_parser()):
        offered = {option for action in sub._actions for option in action.option_strings}
        named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", sub.format_help()))
        assert named <= offered, f"astrogate {' '.join(words)} --help names {sorted(named - offered)}"
        checked += 1
    assert checked >= 7
