"""The paper's own model, names and protocol (Vivet & Arenas 2026): the replicator form against the paper's
equations written out again, the logit form's order in dt, the Lyapunov function of eq. 9, the paper's
parameter names, and the preset's qualitative default result."""

from __future__ import annotations

import math

import numpy as np
import pytest

import astrogate as ag
from astrogate.analysis.metrics import hamming_error, perplexity, soft_hamming_error
from astrogate.cli.main import main
from astrogate.models.abstract import AstroGateModel
from astrogate.models.parameters import PARAMETER_TABLE


# -- the paper's equations, written out from the text (patterns as the columns of Xi, N x K) ---------------
def paper_euler(Xi, x0, T, tau_x, tau_p, sigma, dt, n_steps):
    """Forward Euler of eqs. 4-8 in x and p, as the paper integrates them (appendix .5): every step's x and p."""
    N, K = Xi.shape
    x, p = np.array(x0, dtype=float), np.full(K, 1.0 / K)
    xs, ps = [x], [p]
    for _ in range(n_steps):
        phi = np.tanh(sigma * x)  # eq. 1
        W = (K / N) * Xi @ np.diag(p) @ Xi.T  # eq. 5
        f = (Xi.T @ phi) ** 2 / (2 * N)  # eq. 8
        F = f - T * np.log(p)  # eq. 7
        x = x + dt * (-x + W @ phi) / tau_x  # eq. 4
        p = p + dt * p * (F - p @ F) / tau_p  # eq. 6
        xs.append(x)
        ps.append(p)
    return np.array(xs), np.array(ps)


def paper_lyapunov(Xi, x, p, T, sigma):
    """Eq. 9 (appendix .1.3): -K <p, f> + K T <p, log p> + sum_i [x_i phi(x_i) - (1/sigma) log cosh(sigma x_i)]."""
    N, K = Xi.shape
    phi = np.tanh(sigma * x)
    f = (Xi.T @ phi) ** 2 / (2 * N)
    return -K * p @ f + K * T * p @ np.log(p) + np.sum(x * phi - np.log(np.cosh(sigma * x)) / sigma)


def small_case(seed=1, N=12, K=20, flips=3):
    rng = np.random.default_rng(seed)
    Xi = rng.choice([-1.0, 1.0], size=(N, K))
    cue = Xi[:, 0].copy()
    cue[rng.choice(N, flips, replace=False)] *= -1
    return Xi, cue


PAPER = dict(T=0.1, tau_x=1.0, tau_p=1.0, sigma=1.5)


def exit_code(argv) -> int:
    """`astrogate ARGV`'s exit status, argparse's own refusals (SystemExit) included."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def test_replicator_form_is_forward_euler_of_the_papers_equations():
    Xi, cue = small_case()
    dt, n_steps = 0.01, 300
    xs, ps = paper_euler(Xi, cue, dt=dt, n_steps=n_steps, **PAPER)
    model = AstroGateModel(Xi.T, ag.Parameters(dt=dt, cue_scale=1.0, **PAPER))
    run = model.run(cue, duration=n_steps * dt, tol=0.0, form="replicator")
    assert run.steps == n_steps and run.form == "replicator"
    np.testing.assert_allclose(run.u, xs[-1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.gains(run.a), ps[-1], rtol=0, atol=1e-12)
    assert abs(ps[-1].max() - 1.0 / Xi.shape[1]) > 0.5  # the gains moved far from uniform: a real test
    assert run.extra["simplex_error"] < 1e-13


def test_logit_form_agrees_with_the_replicator_form_to_first_order_in_dt():
    Xi, cue = small_case()
    errors = []
    for dt in (0.02, 0.01, 0.005, 0.0025):
        n_steps = int(round(2.0 / dt))
        xs, ps = paper_euler(Xi, cue, dt=dt, n_steps=n_steps, **PAPER)
        model = AstroGateModel(Xi.T, ag.Parameters(dt=dt, cue_scale=1.0, **PAPER))
        logit = model.run(cue, duration=2.0, tol=0.0)
        errors.append(np.max(np.abs(model.gains(logit.a) - ps[-1])))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(orders - 1.0) < 0.1), orders  # O(dt): halving dt halves the difference
    assert errors[-1] < 1e-3


@pytest.mark.parametrize("form", ["logit", "replicator"])
def test_the_papers_lyapunov_function_is_astrogates_and_never_increases(form):
    Xi, cue = small_case(seed=4)
    dt, n_steps = 0.005, 1000
    params = ag.Parameters(dt=dt, cue_scale=1.0, **PAPER)
    model = AstroGateModel(Xi.T, params)
    xs, ps = paper_euler(Xi, cue, dt=dt, n_steps=n_steps, **PAPER)
    paper_L = np.array([paper_lyapunov(Xi, x, p, PAPER["T"], PAPER["sigma"]) for x, p in zip(xs, ps)])
    astro_L = model.energy(xs, np.log(ps))  # the same trajectory: x is u, ln p are logits of p
    np.testing.assert_allclose(astro_L, paper_L, rtol=1e-12, atol=0)
    scale = np.max(np.abs(paper_L))
    assert np.max(np.diff(paper_L)) <= 1e-12 * scale  # eq. 6 by forward Euler: L never increases
    run = model.run(cue, duration=n_steps * dt, tol=0.0, form=form, record_every=dt)
    assert run.energy.size == n_steps + 1
    assert np.max(np.diff(run.energy)) <= 1e-12 * scale
    assert run.energy[-1] < run.energy[0] - 1.0  # it did descend


def test_replicator_form_refuses_a_step_that_leaves_the_simplex():
    Xi, cue = small_case()
    # dt / tau_g times the fitness deficit of the worst pattern is far above 1: its gain would go negative
    model = AstroGateModel(Xi.T, ag.Parameters(T=0.01, tau_p=1.0, tau_x=1.0, dt=0.5, cue_scale=1.0))
    with pytest.raises(ag.InputError, match="form 'replicator': a gain became negative .* t = "):
        model.run(cue, duration=5.0, tol=0.0, form="replicator")
    with pytest.raises(ag.InputError, match="form 'replicator' .* takes method 'euler'"):
        model.run(cue, duration=5.0, form="replicator", stop="decided")


# -- the paper's names -----------------------------------------------------------------------------------
def test_every_paper_name_round_trips():
    rng = np.random.default_rng(0)
    for _ in range(200):
        T, tau_p, tau_x, sigma = rng.uniform(1e-3, 5.0, 4)
        N = int(rng.integers(2, 5000))
        params = ag.Parameters(T=T, tau_p=tau_p, tau_x=tau_x, sigma=sigma, dt=min(tau_x, tau_p / T) / 20)
        assert (params.T, params.tau_x, params.sigma) == (T, tau_x, sigma)  # held as given
        assert params.tau_p == pytest.approx(tau_p, rel=2.3e-16)  # stored as tau_g = tau_p / T: one rounding
        assert (params.tau_u, params.gamma, params.tau_g) == (tau_x, sigma, tau_p / T)
        resolved = params.resolved(N)
        assert resolved.beta == N / T and resolved.T == T and resolved.N == N
        assert ag.Parameters(**resolved.to_dict()) == resolved
        beta = float(rng.uniform(1.0, 1e5))
        from_beta = ag.Parameters(beta=beta).resolved(N)
        assert from_beta.T == N / beta and from_beta.beta == beta
    defaults = ag.Parameters()
    assert defaults.T == 0.05 and defaults.tau_p == 1.0 and defaults.resolved(30).beta == 20 * 30
    assert ag.Parameters(beta=0.0).resolved(10).T is None  # T infinite: classical Hopfield
    assert ag.Parameters(beta=300.0).T is None  # T = N / beta: unknown until N is
    changed = ag.Parameters(T=0.01, tau_p=1.0).resolved(30)
    assert changed.updated(beta=300.0).T == 0.1 and changed.updated(T=0.02).beta == 1500.0
    assert ag.Parameters(tau_x=2.0).updated(tau_u=3.0).tau_x == 3.0


def test_paper_names_reach_recall_and_the_json(tmp_path):
    problem = ag.generated_problem(K=20, N=16, flip=0.125, seed=2)
    result = ag.recall(problem, T=0.02, tau_p=1.0, tau_x=1.0, sigma=2.0, dt=0.01, duration=20.0)
    assert result.params["beta"] == 16 / 0.02 and result.params["tau_g"] == 50.0
    assert result.params["gamma"] == 2.0 and result.params["tau_u"] == 1.0
    assert result.paper_params == {"T": 0.02, "tau_p": 1.0, "tau_x": 1.0, "sigma": 2.0}
    same = ag.recall(problem, ag.Parameters(beta=800.0, tau_g=50.0, tau_u=1.0, gamma=2.0, dt=0.01), duration=20.0)
    np.testing.assert_array_equal(result.u, same.u)
    with pytest.raises(ag.InputError, match="give beta or T, not both"):
        ag.recall(problem, ag.Parameters(beta=10.0), beta=5.0, T=0.1)


@pytest.mark.brian2
def test_paper_names_reach_the_brian2_memory():
    patterns = np.random.default_rng(0).choice([-1.0, 1.0], size=(6, 10))
    memory = ag.AstrocyteGatedMemory(patterns, T=0.05, tau_p=2.0, tau_x=3.0, sigma=2.5)
    assert memory.params.beta == 10 / 0.05 and memory.params.tau_g == 40.0
    assert (memory.params.tau_u, memory.params.gamma, memory.params.tau_p) == (3.0, 2.5, 2.0)
    with pytest.raises(ag.InputError, match="give gamma or sigma, not both"):
        ag.AstrocyteGatedMemory(patterns, gamma=2.0, sigma=2.0)


BOTH = [dict(beta=10.0, T=0.1), dict(tau_g=10.0, tau_p=1.0), dict(tau_u=1.0, tau_x=1.0), dict(gamma=2.0, sigma=2.0)]
BAD = [("T", 0.0), ("T", -1.0), ("tau_p", 0.0), ("tau_p", -2.0), ("sigma", 0.0), ("sigma", -1.0), ("T", math.nan),
       ("tau_x", math.nan), ("T", "0.01"), ("sigma", "3"), ("T", math.inf), ("tau_p", math.inf), ("T", True),
       ("sigma", None), ("tau_x", None), ("beta", -1.0), ("gamma", np.bool_(True))]


@pytest.mark.parametrize("given", BOTH, ids=lambda d: "+".join(d))
def test_both_names_of_one_quantity_are_refused(given, capsys):
    with pytest.raises(ag.InputError) as refused:
        ag.Parameters(**given)
    message = str(refused.value)
    assert "\n" not in message and all(name in message for name in given) and "not both" in message
    argv = ["recall", "--K", "8", "--N", "10"] + [f"--{k.replace('_', '-')}={v}" for k, v in given.items()]
    assert exit_code(argv) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("name, value", BAD, ids=lambda x: str(x))
def test_bad_values_are_refused_naming_the_parameter(name, value, capsys):
    with pytest.raises(ag.InputError, match=rf"^parameter {name} ") as refused:
        ag.Parameters(**{name: value})
    assert "\n" not in str(refused.value)
    if isinstance(value, float):  # the command line: the same value, or a text that is no number
        for text in (str(value), "abc"):
            assert exit_code(["recall", "--K", "8", "--N", "10", f"--{name.replace('_', '-')}={text}"]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and f"argument --{name.replace('_', '-')}" in err


def test_numpy_scalars_and_quantities_are_numbers():
    import brian2 as b2

    params = ag.Parameters(T=np.float32(0.25), sigma=np.int64(2), tau_x=np.float64(4.0), tau_p=2 * b2.ms)
    assert (params.T, params.sigma, params.tau_x, params.tau_p) == (0.25, 2.0, 4.0, 2.0)
    assert all(type(v) is float for v in (params.T, params.gamma, params.tau_u, params.tau_g))
    with pytest.raises(ag.InputError, match="parameter tau_p must be in units of"):
        ag.Parameters(tau_p=2 * b2.mV)
    with pytest.raises(ag.InputError, match="parameter T is dimensionless"):
        ag.Parameters(T=2 * b2.ms)
    spiking = ag.SpikingParameters(nu_max=np.float32(100), tau_m=5 * b2.ms, V_th=0.015 * b2.volt)
    assert (spiking.nu_max, spiking.tau_m, spiking.V_th) == (100.0, 5.0, pytest.approx(15.0))
    with pytest.raises(ag.InputError, match="parameter t_ref must be in units of ms"):
        ag.SpikingParameters(t_ref=2 * b2.Hz)


def test_the_declared_table_is_what_the_class_the_cli_and_the_sweeps_use():
    from astrogate.analysis.study import evaluation
    from astrogate.cli.main import build_parser
    from astrogate.models.brian2_equations import ASTROCYTE_PARAMETERS, NEURON_PARAMETERS

    fields = [f for f in ag.Parameters.__dataclass_fields__]
    table = [spec.name for spec in PARAMETER_TABLE]
    assert set(fields) <= set(table) and set(table) - set(fields) == {"tau_p", "tau_x", "sigma"}
    for spec in PARAMETER_TABLE:
        assert spec.name in ag.Parameters.__doc__  # the API reference's field list
        if spec.default is not None and spec.name in fields:
            assert getattr(ag.Parameters(), spec.name) == spec.default
    recall_help = build_parser()._subparsers._group_actions[0].choices["recall"].format_help()
    for spec in PARAMETER_TABLE:
        assert spec.flag in recall_help or not spec.option
    sweep_fields = set(evaluation("retrieval").fields)
    assert {s.name for s in PARAMETER_TABLE if s.option} <= sweep_fields
    assert NEURON_PARAMETERS == ("gamma", "tau_u") and ASTROCYTE_PARAMETERS[:2] == ("beta", "tau_g")


# -- the paper's protocol ---------------------------------------------------------------------------------
def test_the_preset_reproduces_the_papers_default_result():
    """N = 30, K = 100, 6 flipped bits, 20 pattern sets: the gated network (the paper's protocol) retrieves with
    median soft error near 0 and perplexity near 1; classical Hopfield (eq. 12) stays near the cue's error. The
    sets run batched (equal to the model's run one trial at a time: test_paper_figures); `recall` with the
    preset gives the same observables on two of them."""
    from astrogate.analysis import paper_numerics as pn

    preset = ag.PAPER_PRESET
    N, K, flips, sets, seed = 30, 100, 6, 20, 0
    xi = pn.pattern_sets(N, K, sets, seed)
    cues = pn.flipped_cues(xi[:, 0], flips, pn.cue_generator(seed, N, K, flips))
    assert np.all(np.einsum("sn,sn->s", cues, xi[:, 0]) == N - 2 * flips)
    params, dt, t_f = pn.paper_parameters(), preset.params["dt"], preset.run["duration"]
    gated = pn.integrate_gated(xi, cues, params, dt, t_f)
    soft = soft_hamming_error(np.tanh(params["sigma"] * gated["x"]), xi[:, 0])
    hard, perplexities = hamming_error(gated["x"], xi[:, 0]), perplexity(gated["p"])
    hopfield = hamming_error(pn.integrate_hopfield(xi, cues, params["tau_x"], params["sigma"], dt, t_f), xi[:, 0])
    assert np.median(soft) < 0.5 and np.median(perplexities) < 1.1
    assert np.median(gated["convergence_time"]) < t_f
    assert np.median(hopfield) >= 3.0  # clearly worse
    assert np.mean(hopfield) > np.mean(hard) + 3.0
    for s in (0, 1):
        result = ag.recall(ag.RecallProblem(xi[s], cues[s], 0), **preset)
        assert result.form == "replicator" and result.t[-1] == pytest.approx(t_f)
        assert result.hamming_error == hard[s]
        assert result.soft_hamming_error == pytest.approx(soft[s], abs=1e-9)
        assert result.perplexity == pytest.approx(perplexities[s], rel=1e-9)
        assert result.convergence_time == pytest.approx(gated["convergence_time"][s], abs=1e-9)


def test_the_preset_on_the_command_line_gives_the_papers_observables(tmp_path, capsys):
    import json

    out = tmp_path / "out.json"
    assert main(["recall", "--preset", "paper", "--K", "100", "--N", "30", "--flip", "0.2", "--json", str(out)]) == 0
    written = json.loads(out.read_text())
    problem = ag.generated_problem(K=100, N=30, flip=0.2, seed=0)
    python = ag.recall(problem, T=0.01, tau_p=1.0, tau_x=1.0, sigma=ag.PAPER_PRESET["sigma"], dt=0.001,
                       cue_scale=1.0, duration=10.0, tol=0.0, form="replicator")
    for name in ("soft_hamming_error", "hamming_error", "perplexity", "convergence_time"):
        assert written[name] == pytest.approx(python[name], rel=1e-12, abs=1e-12)
    assert written["paper_params"]["T"] == 0.01 and written["form"] == "replicator"
    assert "soft Hamming error" in capsys.readouterr().out
    # options given override the preset's
    assert main(["recall", "--preset", "paper", "--K", "20", "--N", "16", "--T", "0.05", "--duration", "2",
                 "--json", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["paper_params"]["T"] == 0.05 and written["t"][-1] == pytest.approx(2.0)


def test_sweep_axes_take_the_papers_names():
    from astrogate.analysis.spec import parse_study as parse_spec
    from astrogate.analysis.study import point_values
    from astrogate.analysis.sweep import point_parameters, simulate_point

    spec = parse_spec("""\
[sweep]
metrics = ["soft_hamming_error", "hamming_error", "perplexity", "convergence_time"]
[model]
settings = "reference"
form = "replicator"
duration = 2.0
tol = 0.0
[fixed]
N = 16
K = 20
trials = 2
tau_p = 1.0
tau_x = 1.0
dt = 0.01
[axes]
T = { values = [0.01, 0.1] }
sigma = { values = [1.0, 3.0] }
""")
    points = [point_parameters(values) for _, values in point_values(spec)]
    assert [(p.T, p.sigma, p.tau_g) for p in points] == [(0.01, 1.0, 100.0), (0.01, 3.0, 100.0), (0.1, 1.0, 10.0),
                                                          (0.1, 3.0, 10.0)]
    metrics = simulate_point(next(point_values(spec))[1], spec.model)
    assert set(spec.metrics) <= set(metrics) and 1.0 <= metrics["perplexity"] <= 20.0
    with pytest.raises(ag.InputError, match=r"<spec>:\d+: give 'beta' or 'T', not both"):
        parse_spec("[fixed]\nN = 16\nK = 20\nbeta = 100.0\n[axes]\nT = { values = [0.1] }\n")
    with pytest.raises(ag.InputError, match=r"<spec>:\d+: .*parameter T must be positive"):
        parse_spec("[fixed]\nN = 16\nK = 20\nT = -1.0\n")
