"""Property-based fuzzing of the Python API: every public name of `astrogate` (astrogate.__all__), called with
arguments that are each valid or hostile (wrong types, NumPy scalars, NaN, inf, 10**400, odd arrays, odd paths).

The property (tests/fuzzing.py): every call returns finite results or raises one InputError line; none ends in
another exception, hangs or returns NaN. Calls that would build a Brian2 network, start a Dask cluster or run a
whole benchmark get arguments of which at least one must be refused, so that the fuzz stays fast; the cheap
ones (the abstract model, the baselines, attention, a sweep and an exploration on an in-process cluster, a tiny
benchmark) run when their arguments are valid.

`make test` runs a few examples per target; the slow-marked test runs 1000 per target
(ASTROGATE_FUZZ_EXAMPLES overrides both; ASTROGATE_FUZZ_REPORT=counts.json writes the counts).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import strategies as st

import astrogate as ag
from fuzzing import (EDGE_NUMBERS, HOSTILE, OMIT, WRONG_TYPES, arrays, assert_no_failures, examples_for, odd_arrays, pm1, real_matrix,
                     run_target)

SIZES_K = st.integers(1, 6)
SIZES_N = st.integers(2, 10)
DURATIONS = st.sampled_from([0.5, 2.0, 10.0, 20.0])
SHORT_DURATIONS = st.sampled_from([0.3, 1.0, 3.0])
SEEDS = st.integers(0, 2**32 - 1)
FRACTIONS = st.floats(0.0, 1.0)


def parameters():
    """Valid Parameters of small networks (the fast runs)."""
    return st.builds(ag.Parameters, gamma=st.floats(0.5, 5.0), kappa=st.floats(0.0, 3.0),
                     beta=st.one_of(st.none(), st.floats(0.0, 500.0)), tau_u=st.floats(2.0, 20.0),
                     tau_g=st.floats(2.0, 40.0), similarity=st.sampled_from(["quadratic", "linear", "power:3"]),
                     dt=st.sampled_from([0.05, 0.1, 0.2]), cue_scale=st.floats(-1.0, 1.0))


def patterns_and_cue(draw):
    """(patterns, cue, target): valid, or one of them hostile."""
    patterns = draw(pm1(SIZES_K, SIZES_N), st.one_of(arrays(), odd_arrays(3, 5), HOSTILE))
    K, N = np.shape(patterns) if np.ndim(patterns) == 2 else (3, 5)
    cue = draw(pm1(st.just(1), st.just(N)).map(lambda a: a[0]), st.one_of(arrays(), odd_arrays(1, N), HOSTILE))
    target = draw(st.integers(0, max(K - 1, 0)), st.one_of(st.sampled_from([-1, K, 1.5, True, "0", [0]]), HOSTILE))
    return patterns, cue, target


def valid_problem():
    return st.builds(lambda K, N, seed: ag.generated_problem(K, N, seed=seed), SIZES_K, SIZES_N, st.integers(0, 99))


# -- the targets: each draws one example and returns (description, call) --------------------------------------

PARAMETER_HOSTILE = st.sampled_from(EDGE_NUMBERS + WRONG_TYPES)


def t_parameters(draw, tmp):
    fields = {name: draw(strategy, PARAMETER_HOSTILE, optional=True) for name, strategy in (
        ("gamma", st.floats(0.1, 10)), ("kappa", st.floats(0, 10)), ("beta", st.floats(0, 1e4)),
        ("tau_u", st.floats(1, 30)), ("tau_g", st.floats(1, 40)),
        ("similarity", st.sampled_from(["quadratic", "linear", "power:3"])), ("dt", st.floats(0.01, 0.1)),
        ("cue_scale", st.floats(-2, 2)))}
    kwargs = draw.kwargs(**fields)
    return f"Parameters({kwargs})", lambda: ag.Parameters(**kwargs)


def t_spiking_parameters(draw, tmp):
    fields = {name: draw(strategy, PARAMETER_HOSTILE, optional=True) for name, strategy in (
        ("nu_max", st.floats(1, 400)), ("tau_r", st.floats(1, 50)), ("readout", st.sampled_from(["trace", "event"])),
        ("tau_m", st.floats(1, 20)), ("t_ref", st.floats(0.5, 4)), ("V_th", st.floats(1, 40)),
        ("seed", st.integers(0, 2**32 - 1)))}
    kwargs = draw.kwargs(**fields)
    return f"SpikingParameters({kwargs})", lambda: ag.SpikingParameters(**kwargs)


def t_astro_gate_model(draw, tmp):
    patterns, cue, _ = patterns_and_cue(draw)
    params = draw(parameters(), st.one_of(HOSTILE, st.just({"beta": 1.0})), optional=True)
    N = np.shape(patterns)[1] if np.ndim(patterns) == 2 else 5
    K = np.shape(patterns)[0] if np.ndim(patterns) == 2 else 3
    batch = draw.draw(st.booleans())
    if batch:
        cue = draw(pm1(st.integers(1, 3), st.just(N)), st.one_of(arrays(), HOSTILE))
    B = np.shape(cue)[:-1] if np.ndim(cue) in (1, 2) else ()
    run = draw.kwargs(
        duration=draw(DURATIONS, optional=True),
        method=draw(st.sampled_from(["euler", "exponential_euler", "adaptive"]), optional=True),
        tol=draw(st.sampled_from([0.0, 1e-8, 1e-3]), optional=True),
        record_every=draw(st.sampled_from([None, 0.1, 1.0, 1e300]), optional=True),
        current=draw(st.just(np.ones(B + (N,))), st.one_of(arrays(), odd_arrays(1, N), HOSTILE), optional=True),
        t_current=draw(st.sampled_from([0.0, 1.0, 5.0]), optional=True),
        u0=draw(st.just(np.zeros(B + (N,))), st.one_of(arrays(), HOSTILE), optional=True),
        a0=draw(st.just(np.zeros(B + (K,))), st.one_of(arrays(), st.just(np.full(B + (K,), np.nan)), HOSTILE),
                optional=True),
        stop=draw(st.sampled_from(["fixed_point", "decided"]), optional=True),
        dtype=draw(st.sampled_from(["float64", "float32"]), optional=True),
        dt=draw(st.sampled_from([None, 0.05, 0.2]), st.sampled_from([50.0, 0.0, -1.0, math.nan, "0.1"]), optional=True),
        decided_eps=draw(st.sampled_from([1e-3, 0.1]), optional=True),
        decided_window=draw(st.sampled_from([0.0, 0.5, 1e308]), optional=True),
        traces=draw(st.booleans(), optional=True))
    if same(run.get("method"), "adaptive"):  # its options, mostly (a refusal otherwise)
        if draw.draw(st.integers(0, 3)):
            for key in ("stop", "dtype", "dt"):
                run.pop(key, None)

    def call():
        model = ag.AstroGateModel(patterns, params) if params is not OMIT else ag.AstroGateModel(patterns)
        trajectory = model.run(cue, **run)
        return {"u": trajectory.u, "a": trajectory.a, "overlaps": trajectory.overlaps, "gains": trajectory.gains}

    return f"AstroGateModel({np.shape(patterns)}, {params}).run(cue {np.shape(cue)}, {sorted(run)})", call


def t_recall_problem(draw, tmp):
    patterns, cue, target = patterns_and_cue(draw)
    description = draw(st.just({"source": "fuzz"}), HOSTILE, optional=True)
    kwargs = draw.kwargs(target=draw(st.just(target), optional=True), description=description)
    return (f"RecallProblem({np.shape(patterns)}, {np.shape(cue)}, {kwargs})",
            lambda: vars(ag.RecallProblem(patterns, cue, **kwargs)))


def t_generated_problem(draw, tmp):
    K, N = draw.draw(SIZES_K), draw.draw(SIZES_N)
    kwargs = draw.kwargs(K=draw(st.just(K)), N=draw(st.just(N)), correlation=draw(FRACTIONS, optional=True),
                         flip=draw(FRACTIONS, optional=True), seed=draw(SEEDS, optional=True),
                         target=draw(st.integers(0, K - 1), optional=True))
    return f"generated_problem({kwargs})", lambda: vars(ag.generated_problem(**kwargs))


def same(value, name: str) -> bool:
    """value == name for a str; False for arrays and the rest (which compare element by element)."""
    return isinstance(value, str) and value == name


def save(tmp: Path, name: str, array) -> Path:
    path = tmp / name
    np.save(path, array, allow_pickle=False)
    return path


def lying_npy(path: Path, shape: tuple, data_bytes: int) -> Path:
    """A .npy file whose header describes `shape` (float64) followed by only `data_bytes` bytes of data."""
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False, "shape": shape})
        fh.write(b"\0" * data_bytes)
    return path


def special_path(tmp: Path):
    """Paths that are no .npy array: text, empty, missing, a folder, a device, a header that lies, too long."""
    (tmp / "text.npy").write_text("1 2 3\n")
    (tmp / "empty.npy").write_bytes(b"")
    lying = lying_npy(tmp / "lying.npy", (2500, 100000), 4096)
    return st.sampled_from([tmp / "text.npy", tmp / "empty.npy", tmp / "missing.npy", tmp, Path("/dev/null"),
                            lying, tmp / ("x" * 300 + ".npy"), str(tmp / "text.npy"), "", 5, None, b"x.npy"])


def t_file_problem(draw, tmp):
    patterns, cue, target = patterns_and_cue(draw)
    paths = []
    for name, array in (("p.npy", patterns), ("c.npy", cue)):
        if draw.draw(st.integers(0, 4)) == 0:
            paths.append(draw.draw(special_path(tmp)))
        else:
            try:
                paths.append(save(tmp, name, np.asarray(array)))
            except (TypeError, ValueError):  # an object that np.save cannot write: no file, a missing path
                paths.append(tmp / name)
    kwargs = draw.kwargs(target=draw(st.just(target), optional=True))
    return f"file_problem({paths}, {kwargs})", lambda: vars(ag.file_problem(*paths, **kwargs))


def t_recall(draw, tmp):
    problem = draw(valid_problem(), st.one_of(HOSTILE, st.just({"patterns": np.ones((2, 3))})))
    params = draw(parameters(), st.one_of(HOSTILE, st.just({"beta": 1.0})), optional=True)
    kwargs = draw.kwargs(
        backend=draw(st.just("abstract"), st.one_of(st.just("brian2"), HOSTILE), optional=True),
        duration=draw(DURATIONS, optional=True), method=draw(st.sampled_from(["euler", "adaptive"]), optional=True),
        tol=draw(st.sampled_from([0.0, 1e-8]), optional=True),
        stop=draw(st.sampled_from(["fixed_point", "decided"]), optional=True),
        dtype=draw(st.sampled_from(["float64", "float32"]), optional=True))
    if same(kwargs.get("backend"), "brian2"):  # never a valid Brian2 run here: a device that must be refused
        kwargs["device"] = draw.draw(st.sampled_from(["bogus", 5, None, ""]))
    if same(kwargs.get("method"), "adaptive"):
        kwargs.update(stop="fixed_point", dtype="float64")
    args = (problem,) if params is OMIT else (problem, params)
    def call():
        record = ag.recall(*args, **kwargs).to_dict()
        record.pop("t_converged")  # NaN by design where the run stopped at its time limit
        return record

    return f"recall({problem!r:.60}, {'default' if params is OMIT else params}, {kwargs})", call


def t_paper_preset(draw, tmp):
    """recall with the paper's protocol, one of its settings overridden by a valid or a hostile value."""
    problem = ag.generated_problem(3, 6, seed=draw.draw(st.integers(0, 9)))
    name = draw.draw(st.sampled_from(["T", "tau_p", "tau_x", "sigma", "duration"]))
    value = draw(st.sampled_from([0.01, 0.1, 1.0]), PARAMETER_HOSTILE)
    settings = {**ag.PAPER_PRESET, name: value}

    def call():
        record = ag.recall(problem, **settings).to_dict()
        record.pop("t_converged")
        return record

    return f"recall(problem, **PAPER_PRESET | {{{name!r}: {value!r:.40}}})", call


def t_recall_result(draw, tmp):
    record = draw(st.just({"backend": "abstract"}), st.one_of(HOSTILE, st.just([("a", 1)])))
    return f"RecallResult({record!r:.60})", lambda: dict(ag.RecallResult(record))


KINDS = ["cue", "oracle", "hopfield", "hopfield-continuous", "dense", "modern", "naam", "gated", "gated_spiking"]
OPTIONS = {  # kind -> option strategies (valid values)
    "hopfield": {"max_sweeps": st.integers(1, 5), "seed": SEEDS},
    "dense": {"power": st.sampled_from([2, 3, 4, "exp"]), "max_sweeps": st.integers(1, 5), "seed": SEEDS},
    "hopfield-continuous": {"gain": st.floats(0.5, 5), "dt": st.floats(0.01, 0.5), "max_steps": st.integers(1, 50),
                            "tol": st.floats(0, 1e-2)},
    "modern": {"beta": st.floats(0.01, 10), "iterate": st.booleans(), "max_steps": st.integers(1, 20),
               "tol": st.floats(0, 1e-2)},
    "naam": {"b": st.floats(0.5, 5), "dt": st.floats(0.01, 0.1), "steps": st.integers(1, 20)},
    "gated": {"beta": st.floats(0, 100), "kappa": st.floats(0, 2), "max_duration": SHORT_DURATIONS,
              "tol": st.floats(0, 1e-3), "settings": st.sampled_from(["fast", "reference"]),
              "method": st.sampled_from(["euler", "exponential_euler"]), "dtype": st.sampled_from(["float64", "float32"]),
              "stop": st.sampled_from(["fixed_point", "decided"]), "dt": st.sampled_from([0.05, 0.1])},
    "gated_spiking": {"neuron": st.sampled_from(["poisson", "lif"]), "duration": SHORT_DURATIONS,
                      "nu_max": st.floats(10, 400), "readout": st.sampled_from(["trace", "event"]), "seed": SEEDS},
}


def t_make_baseline(draw, tmp):
    kind = draw(st.sampled_from(KINDS), st.sampled_from(["bogus", "", 5, None, ["gated"], "Gated"]))
    patterns = draw(pm1(SIZES_K, SIZES_N), st.one_of(arrays(), odd_arrays(3, 5), HOSTILE))
    N = np.shape(patterns)[1] if np.ndim(patterns) == 2 else 5
    options = {name: draw(strategy) for name, strategy in OPTIONS.get(kind, {}).items()
               if draw.draw(st.booleans())} if isinstance(kind, str) else {}
    if draw.draw(st.integers(0, 5)) == 0:
        options["bogus_option"] = 1
    cues = draw(pm1(st.integers(1, 3), st.just(N)), st.one_of(arrays(), odd_arrays(2, N), HOSTILE))

    def call():
        model = ag.make_baseline(kind, patterns, **options)
        if kind == "gated_spiking":  # retrieving builds a Brian2 network: making the model checked everything
            return None
        result = model.retrieve(cues)
        return {"states": result.states, "steps": result.steps}

    return f"make_baseline({kind!r}, {np.shape(patterns)}, {options}).retrieve({np.shape(cues)})", call


TINY_CONFIG = """[benchmark]
N = 8
instances = 1
cues = 2
loads = [0.5]
pattern_sets = ["iid"]
corruptions = ["flip:0.2"]
[models.cue]
kind = "cue"
[models.oracle]
kind = "oracle"
"""


def t_load_benchmark_config(draw, tmp):
    (tmp / "tiny.toml").write_text(TINY_CONFIG)
    config = draw(st.sampled_from(["quick", "full", "spiking", tmp / "tiny.toml", str(tmp / "tiny.toml")]),
                  st.one_of(HOSTILE, special_path(tmp)))
    return f"load_benchmark_config({config!r:.80})", lambda: vars(ag.load_benchmark_config(config))


def t_run_benchmark(draw, tmp):
    (tmp / "tiny.toml").write_text(TINY_CONFIG)
    config = ag.load_benchmark_config(tmp / "tiny.toml")
    # a valid run writes figures (about a second): most examples carry one argument that must be refused
    sure_bad = draw.draw(st.sampled_from(["config", "out", "workers", "show_progress", "log", None]))
    refused = {"config": [None, "quick", {}, 5], "out": [None, 5, "", Path("/dev/null"), tmp / ("x" * 300)],
               "workers": [0, -1, "2", None, 1.5], "show_progress": ["no", None, 2], "log": [None, 5, "print"]}
    kwargs = {"config": config, "out": tmp / "out", "workers": 1, "show_progress": False, "log": lambda line: None}
    if sure_bad:
        kwargs[sure_bad] = draw.draw(st.sampled_from(refused[sure_bad]))
    return (f"run_benchmark({sure_bad} hostile: {kwargs[sure_bad]!r:.60})" if sure_bad else "run_benchmark(valid)",
            lambda: ag.run_benchmark(**kwargs)["table"][["exact_match", "nearest_accuracy"]].to_numpy())


def benchmark_table():
    import pandas as pd

    rows = []
    for model, rate in (("a", 0.9), ("b", 0.2)):
        rows.append({"model": model, "status": "ok", "pattern_set": "iid", "corruption": "flip:0.2", "load": 0.5,
                     "exact_match": rate, "exact_match_lo": rate - 0.1, "exact_match_hi": rate + 0.05})
    return pd.DataFrame(rows)


def t_head_to_head(draw, tmp):
    table = draw(st.builds(benchmark_table), st.one_of(HOSTILE, st.builds(lambda: benchmark_table().drop(columns="load"))))
    args = [draw(st.sampled_from(["a", "b"]), st.one_of(HOSTILE, st.just("c"))) for _ in range(2)]
    metric = draw(st.just("exact_match"), st.one_of(HOSTILE, st.just("nearest_accuracy")), optional=True)
    kwargs = draw.kwargs(metric=metric)
    return f"head_to_head({type(table).__name__}, {args}, {kwargs})", lambda: ag.head_to_head(table, *args, **kwargs)


_CLIENT = None


def client():
    """One in-process Dask cluster (threads) for the explorations and sweeps of the fuzz."""
    global _CLIENT
    if _CLIENT is None:
        from distributed import Client, LocalCluster

        _CLIENT = Client(LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None))
    return _CLIENT


@pytest.fixture(scope="module", autouse=True)
def close_the_cluster():
    yield
    global _CLIENT
    if _CLIENT is not None:
        cluster = _CLIENT.cluster
        _CLIENT.close()
        cluster.close()
        _CLIENT = None


def evaluate_point(point):
    return {"sum": float(sum(v for v in point.values() if isinstance(v, (int, float))))}


def t_explore(draw, tmp):
    evaluate = draw(st.just(evaluate_point), st.one_of(HOSTILE, st.just(lambda point: "not a dict")))
    parameters = draw(st.just({"x": [1.0, 2.0], "y": [0.5]}),
                      st.one_of(HOSTILE, st.just({"x": 5}), st.just({"x": []}), st.just({})))
    fixed = draw(st.just({"z": 1.0}), st.one_of(HOSTILE, st.just({"x": 1})), optional=True)
    # a valid call needs a cluster: the shared in-process one, or (workers given) one that must be refused
    kwargs = draw.kwargs(fixed=fixed, progress=draw(st.just(False), HOSTILE))
    if draw.draw(st.integers(0, 4)):
        kwargs["client"] = draw(st.builds(client), st.sampled_from([5, "tcp://x", object()]))
    else:
        kwargs["workers"] = draw.draw(st.sampled_from([0, -1, "2", 1.5, None, math.nan, 10**400]))
        if kwargs["workers"] is None:
            kwargs["client"] = 5

    def call():
        dataset = ag.explore(evaluate, parameters, **kwargs)
        return {name: dataset[name].values for name in dataset.data_vars if name not in ("status", "error")}

    return f"explore({evaluate!r:.30}, {parameters!r:.60}, {sorted(kwargs)})", call


SPEC = """[sweep]
name = "fuzz"
[model]
duration = 2.0
[fixed]
N = 8
K = 2
trials = 1
[axes]
seed = { values = [0, 1] }
"""


def t_load_spec(draw, tmp):
    (tmp / "spec.toml").write_text(SPEC)
    path = draw(st.sampled_from([tmp / "spec.toml", str(tmp / "spec.toml"), "study_load_taug", "study_beta_correlation"]),
                st.one_of(HOSTILE, special_path(tmp)))
    return f"load_spec({path!r:.80})", lambda: vars(ag.load_spec(path))


def t_run_sweep(draw, tmp):
    (tmp / "spec.toml").write_text(SPEC)
    spec = draw(st.builds(lambda: ag.load_spec(tmp / "spec.toml")), HOSTILE)
    out = draw(st.just(tmp / "out"), st.one_of(HOSTILE, st.sampled_from([tmp / ("x" * 300), Path("/dev/null")])))
    the_client = draw(st.builds(client), st.sampled_from([None, 5, "tcp://127.0.0.1:1"]))
    kwargs = draw.kwargs(resume=draw(st.booleans(), optional=True), max_points=draw(st.integers(1, 3), optional=True),
                         progress=draw(st.just(False), HOSTILE))

    def call():
        outcome = ag.run_sweep(spec, out, the_client, **kwargs)
        return {"total": outcome.total, "ran": outcome.ran}

    return f"run_sweep({type(spec).__name__}, {out!r:.60}, {type(the_client).__name__}, {kwargs})", call


def t_load_study(draw, tmp):
    (tmp / "spec.toml").write_text(SPEC)
    path = draw(st.sampled_from([tmp / "spec.toml", "bench_quick", "mqar_quick", "spiking_study", "fast_check"]),
                st.one_of(HOSTILE, special_path(tmp)))
    return f"load_study({path!r:.80})", lambda: {"points": ag.load_study(path).n_points}


def t_run_study(draw, tmp):
    (tmp / "spec.toml").write_text(SPEC)
    study = draw(st.builds(lambda: ag.load_study(tmp / "spec.toml")), HOSTILE)
    out = draw(st.just(tmp / "out"), st.one_of(HOSTILE, st.sampled_from([tmp / ("x" * 300), Path("/dev/null")])))
    the_client = draw(st.builds(client), st.sampled_from([5, "tcp://127.0.0.1:1"]))
    kwargs = draw.kwargs(resume=draw(st.booleans(), HOSTILE, optional=True),
                         force=draw(st.just(True), HOSTILE, optional=True), progress=draw(st.just(False), HOSTILE))

    def call():
        outcome = ag.run_study(study, out, the_client, **kwargs)
        return {"total": outcome.total, "ran": outcome.ran}

    return f"run_study({type(study).__name__}, {out!r:.60}, {type(the_client).__name__}, {kwargs})", call


def t_study(draw, tmp):
    """A Study built by hand, run: whatever is wrong with it is refused in one line before any point runs."""
    fields = {"name": draw(st.just("s"), HOSTILE), "evaluation": draw(st.just("retrieval"), st.one_of(
        HOSTILE, st.sampled_from(["bogus", "explore", ""]))), "settings": draw(st.just({"duration": 2.0}), HOSTILE),
        "fixed": draw(st.just({"N": 8, "K": 2, "trials": 1}), st.one_of(HOSTILE, st.just({"N": math.nan})))}

    def call():
        from astrogate.analysis.spec import study_from_tables

        tables = {"study": {"name": fields["name"], "evaluation": fields["evaluation"]},
                  "model": fields["settings"], "fixed": fields["fixed"]}
        study = study_from_tables(tables)
        outcome = ag.run_study(study, tmp / "study_out", draw_client, force=True, progress=False)
        return {"total": outcome.total}

    draw_client = client()
    return f"Study via study_from_tables({fields!r:.80})", call


def qkv(draw):
    T, n, d, D = (draw.draw(st.integers(1, 3)), draw.draw(st.integers(1, 6)), draw.draw(st.integers(1, 5)),
                  draw.draw(st.integers(1, 4)))
    hostile = st.one_of(arrays(6), odd_arrays(n, d), HOSTILE, st.just(np.full((n, d), 1e300)))
    return (draw(real_matrix(st.just(T), st.just(d)), hostile), draw(real_matrix(st.just(n), st.just(d)), hostile),
            draw(real_matrix(st.just(n), st.just(D)), hostile))


def t_attention(draw, tmp):
    Q, K, V = qkv(draw)
    kwargs = draw.kwargs(
        mode=draw(st.sampled_from(["query", "retrieval"]), optional=True),
        backend=draw(st.just("abstract"), st.one_of(st.just("brian2"), HOSTILE), optional=True),
        scale=draw(st.one_of(st.none(), st.floats(0.01, 10)), optional=True),
        similarity=draw(st.sampled_from([None, "linear", "quadratic", "power:3"]), optional=True),
        kappa_v=draw(st.floats(-3, 3), st.one_of(HOSTILE, st.sampled_from([1e300, 1e-200, 1e-320])), optional=True),
        tau_y=draw(st.floats(1, 30), st.one_of(HOSTILE, st.sampled_from([0.01, 0.1, 0.2])), optional=True),
        params=draw(parameters(), st.one_of(HOSTILE, st.just({"beta": 1.0})), optional=True),
        duration=draw(st.sampled_from([None, 5.0, 50.0]), optional=True),
        tol=draw(st.sampled_from([None, 1e-6, 0.0]), optional=True),
        record_every=draw(st.sampled_from([None, 0.5, 1e300]), optional=True),
        target=draw(st.just(None), optional=True), chunk=draw(st.just(50.0), optional=True),
        layout=draw(st.just("batched"), optional=True))
    if same(kwargs.get("backend"), "brian2"):  # never a valid Brian2 run here
        kwargs["layout"] = draw.draw(st.sampled_from(["bogus", 5, None]))

    def call():
        result = ag.attention(Q, K, V, **kwargs)
        return {"outputs": result.outputs, "gains": result.gains, "distances": [result.output_distance,
                                                                                result.gain_distance]}

    return f"attention({np.shape(Q)}, {np.shape(K)}, {np.shape(V)}, {kwargs!r:.200})", call


def t_attention_result(draw, tmp):
    values = [draw(st.just(np.ones((2, 3))), HOSTILE) for _ in range(4)]
    # a record of what a run gave, not a run: it holds what it is given (NaN too); constructing it never fails
    return "AttentionResult(...)", lambda: ag.AttentionResult(*values, "query", "abstract", 1.0, 1.0, "linear",
                                                              np.ones(2, bool), 0.0) and None


# -- Brian2: never a valid build (an argument that must be refused), so no network is compiled or run ---------

BRIAN2_REFUSED = {
    "device": st.sampled_from(["bogus", "", 5, None, ["runtime"]]),
    "target": st.sampled_from(["bogus", 5, None]),
    "gating": st.sampled_from(["bogus", 5, None, ["dense"]]),
    "record_every": st.sampled_from([-1.0, 0.0, math.nan, "1", 10**400, math.inf]),
    "neuron": st.sampled_from(["hodgkin", 5, None, ""]),
    "threads": st.sampled_from([0, -1, 1.5, "2", None, 10**400]),
    "compute_capability": st.sampled_from([1.0, 99.0, "9.0", math.nan, 10**400]),
    "method": st.sampled_from(["rk4", 5, None]),
    "build_dir": st.sampled_from([5, b"x", object()]),
}


def t_brian2_session(draw, tmp):
    refused = draw.draw(st.sampled_from(sorted(BRIAN2_REFUSED)))
    kwargs = {refused: draw.draw(BRIAN2_REFUSED[refused])}
    if refused == "target":
        kwargs["device"] = "runtime"
    return f"Brian2Session({kwargs})", lambda: ag.Brian2Session(**kwargs)


def t_brian2_session_run(draw, tmp):
    session = ag.Brian2Session()
    problem = ag.generated_problem(3, 6, seed=0)
    args = {"patterns": problem.patterns, "params": ag.Parameters(), "u0": problem.cue * 0.5, "a0": None,
            "duration": 1.0, "current": None, "t_current": 0.0}
    refused = draw.draw(st.sampled_from(["patterns", "params", "u0", "a0", "duration", "current", "t_current"]))
    args[refused] = draw.draw(st.sampled_from({
        "patterns": [np.full((3, 6), np.nan), np.ones(6), None, "x", np.ones((3, 1))],
        "params": [None, {"beta": 1.0}, 5, "x"],
        "u0": [np.ones(5), np.full(6, np.nan), None, "x"],
        "a0": [np.ones(5), np.full(3, np.nan), "x"],
        "duration": [0.0, -1.0, math.nan, "5", 10**400, None, 0.01],
        "current": [np.ones(5), np.full(6, np.inf), "x"],
        "t_current": [math.nan, "1", None, 10**400]}[refused]))

    def call():
        with session:
            return session.run(**args)[1]

    return f"Brian2Session().run({refused}={args[refused]!r:.60})", call


def t_recall_batch(draw, tmp):
    """recall_batch with one argument refused (a valid batch would build a network per example)."""
    problems = [ag.generated_problem(3, 6, seed=seed) for seed in range(3)]
    kwargs = {"duration": 1.0, "target": "numpy"}
    refused = draw.draw(st.sampled_from(["problems", "params", "per_copy", "method", "duration", "option", "device"]))
    if refused == "problems":
        problems = draw.draw(st.one_of(st.sampled_from([[], None, "x", problems[:1] + [ag.generated_problem(4, 6, seed=0)],
                                                        [problems[0].patterns], 5]), HOSTILE))
    elif refused == "params":
        kwargs["params"] = draw.draw(st.one_of(st.sampled_from([{"beta": 1.0}, 5, "x", [ag.Parameters()] * 3]), HOSTILE))
    elif refused == "per_copy":
        kwargs[draw.draw(st.sampled_from(["beta", "tau_g", "dt", "similarity"]))] = draw.draw(st.one_of(
            st.sampled_from([[1.0, 2.0], np.ones((3, 2)), [math.nan] * 3, ["x"] * 3, [-1.0] * 3]), HOSTILE))
    elif refused == "method":
        kwargs["method"] = draw.draw(st.one_of(st.sampled_from(["adaptive", "rk4", None]), HOSTILE))
    elif refused == "duration":
        kwargs["duration"] = draw.draw(st.one_of(st.sampled_from([0.0, -1.0, math.nan, "5", 10**400]), HOSTILE))
    elif refused == "option":
        kwargs["bogus"] = 1
    else:
        kwargs["device"] = draw.draw(st.one_of(st.sampled_from(["bogus", 5, None, ""]), HOSTILE))
    if refused not in ("device", "option", "params"):
        kwargs["device"] = "bogus"  # never a valid run: refused after everything else was checked

    def call():
        return [result.to_dict() for result in ag.recall_batch(problems, **kwargs)]

    return f"recall_batch({refused}: {kwargs!r:.80})", call


def t_astrocyte_gated_memory(draw, tmp):
    refused = draw.draw(st.sampled_from(["patterns", "params", "neuron", "gating", "name", "record_every", "method",
                                         "overlap_layout", "option", "neuron_sample"]))
    kwargs = {}
    patterns, params = ag.generated_problem(3, 6, seed=0).patterns, None
    if refused == "patterns":
        patterns = draw.draw(st.one_of(st.sampled_from([np.full((3, 6), np.nan), np.ones((3, 1)), np.ones(6)]),
                                       HOSTILE))
    elif refused == "params":
        params = draw.draw(st.sampled_from([{"beta": 1.0}, 5, "x", True]))
    elif refused == "option":
        kwargs["bogus"] = 1
    else:
        kwargs[refused] = draw.draw({**BRIAN2_REFUSED, "name": st.sampled_from(["1x", "a b", 5, None, ""]),
                                "overlap_layout": st.sampled_from(["bogus", 5, None]),
                                "neuron_sample": st.sampled_from([-1, 1.5, "x", None, 10**400])}[refused])
    return (f"AstrocyteGatedMemory({np.shape(patterns)}, {params!r}, {kwargs!r:.80})",
            lambda: ag.AstrocyteGatedMemory(patterns, params, **kwargs))


def t_run_settings(draw, tmp):
    kwargs = draw.kwargs(
        method=draw(st.sampled_from(["euler", "exponential_euler", "adaptive"]), HOSTILE, optional=True),
        dt=draw(st.sampled_from([None, 0.05, 0.5]), PARAMETER_HOSTILE, optional=True),
        dtype=draw(st.sampled_from(["float64", "float32"]), HOSTILE, optional=True),
        stop=draw(st.sampled_from(["fixed_point", "decided"]), HOSTILE, optional=True),
        decided_eps=draw(st.floats(1e-6, 0.4), PARAMETER_HOSTILE, optional=True),
        decided_window=draw(st.floats(0.0, 5.0), PARAMETER_HOSTILE, optional=True),
        form=draw(st.sampled_from(["logit", "replicator"]), HOSTILE, optional=True))
    if draw.draw(st.booleans()):
        name = draw(st.sampled_from(["fast", "reference"]), HOSTILE)
        return f"run_settings({name!r}, {kwargs!r:.200})", lambda: ag.run_settings(name, **kwargs).options()
    return f"RunSettings({kwargs!r:.200})", lambda: ag.RunSettings(**kwargs).options()


def t_run_inputs(draw, tmp):
    """AstroGateModel.run with RunInputs valid or hostile (RunInputs is a record: the run checks it)."""
    problem = draw.draw(valid_problem())
    K, N = problem.patterns.shape
    inputs = ag.RunInputs(**draw.kwargs(
        u0=draw(st.just(np.zeros(N)), st.one_of(HOSTILE, odd_arrays(1, N)), optional=True),
        a0=draw(st.just(np.zeros(K)), st.one_of(HOSTILE, odd_arrays(1, K)), optional=True),
        current=draw(st.just(problem.cue), st.one_of(HOSTILE, odd_arrays(1, N)), optional=True),
        t_current=draw(st.sampled_from([0.0, 1.0]), PARAMETER_HOSTILE, optional=True)))
    model = ag.AstroGateModel(problem.patterns)

    def call():
        run = model.run(problem.cue, 2.0, inputs=inputs, traces=False)
        return {"u": run.u, "a": run.a}

    return f"AstroGateModel.run(inputs={inputs!r:.200})", call


def t_resolve_recall(draw, tmp):
    """resolve_recall, then the RecallRun it made run by its backend."""
    problem = draw(valid_problem(), st.one_of(HOSTILE, st.just({"patterns": np.ones((2, 3))})))
    kwargs = draw.kwargs(
        backend=draw(st.just("abstract"), st.one_of(st.just("brian2"), HOSTILE), optional=True),
        duration=draw(DURATIONS, PARAMETER_HOSTILE, optional=True),
        tol=draw(st.sampled_from([0.0, 1e-8]), PARAMETER_HOSTILE, optional=True),
        stop=draw(st.sampled_from(["fixed_point", "decided"]), HOSTILE, optional=True),
        beta=draw(st.floats(0.0, 200.0), PARAMETER_HOSTILE, optional=True))
    if same(kwargs.get("backend"), "brian2"):  # never a valid Brian2 run here: a device that must be refused
        kwargs["device"] = draw.draw(st.sampled_from(["bogus", 5, None, ""]))

    def call():
        from astrogate.analysis.recall import BACKENDS

        run = ag.resolve_recall(problem, **kwargs)
        record = ag.RecallResult(BACKENDS[run.backend](run)).to_dict()
        record.pop("t_converged")  # NaN by design where the run stopped at its time limit
        return record

    return f"resolve_recall({problem!r:.60}, {kwargs!r:.200})", call


def t_register_backend(draw, tmp):
    from astrogate.analysis.recall import BACKENDS, run_abstract_recall

    name = draw(st.just("fuzzed"), st.one_of(HOSTILE, st.sampled_from(["", "a b", "1x"])))
    run = draw(st.just(run_abstract_recall), HOSTILE)

    def call():
        try:
            ag.register_backend(name, run)
            return ag.recall(ag.generated_problem(3, 8), backend="fuzzed", duration=2.0).to_dict()["final_overlap"]
        finally:
            BACKENDS.pop("fuzzed", None)

    return f"register_backend({name!r:.60}, {run!r:.60})", call


def t_network_settings(draw, tmp):
    kwargs = draw.kwargs(**{name: draw(st.just(value), refused, optional=True) for name, value, refused in (
        ("neuron", "rate", BRIAN2_REFUSED["neuron"]), ("gating", "dense", BRIAN2_REFUSED["gating"]),
        ("method", "exponential_euler", BRIAN2_REFUSED["method"]),
        ("record_every", 0.5, BRIAN2_REFUSED["record_every"]), ("energy", False, HOSTILE),
        ("neuron_sample", 3, st.sampled_from([-1, 1.5, "x", None, 10**400])),
        ("raster_neurons", 0, st.sampled_from([-1, 1.5, "x", None])),
        ("weight_dtype", "float32", st.sampled_from(["float16", 5, "x"])),
        ("overlap_layout", "by_pattern", st.sampled_from(["bogus", 5, None])),
        ("spiking", None, HOSTILE))})
    return f"NetworkSettings({kwargs!r:.200})", lambda: ag.NetworkSettings(**kwargs).neuron_sample


def t_attention_settings(draw, tmp):
    kwargs = draw.kwargs(
        scale=draw(st.one_of(st.none(), st.floats(0.01, 10)), PARAMETER_HOSTILE, optional=True),
        similarity=draw(st.sampled_from([None, "linear"]), HOSTILE, optional=True),
        duration=draw(st.sampled_from([None, 5.0]), PARAMETER_HOSTILE, optional=True),
        tol=draw(st.sampled_from([None, 1e-6]), PARAMETER_HOSTILE, optional=True),
        record_every=draw(st.sampled_from([None, 0.5]), PARAMETER_HOSTILE, optional=True),
        chunk=draw(st.just(50.0), PARAMETER_HOSTILE, optional=True),
        layout=draw(st.just("batched"), HOSTILE, optional=True),
        target=draw(st.just(None), HOSTILE, optional=True))
    return f"AttentionSettings({kwargs!r:.200})", lambda: ag.AttentionSettings(**kwargs).chunk


API_TARGETS = {
    "Parameters": t_parameters,
    "SpikingParameters": t_spiking_parameters,
    "AstroGateModel": t_astro_gate_model,
    "AstrocyteGatedMemory": t_astrocyte_gated_memory,
    "Brian2Session": t_brian2_session,
    "Brian2Session.run": t_brian2_session_run,
    "RecallProblem": t_recall_problem,
    "generated_problem": t_generated_problem,
    "file_problem": t_file_problem,
    "recall": t_recall,
    "recall_batch": t_recall_batch,
    "RecallResult": t_recall_result,
    "PAPER_PRESET": t_paper_preset,
    "make_baseline": t_make_baseline,
    "load_benchmark_config": t_load_benchmark_config,
    "run_benchmark": t_run_benchmark,
    "head_to_head": t_head_to_head,
    "explore": t_explore,
    "run_sweep": t_run_sweep,
    "load_spec": t_load_spec,
    "attention": t_attention,
    "load_study": t_load_study,
    "run_study": t_run_study,
    "Study": t_study,
    "AttentionResult": t_attention_result,
    "RunSettings": t_run_settings,
    "run_settings": t_run_settings,
    "RunInputs": t_run_inputs,
    "RecallRun": t_resolve_recall,
    "resolve_recall": t_resolve_recall,
    "register_backend": t_register_backend,
    "NetworkSettings": t_network_settings,
    "AttentionSettings": t_attention_settings,
}


@pytest.mark.parametrize("make", [lambda: ag.Parameters(gamma=10**400), lambda: ag.SpikingParameters(nu_max=10**400)])
def test_parameters_refuse_huge_integers(make):
    with pytest.raises(ag.InputError, match="must be a finite number"):
        make()


def test_every_public_name_has_a_fuzz_target():
    covered = {name.split(".")[0] for name in API_TARGETS}
    assert covered == set(ag.__all__) - {"InputError", "__version__"}


@pytest.mark.parametrize("name", sorted(API_TARGETS))
def test_fuzz_api(name):
    with np.errstate(all="ignore"):
        assert_no_failures(run_target(name, API_TARGETS[name], examples_for(slow=False)))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(API_TARGETS))
def test_fuzz_api_1000_examples(name):
    with np.errstate(all="ignore"):
        assert_no_failures(run_target(name, API_TARGETS[name], examples_for(slow=True)))
