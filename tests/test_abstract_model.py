"""The abstract model against what the model page (docs/model.md) says must hold."""

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.integrate import solve_ivp

from astrogate.models.abstract import AstroGateModel
from astrogate.models.parameters import Parameters
from astrogate.models.patterns import flip_cue, random_patterns


def problem(K, N, seed=0, correlation=0.0, flip=0.2):
    rng = np.random.default_rng(seed)
    xi = random_patterns(K, N, rng, correlation)
    return xi, flip_cue(xi[0], flip, rng)


@pytest.mark.parametrize(
    "similarity, beta, kappa, gamma, spread",
    [
        # weak coupling keeps the gains spread out, so g = softmax(beta F(m)) is not met by a one-hot g alone
        ("quadratic", 5.0, 0.2, 3.0, True),
        ("linear", 5.0, 0.05, 3.0, True),
        ("power:3", 5.0, 1.0, 3.0, True),
        ("power:4", 400.0, 1.0, 3.0, False),
        ("quadratic", None, 1.0, 3.0, False),  # the defaults: winner-take-all
    ],
)
def test_converged_state_is_the_softmax_fixed_point(similarity, beta, kappa, gamma, spread):
    xi, cue = problem(K=12, N=40, seed=1, correlation=0.3)
    model = AstroGateModel(xi, Parameters(similarity=similarity, beta=beta, kappa=kappa, gamma=gamma))
    traj = model.run(cue, duration=5000.0, tol=1e-12)
    assert traj.stop_reason == "converged"
    v = model.rates(traj.u)
    m = model.overlaps(v)
    g = model.gains(traj.a)
    if spread:
        assert 0.2 < g.max() < 0.8 and np.abs(v).max() > 0.3
    expected_g = np.exp(model.beta * model.F.F(m) - np.max(model.beta * model.F.F(m)))
    expected_g /= expected_g.sum()
    np.testing.assert_allclose(g, expected_g, rtol=0, atol=1e-8)
    expected_u = model.params.kappa * model.K * np.sum((g * model.F.dF(m))[:, None] * xi, axis=0)
    np.testing.assert_allclose(traj.u, expected_u, rtol=1e-9, atol=1e-9)
    assert model.fixed_point_residual(traj.u, traj.a) < 1e-8


def scaled_dot_product_attention(query, keys, values, scale):
    """Written from the definition, one key at a time, independently of the model code."""
    scores = [scale * sum(q * k for q, k in zip(query, key)) for key in keys]
    top = max(scores)
    weights = [np.exp(s - top) for s in scores]
    total = sum(weights)
    return sum((w / total) * np.asarray(value) for w, value in zip(weights, values))


@pytest.mark.parametrize("beta, kappa", [(5.0, 0.05), (40.0, 1.0), (400.0, 1.0)])
def test_linear_similarity_fixed_point_is_dot_product_attention(beta, kappa):
    xi, cue = problem(K=9, N=30, seed=2, correlation=0.4)
    model = AstroGateModel(xi, Parameters(similarity="linear", beta=beta, kappa=kappa))
    traj = model.run(cue, duration=5000.0, tol=1e-12)
    assert traj.stop_reason == "converged"
    v = model.rates(traj.u)
    attention = scaled_dot_product_attention(v, xi, xi, scale=beta / model.N)
    np.testing.assert_allclose(model.attention_readout(v), attention, rtol=0, atol=1e-10)
    # the neurons sit at kappa K times the attention output (docs/model.md, "F linear is attention")
    np.testing.assert_allclose(traj.u, model.params.kappa * model.K * attention, rtol=0, atol=1e-7)


def classical_hopfield_rhs(xi, gamma, kappa, tau_u):
    W = kappa * xi.T @ xi / xi.shape[1]  # diagonal kept, as in the gated model with beta = 0

    def rhs(t, u):
        return (-u + W @ np.tanh(gamma * u)) / tau_u

    return rhs


def test_beta_zero_is_the_classical_continuous_hopfield_network_euler():
    xi, cue = problem(K=15, N=50, seed=3)
    params = Parameters(beta=0.0, gamma=2.0, kappa=0.7, dt=0.1)
    model = AstroGateModel(xi, params)
    traj = model.run(cue, duration=60.0, tol=0.0, record_every=params.dt)
    rhs = classical_hopfield_rhs(xi, params.gamma, params.kappa, params.tau_u)
    u = params.cue_scale * cue
    expected = [xi @ np.tanh(params.gamma * u) / 50]
    for _ in range(600):
        u = u + params.dt * rhs(0, u)
        expected.append(xi @ np.tanh(params.gamma * u) / 50)
    np.testing.assert_allclose(traj.u, u, rtol=0, atol=1e-10)
    np.testing.assert_allclose(traj.overlaps, np.array(expected), rtol=0, atol=1e-10)
    np.testing.assert_allclose(traj.gains, 1 / 15, rtol=0, atol=1e-15)


def test_beta_zero_is_the_classical_continuous_hopfield_network_adaptive():
    xi, cue = problem(K=15, N=50, seed=4)
    params = Parameters(beta=0.0, gamma=2.0, kappa=0.7)
    model = AstroGateModel(xi, params)
    traj = model.run(cue, duration=40.0, method="adaptive", tol=0.0)
    rhs = classical_hopfield_rhs(xi, params.gamma, params.kappa, params.tau_u)
    reference = solve_ivp(rhs, (0, 40.0), params.cue_scale * cue, method="DOP853", rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(traj.u, reference.y[:, -1], rtol=1e-6, atol=1e-6)


def test_euler_and_adaptive_reach_the_same_fixed_point():
    xi, cue = problem(K=20, N=40, seed=5, correlation=0.2)
    model = AstroGateModel(xi, Parameters(beta=60.0, similarity="quadratic", dt=0.02))
    euler = model.run(cue, duration=3000.0, tol=1e-10)
    adaptive = model.run(cue, duration=3000.0, method="adaptive", tol=1e-10)
    assert euler.stop_reason == adaptive.stop_reason == "converged"
    np.testing.assert_allclose(model.gains(euler.a), model.gains(adaptive.a), atol=1e-6)
    np.testing.assert_allclose(model.rates(euler.u), model.rates(adaptive.u), atol=1e-6)


@given(
    N=st.integers(4, 40),
    K=st.integers(1, 30),
    similarity=st.sampled_from(["quadratic", "linear", "power:3", "power:4"]),
    beta_per_neuron=st.one_of(st.just(0.0), st.floats(0.01, 60.0)),
    gamma=st.floats(0.3, 5.0),
    kappa=st.floats(0.1, 2.0),
    tau_u=st.floats(2.0, 20.0),
    tau_g=st.floats(2.0, 40.0),
    cue_scale=st.floats(0.05, 1.0),
    correlation=st.floats(0.0, 0.8),
    seed=st.integers(0, 2**31),
)
def test_lyapunov_function_never_increases_along_euler_trajectories(
    N, K, similarity, beta_per_neuron, gamma, kappa, tau_u, tau_g, cue_scale, correlation, seed
):
    xi, cue = problem(K, N, seed=seed, correlation=correlation, flip=0.3)
    for dt in (0.1, 0.05):
        params = Parameters(similarity=similarity, beta=beta_per_neuron * N, gamma=gamma, kappa=kappa,
                            tau_u=tau_u, tau_g=tau_g, cue_scale=cue_scale, dt=dt)
        model = AstroGateModel(xi, params)
        traj = model.run(cue, duration=30.0, tol=0.0, record_every=dt)
        scale = np.max(np.abs(traj.energy)) + 1.0
        # round-off of the sums, plus the O(dt^2) local error of forward Euler (shrinks with dt)
        bound = scale * (1e-12 + 1e-4 * dt**2)
        assert np.max(np.diff(traj.energy)) <= bound, f"dt = {dt}"


def test_energy_derivative_matches_the_analytic_dissipation():
    """dL/dt along the flow equals the model page's expression (docs/model.md) (finite difference of a tiny Euler step)."""
    xi, cue = problem(K=7, N=25, seed=6, correlation=0.3)
    model = AstroGateModel(xi, Parameters(beta=4.0 * 25, dt=1e-6, gamma=1.5))
    u, a = model.initial_state(cue)
    a = np.random.default_rng(0).normal(size=7)
    du, da = model.derivatives(u, a)
    h = 1e-6
    numeric = (model.energy(u + h * du, a + h * da) - model.energy(u - h * du, a - h * da)) / (2 * h)
    p = model.params
    v = model.rates(u)
    g = model.gains(a)
    f = model.beta * model.F.F(model.overlaps(v)) - np.log(g)
    fbar = np.sum(g * f)
    scale = p.kappa * model.K * model.N
    analytic = (-p.tau_u * np.sum(p.gamma * (1 - v**2) * du**2)
                - scale / (model.beta * p.tau_g) * np.sum(g * (f - fbar) ** 2))
    assert analytic < 0
    np.testing.assert_allclose(numeric, analytic, rtol=1e-6)


def test_simplex_holds_for_huge_beta_and_many_patterns():
    xi, cue = problem(K=10_000, N=20, seed=7, correlation=0.2)
    model = AstroGateModel(xi, Parameters(beta=1e4))
    traj = model.run(cue, duration=5.0, tol=0.0, record_every=0.1)
    assert np.all(traj.gains >= 0)
    assert np.max(np.abs(traj.gains.sum(axis=-1) - 1.0)) <= 1e-12
    assert np.all(np.isfinite(traj.energy))


def test_batch_of_cues_equals_cues_run_one_by_one():
    rng = np.random.default_rng(8)
    xi = random_patterns(30, 40, rng, 0.3)
    cues = flip_cue(xi[:5], 0.25, rng)
    model = AstroGateModel(xi, Parameters())
    batch = model.run(cues, duration=20.0, tol=0.0)
    for b in range(5):
        single = model.run(cues[b], duration=20.0, tol=0.0)
        np.testing.assert_allclose(batch.u[b], single.u, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(batch.a[b], single.a, rtol=1e-12, atol=1e-9)


def test_gated_network_retrieves_far_beyond_classical_capacity_with_correlated_patterns():
    rng = np.random.default_rng(9)
    N, K = 100, 200  # load 2, fifteen times the classical capacity 0.138 N
    xi = random_patterns(K, N, rng, correlation=0.4)
    targets = rng.choice(K, 10, replace=False)
    cues = flip_cue(xi[targets], 0.2, rng)
    gated = AstroGateModel(xi, Parameters()).run(cues, duration=200.0)
    classical = AstroGateModel(xi, Parameters(beta=0.0)).run(cues, duration=200.0)
    exact = lambda traj: np.all(np.sign(traj.u) == xi[targets], axis=1).mean()  # noqa: E731
    assert exact(gated) == 1.0
    assert exact(classical) <= 0.2


def test_run_reports_time_limit_when_not_converged():
    xi, cue = problem(K=10, N=30)
    traj = AstroGateModel(xi, Parameters()).run(cue, duration=0.5, tol=1e-12)
    assert traj.stop_reason == "time limit"
    assert not traj.converged


# -- integrators, stopping rules and precision --------------------------------------------------

def brian2_exponential_euler_steps(model, u, a, n_steps):
    """Brian2's own exponential-Euler update code for the network's equations (models/brian2_equations.py),
    generated by Brian2's state updater and evaluated with NumPy, the summed inputs from the state at t."""
    from brian2 import Equations
    from brian2.stateupdaters.exponential_euler import exponential_euler

    from astrogate.models import brian2_equations as eq

    p = model.params
    code = (exponential_euler(Equations(eq.NEURON_EQUATIONS)) + "\n"
            + exponential_euler(Equations(eq.astrocyte_equations(model.F))))
    for _ in range(n_steps):
        v = np.tanh(p.gamma * u)
        m = xi_overlaps = model.xi @ v / model.N
        g = np.exp(a - a.max()) / np.exp(a - a.max()).sum()
        names = {"u": u, "a": a, "m": xi_overlaps, "I_rec": model.xi.T @ (model.kappa_K * g * model.F.dF(m)),
                 "I_cue": 0.0, "I_ext": 0.0, "t": 0.0, "t_cue_end": 0.0, "tau_u": p.tau_u, "tau_g": p.tau_g, "beta": model.beta,
                 "dt": p.dt, "exp": np.exp, "int": lambda x: float(x)}
        for line in code.splitlines():
            target, expression = (side.strip() for side in line.split("=", 1))
            names[target] = eval(expression, {}, names)  # Brian2's generated code, not user input
        u, a = names["u"], names["a"]
    return u, a


@pytest.mark.parametrize("similarity, dt", [("quadratic", 0.1), ("power:3", 0.5)])
def test_exponential_euler_is_what_brian2_computes(similarity, dt):
    xi, cue = problem(K=12, N=30, seed=11, correlation=0.3)
    model = AstroGateModel(xi, Parameters(similarity=similarity, dt=dt))
    run = model.run(cue, duration=20 * dt, method="exponential_euler", tol=0.0)
    assert run.steps == 20
    u, a = brian2_exponential_euler_steps(model, *model.initial_state(cue), 20)
    np.testing.assert_allclose(run.u, u, rtol=1e-12, atol=1e-12 * np.abs(u).max())
    np.testing.assert_allclose(run.a, a, rtol=1e-12, atol=1e-12 * np.abs(a).max())


def test_exponential_euler_solves_the_linear_decay_exactly_and_meets_euler_at_the_fixed_point():
    xi, cue = problem(K=20, N=40, seed=5, correlation=0.2)
    params = Parameters(beta=60.0, dt=0.5)
    model = AstroGateModel(xi, params)
    # kappa = 0 and beta = 0: pure decays, which exponential Euler integrates exactly at any step
    decay = AstroGateModel(xi, params.updated(kappa=0.0, beta=0.0)).run(cue, duration=10.0,
                                                                         method="exponential_euler", tol=0.0)
    np.testing.assert_allclose(decay.u, params.cue_scale * cue * np.exp(-10.0 / params.tau_u), rtol=1e-12)
    fast = model.run(cue, duration=3000.0, method="exponential_euler", tol=1e-10)
    reference = AstroGateModel(xi, params.updated(dt=0.02)).run(cue, duration=3000.0, tol=1e-10)
    assert fast.stop_reason == reference.stop_reason == "converged"
    assert fast.steps < reference.steps / 10
    np.testing.assert_allclose(model.gains(fast.a), model.gains(reference.a), atol=1e-6)
    np.testing.assert_allclose(model.rates(fast.u), model.rates(reference.u), atol=1e-6)


def hard_batch(seed=12):
    """Correlated patterns at K/N = 2, where the gains compete before they commit."""
    rng = np.random.default_rng(seed)
    xi = random_patterns(120, 60, rng, correlation=0.6)
    targets = rng.choice(120, 24, replace=False)
    return xi, targets, flip_cue(xi[targets], 0.2, rng)


def test_each_cue_stops_on_its_own_rule_and_keeps_the_reference_outcome():
    xi, targets, cues = hard_batch()
    model = AstroGateModel(xi, Parameters())
    reference = model.run(cues, duration=300.0, tol=1e-6)
    decided = model.run(cues, duration=300.0, tol=1e-6, stop="decided")
    assert set(reference.stop_rule) <= {"fixed point", "time limit"}
    assert (decided.stop_rule == "decided").sum() >= 20
    np.testing.assert_array_equal(np.sign(decided.u), np.sign(reference.u))
    assert decided.cue_steps.max() < reference.cue_steps.min() / 10
    assert len(set(decided.cue_steps.tolist())) > 1  # cues leave the batch at different steps
    # a stopped cue holds the state it stopped in: the same as running it alone for that many steps
    b = int(np.argmin(decided.cue_steps))
    alone = model.run(cues[b], duration=decided.cue_steps[b] * model.params.dt, tol=0.0)
    np.testing.assert_allclose(decided.u[b], alone.u, rtol=1e-12)
    assert decided.t_converged[b] == pytest.approx(decided.cue_steps[b] * model.params.dt)


def test_the_decided_rule_needs_its_conditions_for_the_whole_window():
    xi, targets, cues = hard_batch(13)
    model = AstroGateModel(xi, Parameters())
    short = model.run(cues, duration=300.0, stop="decided", decided_window=0.0)
    longer = model.run(cues, duration=300.0, stop="decided", decided_window=2.0)
    decided = (short.stop_rule == "decided") & (longer.stop_rule == "decided")
    assert decided.any()
    np.testing.assert_array_equal(longer.cue_steps[decided], short.cue_steps[decided] + 20)
    # at the moment it stops, the rule's conditions hold: committed gain, leading target, u on its drive's side
    v, m, g, drive, target = model.step_terms(xi, longer.u, longer.a)
    assert model.outcome_decided(longer.u, longer.a, g, drive, target, 1e-3)[decided].all()


def test_no_cue_is_decided_without_committed_gains():
    """beta = 0: the gains stay uniform, so only the fixed point or the time limit stops a cue."""
    xi, targets, cues = hard_batch(14)
    run = AstroGateModel(xi, Parameters(beta=0.0)).run(cues[:4], duration=5.0, stop="decided")
    assert set(run.stop_rule) == {"time limit"} and run.stop_reason == "time limit"


def test_float32_retrieves_what_float64_retrieves():
    xi, targets, cues = hard_batch(15)
    model = AstroGateModel(xi, Parameters())
    single = model.run(cues, duration=300.0, stop="decided", dtype="float32")
    double = model.run(cues, duration=300.0, stop="decided")
    assert single.dtype == "float32" and single.u.dtype == np.float64  # results come back in float64
    np.testing.assert_array_equal(np.sign(single.u), np.sign(double.u))
    assert np.abs(single.cue_steps - double.cue_steps).max() <= 2


@pytest.mark.parametrize("options, message", [
    ({"method": "rk4"}, "unknown method 'rk4'"),
    ({"stop": "early"}, "unknown stopping rule 'early'"),
    ({"dtype": "float16"}, "unknown dtype 'float16'"),
    ({"dt": 0.0}, "dt must be a positive number"),
    ({"decided_eps": 0.7}, "decided_eps must be in (0, 0.5)"),
    ({"method": "adaptive", "stop": "decided"}, "method 'adaptive' takes"),
])
def test_bad_run_options_are_input_errors(options, message):
    from astrogate.errors import InputError

    xi, cue = problem(K=5, N=20)
    with pytest.raises(InputError, match=re.escape(message)):
        AstroGateModel(xi, Parameters()).run(cue, duration=1.0, **options)
