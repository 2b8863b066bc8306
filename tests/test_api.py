"""The flat public API: `import astrogate as ag` (issue 13)."""

import json
import subprocess
import sys

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
    assert "parameter beta must be finite and >= 0" in str(dataset["error"].values[0])
    assert np.isnan(dataset["exact_match"].values[0]) and dataset["load_times_beta"].values[1] == 150.0


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
