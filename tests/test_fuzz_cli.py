"""Property-based fuzzing of the command line: numeric and path options of every subcommand,
malformed pattern arrays, sweep specs and benchmark configs.

(attention and bench mqar are fuzzed the same way.)

The properties: no run prints a traceback; every refusal exits 2 with one line on stderr; every accepted
run exits 0 with finite outputs. Accepted runs are exercised where they take milliseconds: `recall` on the
abstract backend (numbers, paths, arrays) and one point of each accepted sweep spec. For the subcommands
whose runs take minutes (compare and demo build Brian2 networks, bench speed, spiking-study, a whole
benchmark or sweep), the fuzzer draws only values that must be refused, and checks that they are.

The default suite runs a few dozen examples per test; ASTROGATE_FUZZ_EXAMPLES=1000 runs more by hand.
"""

import atexit
import io
import json
import math
import os
import shutil
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from astrogate.cli.main import main
from astrogate.errors import InputError

EXAMPLES = int(os.environ.get("ASTROGATE_FUZZ_EXAMPLES", "0"))


def fuzz(default: int):
    return settings(max_examples=EXAMPLES or default, deadline=None, derandomize=not EXAMPLES,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])


def run_cli(argv) -> tuple[int, str, str]:
    """(exit code, stdout, stderr); any exception but SystemExit escaping main is a failure of the test."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def check_outcome(argv, code, out, err) -> None:
    event(f"exit {code}")
    assert "Traceback" not in out + err, (argv, err)
    assert code in (0, 2), (argv, code, err)
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("astrogate") and "error" in lines[0], (argv, err)
    else:
        assert err == "", (argv, err)
        assert "nan" not in out.lower().replace("nanny", ""), (argv, out)


# -- numbers as the user types them -----------------------------------------------------------------

BAD_NUMBERS = ["nan", "inf", "-inf", "-1", "0", "1e308", "-1e308", "abc", "", "1e-320", "999999999999999999999",
               "0x10", "1,5", " "]


def number_text(low: float, high: float, integer: bool = False, bad=()):
    """(values in range, as text; values that should be refused or overflow, as text)."""
    good = (st.integers(int(low), int(high)) if integer else st.floats(low, high, allow_nan=False)).map(str)
    return good, st.sampled_from([*BAD_NUMBERS, *bad])


RECALL_NUMBERS = {  # ranges whose runs take milliseconds; the bad values add the edges of each range
    "--K": number_text(1, 30, True, ["10000000000000"]), "--N": number_text(2, 40, True, ["1"]),
    "--seed": number_text(0, 2**32 - 1, True, ["4294967296", "-5"]),
    "--duration": number_text(0.05, 100.0, bad=["0.01"]), "--dt": number_text(0.05, 0.4, bad=["20", "0.5"]),
    "--tau-u": number_text(0.5, 30.0, bad=["0.05"]), "--tau-g": number_text(0.5, 40.0, bad=["0.05"]),
    "--beta": number_text(0.0, 1e4), "--gamma": number_text(0.1, 10.0), "--kappa": number_text(0.0, 10.0),
    "--cue-scale": number_text(-2.0, 2.0), "--flip": number_text(0.0, 1.0, bad=["1.5", "-0.5"]),
    "--correlation": number_text(0.0, 1.0, bad=["1.5"]), "--tol": number_text(0.0, 1e-2),
    "--target-pattern": number_text(0, 0, True, ["-3", "40"]),
}


def output_path(tmp: Path, name: str):
    """Where an output may be sent: plain, nested, a folder, a device, a symlink, a read-only place."""
    link = tmp / f"link-{name}"
    return st.sampled_from([
        None, None, tmp / name, tmp / "a" / "b" / name, tmp, Path("/dev/full"), Path("/dev/null"), link,
        Path("/sys") / name, tmp / (name + ".txt"),
    ])


ARRAY_DTYPES = st.one_of(hnp.floating_dtypes(), hnp.integer_dtypes(), hnp.complex_number_dtypes(),
                         hnp.boolean_dtypes(), hnp.datetime64_dtypes(), hnp.unicode_string_dtypes(),
                         st.just(np.dtype([("a", float), ("b", "i4")])))


def arrays(max_side: int = 12):
    return hnp.arrays(ARRAY_DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=max_side))


def special_file(tmp: Path, name: str):
    """Files that are no .npy array, and a good one."""
    def make(kind):
        path = tmp / name
        if kind == "text":
            path.write_text("1 2 3\n")
        elif kind == "empty":
            path.write_bytes(b"")
        elif kind == "npz":
            np.savez(path.with_suffix(".npz"), a=np.ones(3))
            return path.with_suffix(".npz")
        elif kind == "truncated":
            np.save(path, np.ones((4, 6)))
            path.write_bytes(path.read_bytes()[:-10])
        elif kind == "folder":
            return tmp
        elif kind == "device":
            return Path("/dev/null")
        elif kind == "missing":
            return tmp / "missing.npy"
        return path

    return st.sampled_from(["text", "empty", "npz", "truncated", "folder", "device", "missing"]).map(make)


@st.composite
def recall_argv(draw, tmp: Path):
    argv = ["recall"]
    bad_share = draw(st.sampled_from([0.0, 0.0, 0.1, 0.5]))  # half the examples have only values in range
    for option, (good, bad) in RECALL_NUMBERS.items():
        if draw(st.booleans()):
            argv += [option, draw(bad if draw(st.floats(0, 1)) < bad_share else good)]
    argv += ["--method", draw(st.sampled_from(["euler", "euler", "adaptive"]))]
    if draw(st.integers(0, 3)) == 0:  # arrays from files instead of generated patterns
        argv = [a for i, a in enumerate(argv) if not (a == "--target-pattern" or argv[i - 1] == "--target-pattern")]
        for option, name in (("--patterns", "xi.npy"), ("--cue", "cue.npy")):
            if draw(st.integers(0, 4)) == 0:
                path = draw(special_file(tmp, name))
            else:
                path = tmp / name
                np.save(path, draw(arrays()), allow_pickle=False)
            argv += [option, path]
    json_path = draw(st.one_of(st.just(tmp / "r.json"), output_path(tmp, "r.json")))
    if json_path is not None:
        argv += ["--json", json_path]
    if draw(st.integers(0, 5)) == 0:  # figures are the slow part: fewer of them
        plot = draw(output_path(tmp, "r.png"))
        if plot is not None:
            argv += ["--plot", plot]
    return argv


def finite_result(path: Path) -> None:
    result = json.loads(path.read_text())
    for key in ("v", "u", "a", "g", "m", "energy", "overlap_trace", "gain_trace", "t", "max_gain",
                "softmax_residual", "energy_scale"):
        values = np.asarray(result[key], dtype=float)
        assert np.all(np.isfinite(values)), key


@fuzz(40)
@given(data=st.data())
def test_fuzz_recall_numbers_paths_and_arrays(data):
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        (tmp / "link-r.json").symlink_to(tmp / "target.json")
        (tmp / "link-r.png").symlink_to(tmp / "target.png")
        argv = data.draw(recall_argv(tmp))
        code, out, err = run_cli(argv)
        check_outcome(argv, code, out, err)
        if code == 0 and "--json" in argv:
            json_path = Path(argv[argv.index("--json") + 1])
            if json_path not in (Path("/dev/full"), Path("/dev/null")):
                finite_result(json_path.resolve())
        assert os.stat("/dev/full").st_mode == DEV_FULL_MODE and os.stat("/dev/null").st_mode == DEV_NULL_MODE


DEV_FULL_MODE = os.stat("/dev/full").st_mode
DEV_NULL_MODE = os.stat("/dev/null").st_mode


# -- subcommands whose runs take minutes: values that must be refused -------------------------------

def refused_values(option_values: dict, minimum: int = 1):
    return st.dictionaries(st.sampled_from(sorted(option_values)), st.just(None), min_size=minimum,
                           max_size=3).flatmap(lambda chosen: st.fixed_dictionaries(
                               {k: option_values[k] for k in chosen}))


INVALID = st.sampled_from(["nan", "inf", "-inf", "-1", "abc", ""])
INVALID_MODEL = {  # each refused before any network is built
    "--duration": st.sampled_from(["nan", "inf", "-1", "0", "abc", "1e308"]),
    "--seed": st.sampled_from(["-1", "4294967296", "1.5", "abc"]),
    "--K": st.sampled_from(["0", "-3", "999999999999999999999", "abc"]),
    "--N": st.sampled_from(["1", "0", "999999999999999999999"]),
    "--dt": st.sampled_from(["0", "-0.1", "nan", "10", "1e308"]),
    "--tau-u": st.sampled_from(["0", "-1", "inf", "0.01"]),
    "--tau-g": st.sampled_from(["0", "nan", "0.01"]),
    "--beta": st.sampled_from(["-1", "nan", "inf"]),
    "--gamma": st.sampled_from(["0", "-2", "nan"]),
    "--kappa": st.sampled_from(["-1", "nan", "-inf"]),
    "--flip": st.sampled_from(["-0.1", "1.5", "nan"]),
    "--correlation": st.sampled_from(["-0.1", "2", "nan"]),
    "--cue-scale": st.sampled_from(["nan", "inf"]),
}
INVALID_BY_COMMAND = {
    ("compare",): INVALID_MODEL,
    ("demo",): {"--duration": st.sampled_from(["nan", "inf", "-1", "0", "abc", "1e308"])},
    ("spiking-study", "--out", "{tmp}/study"): {
        "--duration": INVALID, "--seeds": st.sampled_from(["0", "-1", "1e9", "abc", "1.5"]),
        "--beta": INVALID, "--K": st.sampled_from(["1", "0", "-5", "1000000000"]),
        "--neuron": st.sampled_from(["rate", "hodgkin", ""])},
    ("bench", "speed", "--out", "{tmp}/speed"): {
        "--memory-cap-gb": INVALID, "--naam-time-cap-s": INVALID, "--repeats": st.sampled_from(["0", "-1", "x"]),
        "--sizes": st.sampled_from(["", ",", "1000", "1:1", "a:b", "10:99999999999999999", "100:10,,"]),
        "--simulators": st.sampled_from(["", ",", "bogus", "numpy,bogus"])},
    ("bench", "retrieval", "--out", "{tmp}/bench"): {
        "--workers": st.sampled_from(["0", "-1", "abc", "1.5"]),
        "--config": st.sampled_from(["{tmp}", "/dev/null", "{tmp}/missing.toml", "{tmp}/bad.toml"])},
    ("sweep", "{tmp}/spec.toml", "--out", "{tmp}/sweep"): {
        "--workers": st.sampled_from(["0", "-1", "abc"]),
        "--scheduler": st.sampled_from(["bogus://x", "tcp://", "://", "tcp://[::1"])},
    ("plot",): {"sweep_dir": st.sampled_from(["{tmp}", "{tmp}/missing", "/dev/null"])},
    ("attention",): {
        "--seed": st.sampled_from(["-1", "abc", "1.5", "4294967296"]),
        "--duration": st.sampled_from(["nan", "inf", "-1", "0", "1e308"]), "--tol": st.sampled_from(["-1", "nan"]),
        "--scale": st.sampled_from(["nan", "-1", "0"]), "--tau-y": st.sampled_from(["0", "nan", "-1"]),
        **{f"--{name}": st.sampled_from(["0", "-1", "1e30", "x"]) for name in ("T", "n", "d", "D")},
        "--queries": st.sampled_from(["{tmp}", "/dev/null", "{tmp}/missing.npy", "{tmp}/bad.toml"])},
    ("bench", "mqar", "--out", "{tmp}/mqar"): {
        "--seed": st.sampled_from(["-1", "abc"]), "--d": st.sampled_from(["1", "0", "abc", "1e30"]),
        "--D": st.sampled_from(["1", "-4"]), "--sequences": st.sampled_from(["0", "-1"]),
        "--queries": st.sampled_from(["0", "nan"]),
        "--loads": st.sampled_from(["", ",", "a", "0", "8,,16", "100000000000"]),
        "--replot": st.sampled_from(["{tmp}", "/dev/null", "{tmp}/missing"])},
}


@fuzz(60)
@given(data=st.data(), command=st.sampled_from(sorted(INVALID_BY_COMMAND)))
def test_fuzz_every_subcommand_refuses_bad_numbers_and_paths_in_one_line(data, command):
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "bad.toml").write_bytes(b"[benchmark]\nN = \xff\n")
        (Path(folder) / "spec.toml").write_text('[sweep]\nname = "s"\n[fixed]\nN = 10\nK = 2\n')
        chosen = data.draw(refused_values(INVALID_BY_COMMAND[command]))
        argv = [part.format(tmp=folder) for part in command]
        for option, value in chosen.items():
            argv += [value.format(tmp=folder)] if option == "sweep_dir" else [option, value.format(tmp=folder)]
        if command == ("plot",) and "sweep_dir" not in chosen:
            argv.append(folder)
        code, out, err = run_cli(argv)
        check_outcome(argv, code, out, err)
        assert code == 2, (argv, out)


# -- malformed sweep specs and benchmark configs ----------------------------------------------------

TOML_VALUES = st.one_of(
    st.integers(-5, 50), st.sampled_from([0, 1, 2, 10**9, 10**18, -(10**9)]),
    st.floats(-2, 2, allow_nan=False), st.sampled_from(["nan", "inf", "-inf", "1e308", "1e-320"]).map(float),
    st.booleans(), st.sampled_from(["", "x", "quadratic", "power:3", "../x"]),
)
SPEC_FIELDS = ["N", "K", "load", "trials", "seed", "flip", "mask", "correlation", "tau_ratio", "beta", "gamma",
               "kappa", "tau_u", "tau_g", "dt", "cue_scale", "similarity", "bogus"]


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value == math.inf else "-inf" if value == -math.inf
                                                 else repr(value))
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


VALID_FIELDS = {  # values a point runs in milliseconds with
    "N": st.integers(2, 30), "K": st.integers(1, 8), "load": st.floats(0.05, 2.0), "trials": st.integers(1, 4),
    "seed": st.integers(0, 100), "flip": st.floats(0, 1), "mask": st.floats(0, 1), "correlation": st.floats(0, 1),
    "tau_ratio": st.floats(0.5, 5.0), "beta": st.floats(0, 100), "gamma": st.floats(0.5, 5), "kappa": st.floats(0, 3),
    "tau_u": st.floats(1, 20), "tau_g": st.floats(1, 40), "dt": st.floats(0.01, 0.2), "cue_scale": st.floats(0, 1),
    "similarity": st.sampled_from(["quadratic", "linear", "power:3"]),
}


@st.composite
def sweep_specs(draw) -> str:
    """Specs with values in range (half the examples), or any of TOML_VALUES and unknown names."""
    clean = draw(st.booleans())

    def value(key):
        if clean or (key in VALID_FIELDS and draw(st.booleans())):
            return draw(VALID_FIELDS[key])
        return draw(TOML_VALUES)

    keys = st.sampled_from(sorted(VALID_FIELDS) if clean else SPEC_FIELDS)
    lines = ["[sweep]"]
    if not clean and draw(st.booleans()):
        lines.append(f"name = {json.dumps(draw(st.sampled_from(['ok', '', '..', '../../escape', 'a/b', '.'])))}")
    duration = draw(st.floats(0.5, 60.0)) if clean or draw(st.booleans()) else draw(TOML_VALUES)
    lines += ["[model]", f"duration = {toml_value(duration)}"]
    if draw(st.booleans()):
        lines.append(f"method = {json.dumps(draw(st.sampled_from(['euler', 'adaptive'] + ([] if clean else ['rk4']))))}")
    fixed = {key: value(key) for key in draw(st.lists(keys, max_size=5, unique=True))}
    if clean or draw(st.integers(0, 4)):  # mostly a plausible size, so that specs get past the first checks
        if "load" not in fixed:
            fixed.setdefault("K", draw(VALID_FIELDS["K"]))
        fixed.setdefault("N", draw(VALID_FIELDS["N"]))
        fixed.setdefault("trials", draw(VALID_FIELDS["trials"]))
    if clean:  # one of each pair that give the same quantity two ways
        fixed.pop("load" if "K" in fixed else "K", None) if "K" in fixed and "load" in fixed else None
        fixed.pop("tau_ratio", None) if "tau_g" in fixed else None
    lines.append("[fixed]")
    lines += [f"{key} = {toml_value(v)}" for key, v in fixed.items()]
    lines.append("[axes]")
    for key in draw(st.lists(keys, max_size=2, unique=True)):
        if key in fixed or (clean and key in ("K", "load", "tau_g", "tau_ratio")):
            continue
        if clean or draw(st.booleans()):
            values = draw(st.lists(st.builds(value, st.just(key)), min_size=1 if clean else 0, max_size=4,
                                   unique_by=str if clean else None))
            lines.append(f"{key} = {{ values = [{', '.join(toml_value(v) for v in values)}] }}")
        else:
            num = draw(st.sampled_from([0, 1, 3, 10**8, 10**12, -1]))
            lines.append(f"{key} = {{ start = {toml_value(value(key))}, stop = {toml_value(value(key))}, "
                         f"num = {num} }}")
    return "\n".join(lines) + "\n"


@fuzz(60)
@given(text=sweep_specs())
def test_fuzz_sweep_specs_are_refused_in_one_line_or_run_with_finite_metrics(text):
    from astrogate.analysis.study import enumerate_points
    from astrogate.analysis.sweep import simulate_point
    from astrogate.analysis.sweep import load_spec

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "spec.toml"
        path.write_text(text)
        try:
            spec = load_spec(path)
        except InputError as exc:
            assert "\n" not in str(exc)
            code, out, err = run_cli(["sweep", path, "--out", Path(folder) / "out"])
            check_outcome(["sweep", text], code, out, err)
            assert code == 2 and not (Path(folder) / "out").exists()
            return
        event("spec accepted: a point run")
        point = enumerate_points(spec)[0]
        metrics = simulate_point(point.values, spec.model)
        for name in ("nearest_accuracy", "exact_match", "final_overlap", "converged", "max_gain"):
            assert math.isfinite(metrics[name]), (text, metrics)


BENCH_KEYS = {"seed": TOML_VALUES, "N": st.one_of(st.integers(-2, 40), TOML_VALUES), "instances": TOML_VALUES,
              "cues": TOML_VALUES, "loads": st.lists(TOML_VALUES, max_size=3), "gallery_cues": TOML_VALUES,
              "pattern_sets": st.lists(st.sampled_from(["iid", "corr:0.5", "corr:2", "clustered", "bogus", ""]),
                                       max_size=2),
              "corruptions": st.lists(st.sampled_from(["flip:0.2", "mask:0.5", "flip:2", "bogus", ""]), max_size=2)}


@fuzz(40)
@given(bench=st.fixed_dictionaries({}, optional=BENCH_KEYS),
       models=st.lists(st.sampled_from(["cue", "oracle", "hopfield", "bogus", ""]), max_size=2))
def test_fuzz_bench_configs_are_checked_before_anything_runs(bench, models):
    from astrogate.analysis.benchmark import load_benchmark_config as load_config

    lines = ["[benchmark]"]
    for key, value in bench.items():
        text = f"[{', '.join(toml_value(v) for v in value)}]" if isinstance(value, list) else toml_value(value)
        lines.append(f"{key} = {text}")
    for i, kind in enumerate(models):
        lines += [f"[models.m{i}]", f"kind = {json.dumps(kind)}"]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "b.toml"
        path.write_text("\n".join(lines) + "\n")
        try:
            load_config(path)
        except InputError as exc:
            assert "\n" not in str(exc)
            code, out, err = run_cli(["bench", "retrieval", "--config", path, "--out", Path(folder) / "out",
                                      "--no-progress"])
            check_outcome(["bench", lines], code, out, err)
            assert code == 2 and not (Path(folder) / "out").exists()


# -- every subcommand, counted per target (tests/fuzzing.py) -------------------------------------------------
# Each example is one command line: options valid or hostile (tests/fuzzing.py Draw). The cheap subcommands
# (recall, attention, plot) run when every option is valid; the others get one option that must be refused
# before any work starts (a network built, a cluster started, a grid run), so that the fuzz stays fast.

from fuzzing import Draw, arrays as any_arrays, assert_no_failures, examples_for, run_target  # noqa: E402

HOSTILE_TEXT = st.sampled_from([*BAD_NUMBERS, "1e400", "-0", "1_000", "\u0663", "0.5.5", "x" * 300, "--", "-",
                                "\t", "None", "[1]", "{}", "1e-400", "5e-324", "\x7f", "é"])


def option_values(draw, table: dict, tmp: Path) -> list:
    """argv of the options drawn from `table` ({option: valid strategy or None for a flag})."""
    argv = []
    for option, valid in table.items():
        if draw.draw(st.integers(0, 2)) == 0:
            continue
        if valid is None:  # a flag: present or not
            argv.append(option)
            continue
        value = draw(valid, HOSTILE_TEXT)
        argv += [option, str(value).replace("{tmp}", str(tmp))]
    return argv


def path_option(tmp: Path, name: str):
    """Where an output may be sent (output_path above), as text, and a name too long for a file system."""
    return output_path(tmp, name).filter(lambda p: p is not None).map(str) | st.just(str(tmp / ("x" * 300)))


def floats_text(low, high):
    return st.floats(low, high, allow_nan=False).map(repr)


def ints_text(low, high):
    return st.integers(low, high).map(str)


MODEL_OPTIONS = {"--beta": floats_text(0, 1e3), "--gamma": floats_text(0.5, 5), "--kappa": floats_text(0, 3),
                 "--tau-u": floats_text(2, 20), "--tau-g": floats_text(2, 40), "--dt": st.sampled_from(["0.05", "0.1"]),
                 "--cue-scale": floats_text(-1, 1), "--similarity": st.sampled_from(["quadratic", "linear", "power:3"])}
PROBLEM_OPTIONS = {"--K": ints_text(1, 12), "--N": ints_text(2, 16), "--correlation": floats_text(0, 1),
                   "--flip": floats_text(0, 1), "--seed": ints_text(0, 2**32 - 1)}


def cli_call(argv):
    def call():
        code, out, err = run_cli(argv)
        return argv, code, out, err
    return call


def check_cli(description, result) -> str | None:
    argv, code, out, err = result
    check_outcome(argv, code, out, err)
    return "refused" if code == 2 else None


def cli_finite(result):
    """No NaN in what a run prints (numbers in its summary lines)."""
    argv, code, out, err = result
    return [float("nan")] if "nan" in out.lower().replace("nanny", "") else []


def t_cli_recall(draw, tmp):
    argv = ["recall", *option_values(draw, {**PROBLEM_OPTIONS, **MODEL_OPTIONS}, tmp)]
    argv += option_values(draw, {"--duration": st.sampled_from(["1", "5", "20"]), "--tol": st.sampled_from(["0", "1e-6"]),
                                 "--method": st.sampled_from(["euler", "exponential_euler", "adaptive"]),
                                 "--stop": st.sampled_from(["fixed_point", "decided"]),
                                 "--dtype": st.sampled_from(["float64", "float32"])}, tmp)
    if draw.draw(st.integers(0, 3)) == 0:
        for option, name in (("--patterns", "p.npy"), ("--cue", "c.npy")):
            path = tmp / name
            np.save(path, draw.draw(any_arrays()), allow_pickle=False)
            argv += [option, str(path)]
    if draw.draw(st.booleans()):
        argv += ["--json", draw(st.just(str(tmp / "r.json")), path_option(tmp, "r.json"))]
    if draw.draw(st.integers(0, 5)) == 0:
        argv += ["--plot", draw(st.just(str(tmp / "r.png")), path_option(tmp, "r.png"))]
    if draw.draw(st.integers(0, 7)) == 0:  # Brian2 options: refused on the abstract backend, never a network
        argv += [draw.draw(st.sampled_from(["--device", "--neuron", "--gating", "--threads"])), "x"]
    return " ".join(argv), cli_call(argv)


def t_cli_attention(draw, tmp):
    argv = ["attention", *option_values(draw, {
        "--T": ints_text(1, 4), "--n": ints_text(1, 12), "--d": ints_text(1, 8), "--D": ints_text(1, 4),
        "--seed": ints_text(0, 99), "--mode": st.sampled_from(["query", "retrieval"]), "--scale": floats_text(0.05, 3),
        "--similarity": st.sampled_from(["linear", "quadratic"]), "--kappa-v": floats_text(-3, 3),
        "--tau-y": floats_text(1, 30), "--duration": st.sampled_from(["5", "50"]), "--tol": st.sampled_from(["1e-6", "0"])},
        tmp)]
    if draw.draw(st.integers(0, 3)) == 0:  # arrays from files: any dtype and shape, or a header that lies
        for option, name in (("--queries", "q.npy"), ("--keys", "k.npy"), ("--values", "v.npy")):
            path = tmp / name
            np.save(path, draw.draw(any_arrays(6)), allow_pickle=False)
            argv += [option, str(path)]
    if draw.draw(st.integers(0, 3)) == 0:
        argv += ["--out", draw(st.just(str(tmp / "att")), path_option(tmp, "att"))]
    if draw.draw(st.integers(0, 7)) == 0:  # Brian2 options: refused on the abstract backend
        argv += [draw.draw(st.sampled_from(["--target", "--layout"])), "x"]
    return " ".join(argv), cli_call(argv)


_SWEEP_FOLDER = {}


def sweep_folder(tmp_root: Path) -> Path:
    """A finished two-point sweep (made once), for `astrogate plot`."""
    if "path" not in _SWEEP_FOLDER:
        from distributed import Client, LocalCluster

        from astrogate.analysis.sweep import run_sweep
        from astrogate.analysis.sweep import load_spec

        folder = Path(tempfile.mkdtemp(prefix="astrogate-fuzz-sweep-"))
        atexit.register(shutil.rmtree, folder, True)
        (folder / "spec.toml").write_text('[sweep]\nname = "s"\n[model]\nduration = 2.0\n[fixed]\nN = 8\ntrials = 1\n'
                                          '[axes]\nK = { values = [1, 2] }\nseed = { values = [0, 1] }\n')
        with Client(LocalCluster(n_workers=1, processes=False, dashboard_address=None)) as client:
            run_sweep(load_spec(folder / "spec.toml"), folder / "out", client, progress=False)
        _SWEEP_FOLDER["path"] = folder / "out"
    return _SWEEP_FOLDER["path"]


def t_cli_plot(draw, tmp):
    folder = sweep_folder(tmp)
    argv = ["plot", draw(st.just(str(folder)), st.one_of(HOSTILE_TEXT, st.just(str(tmp)), path_option(tmp, "s")))]
    # one metric (a valid run draws its figures only: seconds, not the half minute of all of them)
    argv += ["--metric", draw(st.sampled_from(["exact_match", "max_gain"]), st.one_of(HOSTILE_TEXT, st.just("bogus")))]
    argv += option_values(draw, {"--x": st.sampled_from(["K", "seed", "N"]), "--y": st.sampled_from(["K", "seed"])}, tmp)
    argv += ["--out", draw(st.just(str(tmp / "figures")), path_option(tmp, "figures"))]
    return " ".join(argv), cli_call(argv)


# subcommands whose accepted runs take minutes: each example carries one value that must be refused before
# any work (INVALID_BY_COMMAND above), among options valid or hostile
EXPENSIVE = {
    ("compare",): {**PROBLEM_OPTIONS, **MODEL_OPTIONS, "--duration": st.sampled_from(["5", "20"]),
                   "--json": st.just("{tmp}/c.json"), "--plot": st.just("{tmp}/c.png")},
    ("demo",): {"--duration": st.sampled_from(["10", "100"]), "--out": st.just("{tmp}/demo"), "--no-brian2": None},
    ("spiking-study", "--out", "{tmp}/study"): {"--quick": None, "--neuron": st.sampled_from(["poisson", "lif"]),
                                                 "--seeds": ints_text(1, 3), "--beta": floats_text(0, 50),
                                                 "--K": ints_text(2, 20), "--duration": st.sampled_from(["50", "200"])},
    ("bench", "speed", "--out", "{tmp}/speed"): {"--quick": None, "--sizes": st.just("1000:100"),
                                                  "--repeats": ints_text(1, 3), "--memory-cap-gb": floats_text(0.1, 4)},
    ("bench", "retrieval", "--out", "{tmp}/bench"): {"--quick": None, "--workers": ints_text(1, 2), "--no-progress": None},
    ("bench", "mqar", "--out", "{tmp}/mqar"): {"--quick": None, "--sequences": ints_text(1, 4), "--d": ints_text(2, 16),
                                                "--seed": ints_text(0, 9), "--no-progress": None},
    ("bench", "fast-check"): {"--out": st.just("{tmp}/fc")},
    ("sweep", "{tmp}/spec.toml", "--out", "{tmp}/sweep"): {"--workers": ints_text(1, 2), "--no-progress": None,
                                                             "--resume": None},
    ("paper",): {"--quick": None},
}
REFUSED_BY_COMMAND = {**INVALID_BY_COMMAND,
                      ("paper",): {"--out": st.sampled_from(["{tmp}/spec.toml", "{tmp}/bad.toml"])},
                      ("bench", "fast-check"): {"--cells": st.sampled_from(["", ",", "bogus", "quick,bogus", "x" * 300])}}


def expensive_target(command):
    def target(draw, tmp):
        (tmp / "spec.toml").write_text('[sweep]\nname = "s"\n[fixed]\nN = 10\nK = 2\n')
        (tmp / "bad.toml").write_bytes(b"[benchmark]\nN = \xff\n")
        argv = [part.replace("{tmp}", str(tmp)) for part in command]
        argv += option_values(draw, EXPENSIVE[command], tmp)
        refused = REFUSED_BY_COMMAND[command]
        option = draw.draw(st.sampled_from(sorted(refused)))
        value = draw.draw(refused[option]).replace("{tmp}", str(tmp))
        argv += [value] if option == "sweep_dir" else [option, value]

        def call():
            argv_, code, out, err = cli_call(argv)()
            assert code == 2, f"{argv}: exit {code}, a value that must be refused was run: {out[-300:]} {err[-300:]}"
            return argv_, code, out, err

        return " ".join(argv), call
    return target


CLI_TARGETS = {"recall": t_cli_recall, "attention": t_cli_attention, "plot": t_cli_plot,
               **{" ".join(part for part in command if "{" not in part and not part.startswith("--")):
                  expensive_target(command) for command in EXPENSIVE}}


def test_every_subcommand_has_a_fuzz_target():
    from astrogate.cli.main import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    names = {name for name in commands if name != "bench"}
    names |= {f"bench {name}" for name in commands["bench"]._subparsers._group_actions[0].choices}
    assert names == set(CLI_TARGETS)


@pytest.mark.parametrize("name", sorted(CLI_TARGETS))
def test_fuzz_cli(name):
    assert_no_failures(run_target(f"cli {name}", CLI_TARGETS[name], examples_for(slow=False), check_cli, cli_finite))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CLI_TARGETS))
def test_fuzz_cli_1000_examples(name):
    assert_no_failures(run_target(f"cli {name}", CLI_TARGETS[name], examples_for(slow=True), check_cli, cli_finite))
