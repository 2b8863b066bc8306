"""Hostile input, third round: sizes from files, integrators and numbers, the Python API's types, long paths,
signals and the shared build folder. One section per class of the round, each with the examples that found it
and cases of its own; the fuzz of every public name and subcommand is tests/test_fuzz_api.py and
tests/test_fuzz_cli.py."""

import json
import math
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import astrogate as ag
from cli_helpers import run
from astrogate.cli.main import main
from astrogate.errors import InputError
from astrogate import machine
from astrogate.models import checks
from astrogate.models.abstract import ADAPTIVE_MIN_EVALUATIONS, AstroGateModel, RunInputs
from astrogate.models.attention import HeteroAssociativeMemory
from astrogate.models.parameters import Parameters

GIB = 2**30




def refused(argv, capsys, *fragments) -> str:
    """Exit 2 with one line naming the problem; returns the line."""
    code, out, err = run(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("astrogate: error: "), (code, out, err)
    assert "Traceback" not in out + err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def memory_available(monkeypatch):
    """Pretend this machine has `gib` GiB available (require_memory's view), whatever it really has."""
    def set_available(gib):
        monkeypatch.setattr(machine, "machine_memory", lambda: (int(gib * GIB), int(2 * gib * GIB)))
    return set_available


def lying_npy(path: Path, shape: tuple, data_bytes: int, dtype: str = "<f8") -> Path:
    """A .npy header describing `shape` followed by `data_bytes` bytes (fewer than it describes, or a hole)."""
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": dtype, "fortran_order": False, "shape": shape})
        fh.write(b"\0" * data_bytes)
    return path


# -- sizes from files: the memory a run needs, from the headers, before loading or allocating ---------------

def test_attention_on_3000_queries_from_files_is_refused_before_the_run(tmp_path, capsys, memory_available):
    """The reported case: 3000 x 8 queries, keys and values ran 86 s to an _ArrayMemoryError; the traces of
    3000 x 3000 gains alone need about 30 GiB."""
    memory_available(16)
    rng = np.random.default_rng(0)
    for name in ("q", "k", "v"):
        np.save(tmp_path / f"{name}.npy", rng.normal(size=(3000, 8)))
    line = refused(["attention", "--queries", tmp_path / "q.npy", "--keys", tmp_path / "k.npy",
                    "--values", tmp_path / "v.npy"], capsys, "attention of T = 3000 queries over n = 3000 keys",
                   "estimated before allocating")
    needed = float(line.split("needs about ")[1].split(" GiB")[0])
    assert 25 < needed < 40  # 450 samples of 3000 x 3000 gains, 8 bytes each: 30 GiB
    # the same sizes generated are refused with the same estimate
    assert refused(["attention", "--n-queries", "3000", "--n", "3000", "--d", "8", "--D", "8"], capsys).split(
        "needs about ")[1].split(" GiB")[0] == f"{needed:.3g}"


def test_a_patterns_file_whose_header_lies_is_refused_before_reading(tmp_path, capsys):
    """The reported case: a 4 KB file whose header says 2500 x 100000 float64 (2 GB)."""
    patterns = lying_npy(tmp_path / "p.npy", (2500, 100000), 4096 - 128)
    np.save(tmp_path / "c.npy", np.ones(100000))
    refused(["recall", "--patterns", patterns, "--cue", tmp_path / "c.npy"], capsys,
            "shape (2500, 100000)", "1.86 GiB of data", "the file holds 3968 bytes", "truncated or damaged")


def test_a_sparse_patterns_file_of_zeros_is_refused_without_reading_it(tmp_path, capsys, memory_available):
    """A file of the full size (2 GB) that stores nothing but its header: the first pattern reads as all
    zeros, which is refused at once; with too little memory for it, the memory is refused first."""
    patterns = lying_npy(tmp_path / "p.npy", (2500, 100000), 0)
    os.truncate(patterns, 128 + 2500 * 100000 * 8)
    assert os.stat(patterns).st_blocks * 512 < 100000  # a hole: nothing stored
    np.save(tmp_path / "c.npy", np.ones(100000))
    memory_available(64)
    refused(["recall", "--patterns", patterns, "--cue", tmp_path / "c.npy"], capsys, "pattern 0 is all zeros",
            "stores no data there")
    memory_available(4)
    refused(["recall", "--patterns", patterns, "--cue", tmp_path / "c.npy"], capsys,
            "loading the patterns file", "shape (2500, 100000)", "estimated before allocating")


def test_every_file_input_is_checked_from_its_header(tmp_path, capsys, memory_available):
    memory_available(1)
    np.save(tmp_path / "p.npy", np.ones((3, 10)))
    np.save(tmp_path / "small.npy", np.ones((4, 3)))
    lying_npy(tmp_path / "cue.npy", (10,), 16)
    refused(["recall", "--patterns", tmp_path / "p.npy", "--cue", tmp_path / "cue.npy"], capsys,
            "cue file", "holds 16 bytes")
    # a string array of 10^6 entries of 10^5 characters: 400 GB described in a header of a few bytes more
    lying_npy(tmp_path / "q.npy", (10**6,), 64, "<U100000")
    for option in ("--queries", "--keys", "--values"):
        files = {"--queries": tmp_path / "small.npy", "--keys": tmp_path / "small.npy", "--values": tmp_path / "small.npy",
                 option: tmp_path / "q.npy"}
        refused(["attention", *[str(x) for pair in files.items() for x in pair]], capsys,
                f"{option[2:]} file", "holds 64 bytes")
    with pytest.raises(InputError, match="file_problem|patterns file"):
        ag.file_problem(tmp_path / "q.npy", tmp_path / "cue.npy")


def test_traces_and_the_adaptive_jacobian_are_counted_before_the_run(memory_available):
    """Own cases: record_every = dt keeps every step (not the 450 samples of the default) and LSODA holds a
    dense Jacobian of all cues' variables; both are estimated before anything is allocated."""
    memory_available(2)
    problem = ag.generated_problem(K=200, N=100, seed=0)
    model = AstroGateModel(problem.patterns)
    cues = np.tile(problem.cue, (100, 1))
    with pytest.raises(InputError, match=r"tracing 1000002 samples of 100 cue\(s\)"):
        model.run(cues, duration=1e5, record_every=0.1)
    with pytest.raises(InputError, match=r"dense Jacobian and LU factors of 30000 variables: 100 cue\(s\)"):
        model.run(cues, duration=10.0, method="adaptive", traces=False)
    trajectory = model.run(cues[:2], duration=1.0, record_every=0.1)  # what fits still runs
    assert trajectory.t.size == 11 and np.all(np.isfinite(trajectory.u))


# -- integrators and numbers -----------------------------------------------------------------------------

@pytest.mark.parametrize("option, value", [("--kappa", "1e300"), ("--beta", "1e300"), ("--beta", "1e40")])
def test_the_adaptive_solver_stops_at_its_work_bound_with_one_line(capsys, option, value):
    """The reported cases never returned: LSODA shrank its step without end."""
    refused(["recall", "--K", "5", "--N", "10", option, value, "--method", "adaptive", "--duration", "20"], capsys,
            f"stopped after {ADAPTIVE_MIN_EVALUATIONS} evaluations of the right-hand side", "too stiff",
            "use method 'euler'")


def test_the_work_bound_leaves_ordinary_adaptive_runs_alone():
    """Own case: a 500 ms retrieval at K = 2 N converges in about a thousand evaluations, far from the bound
    (10 forward-Euler runs' worth: 50000), and matches forward Euler."""
    problem = ag.generated_problem(K=80, N=40, correlation=0.3, seed=3)
    model = AstroGateModel(problem.patterns)
    adaptive = model.run(problem.cue, duration=500.0, method="adaptive")
    assert adaptive.stop_reason == "converged" and adaptive.steps < model.adaptive_work_bound(500.0) / 10
    euler = model.run(problem.cue, duration=500.0)
    assert np.array_equal(np.sign(adaptive.u), np.sign(euler.u))


def test_attention_with_tau_y_below_the_step_is_refused(capsys):
    """The reported case exited 0 with NaN outputs: forward Euler diverges for dt >= 2 tau_y."""
    refused(["attention", "--tau-y", "0.01"], capsys, "dt = 0.1 ms is not below tau_y = 0.01 ms")
    with pytest.raises(InputError, match="tau_y"):
        ag.attention(np.ones((1, 3)), np.eye(3), np.ones((3, 2)), tau_y=0.1)


@pytest.mark.parametrize("kappa_v", ["1e300", "1e-200", "-1e300", "1e-320"])
def test_attention_with_extreme_kappa_v_gives_finite_results(capsys, kappa_v):
    """The reported cases: 1e300 overflowed (OverflowError in c = ... / kappa_v^2), 1e-200 divided by zero."""
    code, out, err = run(["attention", f"--kappa-v={kappa_v}", "--duration", "50"], capsys)
    assert code == 0 and err == "" and "nan" not in out.lower(), (out, err)
    # 300 ms = 30 tau_y: the values are at their fixed point kappa_v V^T g to within e^-30
    result = ag.attention(np.ones((1, 3)), np.eye(3), np.ones((3, 2)), kappa_v=float(kappa_v), duration=300.0)
    assert np.all(np.isfinite(result.outputs)) and np.all(np.isfinite(result.trajectory.energy))
    if abs(float(kappa_v)) > 1e-300:  # subnormal numbers (1e-320) keep a few bits only
        np.testing.assert_allclose(result.outputs, float(kappa_v) * result.gains @ np.ones((3, 2)), rtol=1e-6)


def test_values_of_1e300_run_and_values_beyond_the_range_are_refused(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "q.npy", rng.normal(size=(2, 4)))
    np.save(tmp_path / "k.npy", rng.normal(size=(5, 4)))
    np.save(tmp_path / "v.npy", 1e300 * rng.normal(size=(5, 3)))
    files = ["--queries", tmp_path / "q.npy", "--keys", tmp_path / "k.npy", "--values", tmp_path / "v.npy"]
    code, out, err = run(["attention", *files, "--duration", "50"], capsys)
    assert code == 0 and "nan" not in out.lower(), err
    refused(["attention", *files, "--kappa-v", "1e10"], capsys, "kappa_v * max|values|", "beyond float64's range")


def test_the_value_energy_is_the_formula_without_forming_kappa_v_squared():
    """Own case: (c/2)|e|^2 computed as (c (kappa_v sigma)^2 / 2) |e / (kappa_v sigma)|^2 equals the formula
    where the formula is representable, and stays finite where kappa_v^2 is not (1e-200, 1e300)."""
    rng = np.random.default_rng(1)
    keys, values = rng.normal(size=(6, 4)), rng.normal(size=(6, 3))
    a, y = rng.normal(size=(2, 6)), rng.normal(size=(2, 3))
    for kappa_v in (1e-3, 1.0, 7.0):
        memory = HeteroAssociativeMemory(keys, values, Parameters(beta=4.0), kappa_v=kappa_v)
        sigma = np.linalg.norm(values, 2)
        c = memory.params.kappa * 6 * 4 * memory.params.tau_g / (4.0 * memory.tau_y * kappa_v**2 * sigma**2)
        e = y - kappa_v * ag.AstroGateModel.gains(a) @ values
        np.testing.assert_allclose(memory.value_energy(a, y), 0.5 * c * np.sum(e * e, axis=-1), rtol=1e-12)
        assert memory.value_weight == pytest.approx(c, rel=1e-12)
    for kappa_v in (1e-200, 1e300):
        memory = HeteroAssociativeMemory(keys, values, Parameters(beta=4.0), kappa_v=kappa_v)
        assert np.all(np.isfinite(memory.value_energy(a, kappa_v * y)))


@pytest.mark.parametrize("record_every", [math.inf, -1.0, math.nan, "1", None])
def test_record_every_is_checked(record_every):
    problem = ag.generated_problem(K=5, N=10, seed=0)
    model = AstroGateModel(problem.patterns)
    if record_every is None:
        assert model.run(problem.cue, duration=5.0, record_every=None).t.size > 2
        return
    with pytest.raises(InputError, match="record_every must be"):
        model.run(problem.cue, duration=5.0, record_every=record_every)


def test_a_record_interval_beyond_the_run_samples_its_start_and_end():
    """Own case: 1e300 ms (finite, and beyond any run) is the start and the end, not an overflow."""
    problem = ag.generated_problem(K=5, N=10, seed=0)
    trajectory = AstroGateModel(problem.patterns).run(problem.cue, duration=5.0, record_every=1e300, tol=0.0)
    assert trajectory.t.tolist() == [0.0, 5.0]


@pytest.mark.parametrize("method", ["euler", "exponential_euler"])
def test_a_step_given_to_run_gets_the_stability_check(method):
    """The reported case: AstroGateModel.run(dt=50) ran where Parameters(dt=50) is refused."""
    problem = ag.generated_problem(K=5, N=10, seed=0)
    model = AstroGateModel(problem.patterns)
    with pytest.raises(InputError, match="dt = 50 ms is not below tau_u = 10 ms"):
        model.run(problem.cue, duration=100.0, dt=50.0, method=method)
    with pytest.raises(InputError, match="dt = 15 ms is not below tau_u"):
        ag.make_baseline("gated", problem.patterns, dt=15.0)
    assert model.run(problem.cue, duration=10.0, dt=0.5).dt == 0.5


def test_a_nan_initial_state_or_current_is_named_not_blamed_on_the_parameters():
    problem = ag.generated_problem(K=5, N=10, seed=0)
    model = AstroGateModel(problem.patterns)
    for keyword, value in (("a0", np.full(5, np.nan)), ("u0", np.full(10, np.inf)), ("current", np.full(10, np.nan))):
        with pytest.raises(InputError, match=f"^{keyword}: contains NaN or inf$"):
            model.run(problem.cue, duration=5.0, inputs=RunInputs(t_current=1.0, **{keyword: value}))
    with pytest.raises(InputError, match=r"u\(0\) = cue_scale \* cue overflows"):
        AstroGateModel(problem.patterns, Parameters(cue_scale=2.0)).run(np.full(10, 1e308), duration=1.0)
    # an overflow of the dynamics names the input sizes as well as the parameters
    with pytest.raises(InputError, match="parameters .* or the sizes of the cue, u0, a0 or current"):
        AstroGateModel(problem.patterns, Parameters(kappa=1e308)).run(problem.cue, duration=5.0)


def test_a_run_never_returns_nan():
    """Own case: the attention result is checked as a whole; the fixed-step runs check their state at every
    step. Extreme but finite settings give finite numbers or one refusal."""
    Q, K, V = np.ones((2, 3)), np.eye(3), np.ones((3, 2))
    for options in ({"scale": 1e300}, {"scale": 1e-300}, {"kappa_v": 1e300}):
        result = ag.attention(Q, K, V, duration=20.0, **options)
        assert np.all(np.isfinite(result.outputs)) and math.isfinite(result.output_distance)
    with pytest.raises(InputError, match="overflows float64"):
        ag.attention(1e200 * Q, 1e200 * K, V)


# -- the Python API's types ----------------------------------------------------------------------------------

@pytest.mark.parametrize("target", [1.5, True, "0", [0], np.bool_(True), -1, 5])
def test_targets_are_pattern_indices(tmp_path, target):
    problem = ag.generated_problem(K=5, N=10, seed=0)
    np.save(tmp_path / "p.npy", problem.patterns)
    np.save(tmp_path / "c.npy", problem.cue)
    for make in (lambda: ag.RecallProblem(problem.patterns, problem.cue, target),
                 lambda: ag.generated_problem(5, 10, target=target),
                 lambda: ag.file_problem(tmp_path / "p.npy", tmp_path / "c.npy", target)):
        with pytest.raises(InputError, match="target"):
            make()
    assert ag.RecallProblem(problem.patterns, problem.cue, np.int64(3)).target == 3


@pytest.mark.parametrize("keyword, value, fragment", [
    ("duration", "5", "duration must be a finite number, got '5'"),
    ("duration", None, "duration must be a finite number, got None"),
    ("duration", 10**400, "duration must be a finite number, got <a number of 401 digits>"),
    ("tol", None, "tol must be a finite number, got None"),
    ("method", ["euler"], "unknown method ['euler']"),
    ("backend", np.array(["abstract"]), "unknown backend"),
])
def test_recall_checks_its_arguments(keyword, value, fragment):
    problem = ag.generated_problem(K=5, N=10, seed=0)
    with pytest.raises(InputError) as info:
        ag.recall(problem, **{keyword: value})
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_recall_names_a_wrong_problem_or_params():
    problem = ag.generated_problem(K=5, N=10, seed=0)
    with pytest.raises(InputError, match="problem must be a RecallProblem .* got None"):
        ag.recall(None)
    with pytest.raises(InputError, match="params must be an astrogate Parameters, got dict"):
        ag.recall(problem, {"beta": 1.0})
    with pytest.raises(InputError, match="flip must be a finite number, got None"):
        ag.generated_problem(5, 10, flip=None)


def test_numpy_scalars_are_numbers():
    """Reported: np.float32(3) and np.int64(3) were refused as "not a finite number"."""
    for value in (np.float32(3), np.int64(3), np.float16(2), np.uint8(7)):
        assert checks.finite_number(value, "x") == float(value)
    assert checks.whole_number(np.float32(10), "N") == 10 and checks.seed(np.uint32(5)) == 5
    problem = ag.generated_problem(np.int64(5), np.float32(10), correlation=np.float32(0.5), flip=np.float64(0.1),
                                   seed=np.int64(2), target=np.int8(1))
    result = ag.recall(problem, duration=np.float32(5.0), tol=np.float64(1e-8))
    assert result.K == 5 and result.N == 10
    attention = ag.attention(np.ones((1, 3)), np.eye(3), np.ones((3, 2)), kappa_v=np.float32(1), tau_y=np.int64(10),
                             duration=np.float32(20.0))
    assert np.all(np.isfinite(attention.outputs))
    for value in (np.bool_(True), np.array(3.0), np.float64(np.nan), 10**400):
        with pytest.raises(InputError):
            checks.finite_number(value, "x")


def test_matrix_and_masked_patterns():
    problem = ag.generated_problem(K=6, N=12, seed=0)
    as_matrix = ag.recall(ag.RecallProblem(np.matrix(problem.patterns), problem.cue, problem.target), duration=20.0)
    plain = ag.recall(problem, duration=20.0)
    np.testing.assert_array_equal(as_matrix.u, plain.u)
    masked = np.ma.array(problem.patterns, mask=np.zeros_like(problem.patterns, bool))
    masked.mask[0, 0] = True
    with pytest.raises(InputError, match="masked entries"):
        ag.RecallProblem(masked, problem.cue)


@pytest.mark.parametrize("kind, options", [("modern", {"beta": 1.0}), ("hopfield-continuous", {}), ("oracle", {}),
                                           ("naam", {"steps": 2}), ("hopfield", {}), ("dense", {}), ("cue", {})])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_baselines_refuse_non_finite_patterns_as_the_gated_model_does(kind, options, bad):
    patterns = np.ones((3, 6))
    patterns[1, 2] = bad
    with pytest.raises(InputError, match="patterns: contains NaN or inf"):
        ag.make_baseline(kind, patterns, **options)
    with pytest.raises(InputError, match="patterns: contains NaN or inf"):
        ag.make_baseline("gated", patterns)


def test_baseline_options_are_checked():
    patterns = ag.generated_problem(K=4, N=10, seed=0).patterns
    for kind, options, fragment in (("modern", {"beta": "x"}, "beta must be a finite number"),
                                    ("modern", {"beta": 1.0, "iterate": "yes"}, "iterate must be True or False"),
                                    ("hopfield", {"max_sweeps": None}, "max_sweeps must be a whole number"),
                                    ("hopfield", {"seed": -1}, "seed must be at least 0"),
                                    ("hopfield-continuous", {"dt": 2.0}, "dt must be below 1"),
                                    ("dense", {"power": 400}, "power 400 overflows float64"),
                                    ("dense", {"power": True}, "power must be an integer"),
                                    ("gated", {"settings": ["fast"]}, "unknown run settings"),
                                    ([1], {}, "unknown model kind [1]")):
        with pytest.raises(InputError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
            ag.make_baseline(kind, patterns, **options)


def test_make_baseline_makes_the_documented_gated_spiking_kind():
    """docs/guide/benchmarks.md lists gated_spiking among make_baseline's kinds (it was unknown to it).
    Making it checks its options; retrieving runs Brian2 (tests/test_benchmark.py runs one)."""
    from astrogate.analysis.bench_models import SpikingGated

    patterns = ag.generated_problem(K=4, N=10, seed=0).patterns
    model = ag.make_baseline("gated_spiking", patterns, neuron="lif", duration=50.0, beta=5.0)
    assert isinstance(model, SpikingGated) and model.neuron == "lif" and model.params.beta == 5.0
    with pytest.raises(InputError, match="gated_spiking: option duration must be a finite number"):
        ag.make_baseline("gated_spiking", patterns, duration="50")


def test_the_other_public_functions_check_their_arguments(tmp_path):
    """Own cases, one per function: a wrong type is an InputError naming the argument."""
    with pytest.raises(InputError, match="spec must be a path"):
        ag.load_spec(5)
    with pytest.raises(InputError, match="config must be a path"):
        ag.load_benchmark_config(5)
    with pytest.raises(InputError, match="table must be a pandas DataFrame"):
        ag.head_to_head(None, "a", "b")
    with pytest.raises(InputError, match="parameter 'x': give a non-empty list"):
        ag.explore(lambda point: {}, {"x": 5})
    with pytest.raises(InputError, match="fixed must be a dict"):
        ag.explore(lambda point: {}, {"x": [1]}, fixed=[("y", 1)])
    with pytest.raises(InputError, match="config must be a benchmark study"):
        ag.run_benchmark("quick", tmp_path)
    with pytest.raises(InputError, match="spec must be a Study"):
        ag.run_sweep(str(tmp_path), tmp_path, client=None)
    with pytest.raises(InputError, match="patterns_path must be a path"):
        ag.file_problem(None, None)
    with pytest.raises(InputError, match="RecallResult takes the record"):
        ag.RecallResult(5)
    with pytest.raises(InputError, match="unknown device"):
        ag.Brian2Session(device=["runtime"])
    with pytest.raises(InputError, match="build_dir must be a path"):
        ag.Brian2Session(build_dir=5)
    with pytest.raises(InputError, match="record_every must be a finite number"):
        ag.Brian2Session(record_every="1")
    with pytest.raises(InputError, match="a0: contains NaN"):
        problem = ag.generated_problem(3, 6, seed=0)
        ag.Brian2Session().run(problem.patterns, ag.Parameters(), problem.cue, a0=np.full(3, np.nan))
    with pytest.raises(InputError, match="neuron_sample must be at least 1"):
        ag.AstrocyteGatedMemory(np.ones((2, 4)), neuron_sample=0)
    with pytest.raises(InputError, match="params must be an astrogate Parameters, got bool"):
        ag.AstrocyteGatedMemory(np.ones((2, 4)), True)


# -- paths, signals, a full disk, the build folder ---------------------------------------------------------

LONG = "x" * 300


@pytest.mark.parametrize("argv", [
    ["recall", "--K", "5", "--N", "10", "--json", "{tmp}/" + LONG + ".json"],
    ["recall", "--K", "5", "--N", "10", "--plot", "{tmp}/" + LONG + ".png"],
    ["recall", "--K", "5", "--N", "10", "--json", "{tmp}/" + LONG + "/r.json"],
    ["sweep", "{tmp}/spec.toml", "--out", "{tmp}/" + LONG],
    ["sweep", "{tmp}/" + LONG + ".toml"],
    ["sweep", LONG],
    ["plot", "{tmp}/" + LONG],
    ["plot", "{tmp}/" + LONG + "/sweep"],
])
def test_paths_over_255_characters_are_one_line(tmp_path, capsys, argv):
    (tmp_path / "spec.toml").write_text('[sweep]\nname = "s"\n[fixed]\nN = 10\nK = 2\n')
    refused([part.replace("{tmp}", str(tmp_path)) for part in argv], capsys, "longer than the file system allows")


def test_an_output_name_of_250_characters_is_written(tmp_path, capsys):
    """Own case: the temporary file next to it had 15 more characters than the name, over the 255 limit."""
    path = tmp_path / ("y" * 245 + ".json")
    code, out, err = run(["recall", "--K", "5", "--N", "10", "--json", path], capsys)
    assert code == 0, err
    assert json.loads(path.read_text())["K"] == 5 and os.listdir(tmp_path) == [path.name]


SWEEP_SPEC = """
[sweep]
name = "signals"
[model]
duration = 400.0
tol = 0.0
[fixed]
N = 200
K = 40
trials = 8
[axes]
seed = { values = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15] }
"""


@pytest.mark.parametrize("signum, whole_group", [(signal.SIGTERM, False), (signal.SIGTERM, True),
                                                 (signal.SIGHUP, False)])
def test_sigterm_and_sighup_on_a_sweep_say_what_happened_and_how_to_resume(tmp_path, signum, whole_group):
    """Reported: both exited silently with a "leaked semaphore" warning. `kill` reaches the main process; a
    batch system or a closed terminal reaches the whole group."""
    (tmp_path / "spec.toml").write_text(SWEEP_SPEC)
    out = tmp_path / "out"
    proc = subprocess.Popen([str(Path(sys.executable).parent / "astrogate"), "sweep", str(tmp_path / "spec.toml"),
                             "--workers", "2", "--out", str(out), "--no-progress"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            # a test run under nohup passes SIGHUP ignored on, which astrogate respects
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
    start = time.monotonic()
    while not (out / "points").is_dir() or not list((out / "points").glob("*.json")):
        assert time.monotonic() - start < 300 and proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    (os.killpg if whole_group else os.kill)(proc.pid, signum)
    _, err = proc.communicate(timeout=120)
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum, err
    assert err.strip().splitlines() == [f"astrogate: stopped by {name}: the finished points are in {out / 'points'}; "
                                        f"continue with --resume"]
    finished = list((out / "points").glob("*.json"))
    assert finished and all(json.loads(path.read_text())["status"] == "ok" for path in finished)


def test_a_signal_handler_is_restored_after_main(capsys):
    before = signal.getsignal(signal.SIGTERM)
    run(["recall", "--K", "3", "--N", "6", "--duration", "1"], capsys)
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_full_disk_during_a_sweep_prints_only_the_one_line(tmp_path, capfd, monkeypatch):
    """Reported: Dask's CancelledError warnings came before the line. The disk fills after the first point
    (a write that fails as a full disk does); the cluster's shutdown says nothing."""
    import errno

    from astrogate.analysis.folder import RunFolder

    (tmp_path / "spec.toml").write_text(SWEEP_SPEC.replace("duration = 400.0", "duration = 100.0"))
    written = []
    write = RunFolder.write

    def fill_up(self, relative, data, what="output"):
        if what == "point file":
            if written:
                raise InputError(f"cannot write JSON output {str(self.path)!r}: {os.strerror(errno.ENOSPC).lower()}")
            written.append(relative)
        return write(self, relative, data, what)

    monkeypatch.setattr(RunFolder, "write", fill_up)
    code = main(["sweep", str(tmp_path / "spec.toml"), "--workers", "2", "--out", str(tmp_path / "out"),
                 "--no-progress"])
    captured = capfd.readouterr()
    assert code == 2
    assert captured.err.strip().splitlines() == [f"astrogate: error: cannot write JSON output "
                                                 f"{str(tmp_path / 'out')!r}: no space left on device"]
    assert len(list((tmp_path / "out" / "points").glob("*.json"))) == 1


@pytest.mark.parametrize("spoil", ["other owner", "mode 0777", "a link", "a file"])
def test_the_build_folder_is_never_one_that_someone_else_can_write(tmp_path, monkeypatch, spoil):
    """Reported: /tmp/astrogate-builds was used even when another user owned it with mode 0777 (they could
    change the C++ that is compiled and run). The per-user folder is used only while it is private."""
    import tempfile

    from astrogate.network.devices import fresh_build_dir, private_build_root

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    shared = tmp_path / f"astrogate-builds-{os.getuid()}"
    assert private_build_root() == shared and stat.S_IMODE(shared.stat().st_mode) == 0o700
    shared.rmdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if spoil == "a link":
        shared.symlink_to(elsewhere)
    elif spoil == "a file":
        shared.write_text("")
    else:
        shared.mkdir()
        shared.chmod(0o777)
        if spoil == "other owner":
            if os.geteuid() != 0:
                pytest.skip("giving a folder to another user needs root")
            os.chown(shared, 12345, 12345)
            shared.chmod(0o755)
    assert private_build_root() is None
    build = fresh_build_dir(None)
    info = os.lstat(build)
    assert build.parent == tmp_path and build.name.startswith("astrogate-build-")
    assert info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) == 0o700
    assert not list(elsewhere.iterdir())
