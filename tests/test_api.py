"""The flat public API: `import astrogate as ag`."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

import astrogate as ag


def test_every_public_name_resolves_and_is_documented():
    for name in ag.__all__:
        value = getattr(ag, name)
        if name != "__version__":
            assert (value.__doc__ or "").strip(), f"astrogate.{name} has no docstring"
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        ag.nonsense


def test_the_namespace_holds_the_public_names_only():
    """Besides __all__ (and the package's submodules), nothing without an underscore: ag.import_module was once
    reachable."""
    import types

    extra = {name for name, value in vars(ag).items()
             if not name.startswith("_") and name not in ag.__all__ and not isinstance(value, types.ModuleType)}
    assert not extra, sorted(extra)
    assert not hasattr(ag, "import_module")
    assert set(dir(ag)) >= set(ag.__all__)


def test_binary_patterns_are_read_as_signs_with_a_warning():
    """0/1 or boolean patterns and cues become -1/+1 (the model's states are signs: as real values, 0/1
    patterns could never be matched exactly); a warning says so."""
    rng = np.random.default_rng(3)
    signs = rng.choice([-1.0, 1.0], size=(8, 40))
    zero_one = (signs > 0).astype(int)
    for patterns, cue, kind in ((zero_one, zero_one[2], "entries of 0 and 1 only"),
                                (signs > 0, signs[2] > 0, "booleans")):
        with pytest.warns(UserWarning) as caught:
            problem = ag.RecallProblem(patterns, cue, target=2)
        assert sorted(str(w.message).split(":")[0] for w in caught) == ["cue", "patterns"]
        assert all(f": {kind} are read as -1 and +1 (2 x - 1)" in str(w.message) for w in caught)
        np.testing.assert_array_equal(problem.patterns, signs)
        np.testing.assert_array_equal(problem.cue, signs[2])
        assert ag.recall(problem).exact_match
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # +-1 and real values: no warning
        ag.RecallProblem(signs, signs[0], 0)
        ag.RecallProblem(rng.normal(size=(3, 10)), np.ones(10))


def test_importing_astrogate_and_the_help_do_not_import_brian2():
    code = ("import sys, astrogate as ag; ag.Parameters(); ag.generated_problem(K=4, N=10); "
            "from astrogate.cli.main import build_parser; build_parser(); print('brian2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    help_ = subprocess.run([sys.executable, "-m", "astrogate", "--help"], capture_output=True, text=True)
    assert help_.returncode == 0 and "usage: astrogate" in help_.stdout and "recall" in help_.stdout


def test_the_five_line_retrieval():
    problem = ag.generated_problem(K=400, N=200, correlation=0.4, flip=0.2, seed=0)
    result = ag.recall(problem)
    assert result.retrieved == problem.target and result.exact_match
    assert result["final_overlap"] == result.final_overlap > 0.99 and result.nearest_accuracy
    record = result.to_dict()
    assert isinstance(record, dict) and record["retrieved"] == problem.target
    assert np.array_equal(np.sign(result.v), problem.patterns[problem.target])
    assert "retrieved pattern" in result.summary()
    with pytest.raises(AttributeError, match="no field 'nope'"):
        result.nope


def test_a_problem_from_arrays_and_the_cli_json_agree(tmp_path):
    """ag.recall on arrays gives the record that `astrogate recall --json` writes for the same files."""
    from astrogate.cli.main import main

    rng = np.random.default_rng(1)
    patterns = rng.choice([-1.0, 1.0], size=(30, 50))
    cue = patterns[7] * np.where(rng.random(50) < 0.15, -1, 1)
    np.save(tmp_path / "p.npy", patterns)
    np.save(tmp_path / "c.npy", cue)
    result = ag.recall(ag.RecallProblem(patterns, cue, target=7), ag.Parameters(beta=500.0), duration=50.0)
    assert main(["recall", "--patterns", str(tmp_path / "p.npy"), "--cue", str(tmp_path / "c.npy"),
                 "--beta", "500", "--duration", "50", "--json", str(tmp_path / "r.json")]) == 0
    written = json.loads((tmp_path / "r.json").read_text())
    assert written["retrieved"] == result.retrieved == 7
    np.testing.assert_allclose(written["u"], result.u, rtol=1e-12, atol=0)


def test_parameters_take_brian2_quantities():
    import brian2 as b2

    params = ag.Parameters(tau_u=5 * b2.ms, tau_g=0.04 * b2.second, dt=50 * b2.usecond)
    assert (params.tau_u, params.tau_g, params.dt) == pytest.approx((5.0, 40.0, 0.05))
    with pytest.raises(ag.InputError, match="tau_g must be in units of"):
        ag.Parameters(tau_g=3 * b2.Hz)


def test_the_shipped_configs_load_by_name():
    quick = ag.load_benchmark_config("quick")
    assert quick.evaluation == "benchmark" and quick.settings["models"] and quick.n_points > 1
    assert ag.load_study("bench_quick") == quick
    spec = ag.load_spec("study_load_taug")
    assert spec.name and spec.n_points > 1


def test_a_shipped_name_beside_a_folder_of_that_name_is_the_shipped_spec(tmp_path, monkeypatch):
    """`astrogate sweep bench_quick --out bench_quick --resume` reads the shipped spec, not the run's folder; a
    file of that name is the user's spec."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bench_quick").mkdir()
    assert ag.load_study("bench_quick") == ag.load_benchmark_config("quick")
    (tmp_path / "study_load_taug").write_text('[sweep]\nname = "mine"\n[fixed]\nN = 20\nK = 4\n'
                                             '[axes]\nbeta = { values = [1.0, 2.0] }\n')
    assert ag.load_study("study_load_taug").name == "mine"


def _evaluate(point):
    """A user's evaluation: exact match of one gated retrieval, and a value that depends on the point only."""
    problem = ag.generated_problem(K=int(point["load"] * point["N"]), N=point["N"], seed=0)
    result = ag.recall(problem, ag.Parameters(beta=point["beta"]), duration=50.0)
    if point["beta"] < 0:
        raise ValueError("negative beta")
    return {"exact_match": result.exact_match, "load_times_beta": point["load"] * point["beta"]}


@pytest.mark.slow
def test_explore_runs_the_users_function_on_dask():
    dataset = ag.explore(_evaluate, {"beta": [200.0, 1000.0], "load": [0.5, 1.0]}, fixed={"N": 40}, workers=1,
                         progress=False)
    assert dict(dataset.sizes) == {"beta": 2, "load": 2}
    np.testing.assert_allclose(dataset["load_times_beta"].values, [[100.0, 200.0], [500.0, 1000.0]])
    assert set(np.unique(dataset["exact_match"].values)) <= {0.0, 1.0}
    assert (dataset["status"].values == "ok").all()


def test_explore_records_a_failing_point_and_refuses_bad_grids():
    from distributed import Client, LocalCluster

    with pytest.raises(ag.InputError, match="non-empty list"):
        ag.explore(_evaluate, {"beta": []})
    with pytest.raises(ag.InputError, match="both fixed and explored"):
        ag.explore(_evaluate, {"beta": [1.0]}, fixed={"beta": 2.0})
    # threads, not processes: the test's function need not be importable by workers
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        dataset = ag.explore(_evaluate, {"beta": [-1.0, 300.0]}, fixed={"N": 30, "load": 0.5}, client=client,
                             progress=False)
    assert list(dataset["status"].values) == ["failed", "ok"]
    assert "parameter beta must be >= 0" in str(dataset["error"].values[0])
    assert np.isnan(dataset["exact_match"].values[0]) and dataset["load_times_beta"].values[1] == 150.0


_CALLS = []  # the points _counting_square evaluated (threads of this process: the test reads it)


def _counting_square(point):
    _CALLS.append(point["x"])
    if point["x"] == "fail":
        raise ValueError("no number")
    return {"square": point["x"] ** 2}


def _always_fails(point):
    raise ImportError("No module named 'my_helpers'")


def threads_client():
    """A Dask client of worker threads in this process (the test's functions need not be importable)."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None)
    return cluster, Client(cluster)


def test_explore_saves_to_a_folder_and_resumes(tmp_path):
    import xarray as xr

    cluster, client = threads_client()
    with cluster, client:
        _CALLS.clear()
        first = ag.explore(_counting_square, {"x": [1.0, 2.0, "fail"]}, client=client, progress=False, out=tmp_path)
        assert sorted(map(str, _CALLS)) == ["1.0", "2.0", "fail"]
        assert len(list((tmp_path / "points").glob("*.json"))) == 3
        _CALLS.clear()
        again = ag.explore(_counting_square, {"x": [1.0, 2.0, "fail"]}, client=client, progress=False,
                           out=tmp_path, resume=True)
        assert sorted(map(str, _CALLS)) == ["fail"]  # the finished points are read, the failed one re-run
        # one folder holds one exploration: another grid is refused in one line, nothing run
        _CALLS.clear()
        with pytest.raises(ag.InputError, match="is not the study the run in"):
            ag.explore(_counting_square, {"x": [1.0, 2.0, "fail", 3.0]}, client=client, progress=False,
                       out=tmp_path, resume=True)
        assert _CALLS == []
    np.testing.assert_array_equal(again["square"].values[:2], first["square"].values[:2])
    assert list(again["status"].values) == ["ok", "ok", "failed"]
    saved = xr.load_dataset(tmp_path / "results.nc")
    np.testing.assert_array_equal(saved["square"].values, again["square"].values)


def test_explore_warns_when_every_point_fails_and_says_why():
    cluster, client = threads_client()
    with cluster, client, pytest.warns(RuntimeWarning, match=r"every point failed \(2 of 2\); 2 with "
                                                               r"ImportError: No module named 'my_helpers'"):
        dataset = ag.explore(_always_fails, {"x": [1, 2]}, client=client, progress=False)
    assert list(dataset["status"].values) == ["failed", "failed"]


def test_demo_runs_and_the_gated_network_wins(tmp_path, capsys):
    """`astrogate demo` (without its Brian2 build, which the slow wheel test runs): the gated network retrieves
    exactly where the classical one fails, and its figure shows both."""
    from astrogate.cli.main import main

    assert main(["demo", "--out", str(tmp_path), "--no-brian2", "--duration", "200"]) == 0
    out = capsys.readouterr().out
    gated, classical = out.split("== classical Hopfield")
    assert "retrieved pattern" in gated and "(exact)" in gated and ", correct;" in gated
    assert "(not exact)" in classical
    record = json.loads((tmp_path / "demo.json").read_text())
    assert len(record) == 2 and all(r["backend"] == "abstract" for r in record.values())


def mirror_problem(cue_pattern, target):
    """Cued with the exact negative of one pattern: the state goes to that pattern's mirror state."""
    patterns = np.random.default_rng(2).choice([-1.0, 1.0], size=(6, 40))
    return ag.RecallProblem(patterns, -patterns[cue_pattern], target=target)


def test_a_mirror_state_of_another_pattern_is_named_as_such(tmp_path, saved_figures):
    """The score F(m) = m^2/2 is even: -xi_mu is an attractor, its astrocyte takes the gains. The record names
    the pattern with its sign, the summary and the JSON say mirror, the figure draws its gain."""
    from astrogate.analysis.plots import plot_recall

    result = ag.recall(mirror_problem(3, target=0), duration=200.0)
    assert (result.retrieved, result.retrieved_sign, result.mirror) == (3, -1, True)
    assert result.m[3] < -0.99 and int(np.argmax(result.g)) == 3 and result.max_gain > 0.99
    assert not result.exact_match and not result.nearest_accuracy
    assert "retrieved the mirror state of pattern 3 (the state is near -xi_3" in result.summary()
    assert "WRONG, target was 0" in result.summary()
    record = json.loads(json.dumps(result.to_dict()))
    assert (record["retrieved"], record["retrieved_sign"], record["mirror"]) == (3, -1, True)
    assert 3 in result.trace_patterns and 0 in result.trace_patterns
    plot_recall(result, tmp_path / "r.png")
    overlaps, gains, _ = saved_figures["r.png"].axes
    winner = result.trace_patterns.index(3)
    np.testing.assert_allclose(gains.lines[winner].get_ydata(), np.asarray(result.gain_trace)[:, winner])
    assert overlaps.lines[winner].get_label() == "pattern 3 (largest gain, mirror: state -xi)"


def test_the_targets_mirror_is_wrong_and_a_plain_retrieval_is_no_mirror():
    result = ag.recall(mirror_problem(0, target=0), duration=200.0)
    assert (result.retrieved, result.mirror) == (0, True) and "WRONG: the target's mirror" in result.summary()
    patterns = mirror_problem(0, target=0).patterns
    plain = ag.recall(ag.RecallProblem(patterns, patterns[0], target=0), duration=200.0)
    assert (plain.retrieved, plain.retrieved_sign, plain.mirror) == (0, 1, False)
    assert "retrieved pattern 0 (exact), correct" in plain.summary()


def test_to_dict_is_json_ready():
    """json.dumps takes the record as it is (arrays as lists, NaN as None), the same record as --json writes."""
    from astrogate.analysis.io import to_jsonable

    result = ag.recall(ag.generated_problem(K=10, N=30, seed=1), duration=20.0)
    record = result.to_dict()
    text = json.dumps(record, allow_nan=False)
    assert json.loads(text) == to_jsonable(result)
    assert isinstance(record["u"], list) and isinstance(record["g"][0], float)
    assert isinstance(record["exact_match"], bool) and isinstance(record["retrieved"], int)


def test_attention_result_prints_one_line():
    rng = np.random.default_rng(0)
    result = ag.attention(rng.normal(size=(3, 4)), rng.normal(size=(5, 4)), rng.normal(size=(5, 2)))
    text = repr(result)
    assert "\n" not in text and len(text) < 200
    assert text.startswith("AttentionResult(mode='query', backend='abstract', T=3, n=5, D=2, converged=3/3")


def attributes_documented(obj) -> set[str]:
    """The names of the numpy-style Attributes section of a docstring ("a, b : type" lines)."""
    import re

    section = obj.__doc__.split("Attributes\n    ----------\n", 1)[1]
    return {name.strip() for line in re.findall(r"^    (\w[\w, ]*) : ", section, flags=re.M) for name in line.split(",")}


def test_every_field_of_the_records_is_documented_with_its_meaning():
    import dataclasses

    record = ag.recall(ag.generated_problem(K=5, N=20), duration=5.0)
    assert set(record) <= attributes_documented(ag.RecallResult)
    assert "brian2" in attributes_documented(ag.RecallResult)
    for cls in (ag.AttentionResult, ag.RecallProblem):
        assert {f.name for f in dataclasses.fields(cls)} <= attributes_documented(cls), cls.__name__


def test_a_registered_backend_runs_the_resolved_run_that_recall_checked():
    from astrogate.analysis.recall import BACKENDS, run_abstract_recall

    seen = []

    def logged(run):
        seen.append(run)
        return run_abstract_recall(run)

    problem = ag.generated_problem(K=4, N=20, seed=1)
    ag.register_backend("logged", logged)
    try:
        result = ag.recall(problem, backend="logged", duration=30.0, beta=100.0, stop="decided")
    finally:
        del BACKENDS["logged"]
    (run,) = seen
    assert isinstance(run, ag.RecallRun) and run.params.beta == 100.0 and run.settings.stop == "decided"
    assert result.exact_match == ag.recall(problem, duration=30.0, beta=100.0, stop="decided").exact_match
    with pytest.raises(ag.InputError, match="unknown backend 'logged'"):
        ag.recall(problem, backend="logged")
    with pytest.raises(ag.InputError, match="a backend is a name and a function"):
        ag.register_backend("no function", None)


def test_run_settings_are_checked_once_when_made():
    with pytest.raises(ag.InputError, match="unknown method 'rk4'"):
        ag.RunSettings(method="rk4")
    with pytest.raises(ag.InputError, match="decided_eps must be in"):
        ag.run_settings("fast", decided_eps=0.7)
    with pytest.raises(ag.InputError, match="unknown run setting.*: step"):
        ag.RunSettings().changed(step=1.0)
    with pytest.raises(ag.InputError, match="form 'replicator'"):
        ag.resolve_recall(ag.generated_problem(K=3, N=10), form="replicator", dtype="float32")
    problem = ag.generated_problem(K=3, N=10)
    model = ag.AstroGateModel(problem.patterns)
    by_keyword = model.run(problem.cue, 20.0, method="exponential_euler", dtype="float32")
    by_object = model.run(problem.cue, 20.0, ag.RunSettings(method="exponential_euler", dtype="float32"))
    assert np.array_equal(by_keyword.u, by_object.u)
