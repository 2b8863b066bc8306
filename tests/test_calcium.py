"""Calcium astrocytes (models/calcium.py, network/calcium.py, analysis/calcium.py): the G-ChI model against its
equations integrated independently, the shared pool's simplex, the quasi-static map against softmax, bad input."""

import re

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.special import softmax

from astrogate.errors import InputError

# -- Brian2's example_2_gchi_astrocyte.py (Stimberg et al. 2019), its deterministic astrocyte written out again from
# the G-ChI equations (De Pitta et al. 2009), in uM and s, with a constant glutamate Y
EXAMPLE = dict(O_P=0.9, K_P=0.1, C_T=2.0, rho_A=0.18, Omega_C=6.0, Omega_L=0.1, d_1=0.13, d_2=1.05, O_2=0.2,
               d_3=0.9434, d_5=0.08, O_beta=5.0, O_N=0.3, Omega_N=0.5, K_KC=0.5, zeta=10.0, O_delta=0.2,
               kappa_delta=1.5, K_delta=0.3, Omega_5P=0.1, K_D=0.5, K_3K=1.0, O_3K=4.5, F_ex=0.09, I_Theta=0.3,
               omega_I=0.05)


def gchi_rhs(t, y, Y, p=EXAMPLE):
    Gamma_A, I, C, h = y
    dGamma_A = p["O_N"] * Y * (1 - Gamma_A) - p["Omega_N"] * (1 + p["zeta"] * C / (C + p["K_KC"])) * Gamma_A
    production = p["O_beta"] * Gamma_A + p["O_delta"] / (1 + I / p["kappa_delta"]) * C**2 / (C**2 + p["K_delta"]**2)
    degradation = p["O_3K"] * C**4 / (C**4 + p["K_D"]**4) * I / (I + p["K_3K"]) + p["Omega_5P"] * I
    exogenous = -p["F_ex"] / 2 * (1 + np.tanh((abs(I) - p["I_Theta"]) / p["omega_I"])) * np.sign(I)  # I_bias = 0
    open_probability = (I / (I + p["d_1"]) * C / (C + p["d_5"])) ** 3 * h**3
    er = p["C_T"] - (1 + p["rho_A"]) * C
    dC = (p["Omega_C"] * open_probability + p["Omega_L"]) * er - p["O_P"] * C**2 / (C**2 + p["K_P"]**2)
    Q_2 = p["d_2"] * (I + p["d_1"]) / (I + p["d_3"])
    dh = p["O_2"] * (Q_2 + C) * (Q_2 / (Q_2 + C) - h)
    return [dGamma_A, production - degradation + exogenous, dC, dh]


def reference_traces(Y, t_end, t_eval):
    """G-ChI from the example's initial state (h = 0.9, the rest 0), to solve_ivp's tight tolerances."""
    sol = solve_ivp(gchi_rhs, (0, t_end), [0.0, 0.0, 0.0, 0.9], args=(Y,), t_eval=t_eval, method="LSODA",
                    rtol=1e-10, atol=1e-12)
    assert sol.success
    return sol.y


def monitored_astrocytes(K, m, setup, duration_s, variables):
    """CalciumAstrocytes with clamped overlaps on the runtime device (numpy), with a monitor at the end of each
    step (the state after step n at time (n + 1) dt)."""
    import brian2 as b2

    from astrogate.network.calcium import ORDER, CalciumAstrocytes

    b2.prefs.codegen.target = "numpy"
    astro = CalciumAstrocytes(K, setup)
    astro.set_overlaps(np.asarray(m, dtype=float))
    monitor = b2.StateMonitor(astro.astrocytes, variables, record=True, when="end", order=ORDER["monitors"])
    b2.Network(astro, monitor).run(duration_s * b2.second, namespace={})
    t = np.asarray(monitor.t / b2.second) + setup.dt * 1e-3
    return astro, monitor, t


# -- 1. one astrocyte against the example's equations --------------------------------------------------------------
@pytest.mark.brian2
def test_single_gchi_astrocyte_follows_the_example_equations_over_30_seconds():
    """Constant glutamate Y = 0.3 uM (Y_pattern = 0.3 uM, m = 1): the example's deterministic astrocyte, here in
    the regime where calcium oscillates (pulses up to 0.6 uM). rk4 at dt = 10 ms against LSODA at rtol 1e-10:
    measured max |dC| 5.6e-9 uM and |dI| 3.5e-9 uM over 30 s; tolerance 1e-6 uM."""
    from brian2 import umolar

    from astrogate.network.calcium import CalciumSetup

    setup = CalciumSetup(pool="private", parameters={"Y_pattern": 0.3 * umolar}, dt=10.0)
    _, monitor, t = monitored_astrocytes(1, [1.0], setup, 30.0, ["C", "I", "Gamma_A", "h"])
    Gamma_A, I, C, h = reference_traces(0.3, t[-1], t)
    C_brian, I_brian = np.asarray(monitor.C[0] / umolar), np.asarray(monitor.I[0] / umolar)
    assert np.ptp(C[len(C) // 3:]) > 0.2  # it oscillates: the comparison covers the pulses' timing
    np.testing.assert_allclose(C_brian, C, rtol=0, atol=1e-6)
    np.testing.assert_allclose(I_brian, I, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(monitor.Gamma_A[0]), Gamma_A, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(monitor.h[0]), h, rtol=0, atol=1e-6)


# -- 2. the shared pool: the gains' equations and the simplex ---------------------------------------------------------
def pool_rhs(t, y, Ys, O_A, Omega_G, n_A=8.0, C_Theta=0.5):
    """K astrocytes (G-ChI as above) whose gains capture a shared resource: dg/dt = O_A release (1 - sum g) - Omega_G g."""
    K = len(Ys)
    state = y[:4 * K].reshape(K, 4)
    g = y[4 * K:]
    d = np.array([gchi_rhs(t, s, Y) for s, Y in zip(state, Ys)])
    C = state[:, 2]
    release = (C / C_Theta) ** n_A / (1 + (C / C_Theta) ** n_A)
    dg = O_A * release * (1 - g.sum()) - Omega_G * g
    return np.concatenate([d.ravel(), dg])


@pytest.mark.brian2
def test_shared_pool_gains_follow_their_mass_action_equations():
    """Three astrocytes of one pool, 60 s, strong capture (O_A = 60/s): the gains of the network (exact step of the
    pool, the release held at the mean of its values at the ends of each 10 ms step) against the ODE integrated by
    LSODA. Measured max |dg| 7.7e-4, at the onsets of calcium pulses; tolerance 3e-3."""
    from brian2 import second, umolar

    from astrogate.network.calcium import CalciumSetup

    m = np.array([1.0, 0.8, 0.3])
    Y_pattern = 0.5
    setup = CalciumSetup(parameters={"Y_pattern": Y_pattern * umolar, "O_A": 60 / second}, dt=10.0)
    _, monitor, t = monitored_astrocytes(3, m, setup, 60.0, ["g"])
    y0 = np.concatenate([np.tile([0.0, 0.0, 0.0, 0.9], 3), np.zeros(3)])
    sol = solve_ivp(pool_rhs, (0, t[-1]), y0, args=(Y_pattern * m**2, 60.0, 0.5 / 60), t_eval=t, method="LSODA",
                    rtol=1e-9, atol=1e-12)
    g_ref = sol.y[12:]
    assert g_ref[:, -1].sum() > 0.9 and g_ref[0, -1] > g_ref[1, -1] > g_ref[2, -1]  # a real competition
    np.testing.assert_allclose(np.asarray(monitor.g[:]), g_ref, rtol=0, atol=3e-3)


def switching_run(K, states, period_s, dt_ms, overlaps_of):
    """A shared pool of K astrocytes whose clamped state changes every `period_s` seconds; g at every step."""
    import brian2 as b2
    from brian2 import second, umolar

    from astrogate.network.calcium import ORDER, CalciumAstrocytes, CalciumSetup

    setup = CalciumSetup(parameters={"Y_pattern": 1.0 * umolar, "O_A": 60 / second}, dt=dt_ms)
    astro = CalciumAstrocytes(K, setup)
    monitor = b2.StateMonitor(astro.astrocytes, "g", record=True, when="end", order=ORDER["monitors"])
    net = b2.Network(astro, monitor)
    for state in states:
        astro.set_overlaps(overlaps_of(state))
        net.run(period_s * second, namespace={})
    return np.asarray(monitor.t / second) + dt_ms * 1e-3, np.asarray(monitor.g[:])


def check_simplex_and_winners(t, g, winners, period_s, settled_s):
    """Every sample: g >= 0 and sum g <= 1 (to 1e-12). In the last `settled_s` of each period: the free fraction
    1 - sum g below 0.01, and the period's pattern holding the largest gain, above 0.7 (the previous winner's
    share decays at Omega_G = 1/(2 min), so a switch takes minutes)."""
    total = g.sum(axis=0)
    assert g.min() >= 0 and total.max() <= 1 + 1e-12
    for k, winner in enumerate(winners):
        rows = (t > (k + 1) * period_s - settled_s) & (t <= (k + 1) * period_s)
        assert np.max(1 - total[rows]) < 0.01
        assert np.all(np.argmax(g[:, rows], axis=0) == winner) and g[winner, rows].min() > 0.7
    return total


def switch_overlaps(K, winner):
    m = np.array([0.2, 0.1, 0.3, 0.0, 0.2, 0.1, 0.3, 0.0] * (K // 8 + 1))[:K]
    m[winner] = 1.0
    return m


@pytest.mark.brian2
def test_shared_pool_keeps_the_gains_on_the_simplex_while_the_state_changes():
    """K = 6, the clamped state switched from pattern 0 to pattern 3 after 150 s, 450 s in all at dt = 100 ms
    (coarse for calcium, but the pool's bounds hold for any step). The new winner takes over the resource on the
    Omega_G time scale (2 min): measured free fraction in the last 60 s of each period below 3e-3."""
    t, g = switching_run(6, [0, 3], 225.0, 100.0, lambda w: switch_overlaps(6, w))
    check_simplex_and_winners(t, g, [0, 3], 225.0, 60.0)


@pytest.mark.brian2
@pytest.mark.compile
def test_shared_pool_stays_on_the_simplex_for_an_hour_on_cpp_standalone(tmp_path):
    """The long run, compiled: K = 20, one hour of biological time at dt = 10 ms (360 000 steps), the state
    switched every 5 minutes through 12 patterns. At every step the smallest gain >= 0 and the largest sum <= 1
    (to 1e-12); each period ends with its pattern holding more than 0.9 and the free fraction below 0.01."""
    import brian2 as b2
    from brian2 import second, umolar

    from astrogate.network import devices
    from astrogate.network.calcium import ORDER, CalciumAstrocytes, CalciumSetup

    setup = CalciumSetup(parameters={"Y_pattern": 1.0 * umolar, "O_A": 60 / second}, dt=10.0)
    build = devices.activate(devices.check_device("cpp_standalone", build_dir=tmp_path), setup.dt)
    astro = CalciumAstrocytes(20, setup)
    monitor = b2.StateMonitor(astro.astrocytes, "g", record=True, when="end", order=ORDER["monitors"], dt=1 * second)
    extremes = b2.NeuronGroup(20, "g : 1 (linked)\ng_low : 1", clock=astro.clock, name="extremes")
    extremes.g = b2.linked_var(astro.astrocytes, "g")
    extremes.g_low = 2.0
    hub = b2.NeuronGroup(1, "bound : 1 (linked)\nbound_high : 1", clock=astro.clock, name="hub_extremes")
    hub.bound = b2.linked_var(astro.hub, "bound")
    after = dict(when="end", order=ORDER["diagnostics"])
    net = b2.Network(astro, monitor, extremes, hub,
                     extremes.run_regularly("g_low = g_low + (g - g_low)*int(g < g_low)", **after),
                     hub.run_regularly("bound_high = bound_high + (bound - bound_high)*int(bound > bound_high)",
                                       **after))
    winners = [0, 5, 11, 2, 19, 7, 3, 14, 9, 16, 1, 12]
    for w in winners:
        astro.set_overlaps(switch_overlaps(20, w))
        net.run(300 * second, namespace={})
    b2.device.build(directory=str(build), compile=True, run=True, with_output=False)
    t = np.asarray(monitor.t / second) + 0.01
    check_simplex_and_winners(t, np.asarray(monitor.g[:]), winners, 300.0, 60.0)
    assert np.min(extremes.g_low[:]) >= 0 and float(hub.bound_high[0]) <= 1 + 1e-12


# -- 3. the quasi-static map ------------------------------------------------------------------------------------------
def test_fit_temperature_recovers_a_softmax_and_measures_deviations():
    from astrogate.analysis.calcium import fit_temperature

    rng = np.random.default_rng(0)
    f = rng.exponential(2.0, size=(12, 9))
    fit = fit_temperature(softmax(f / 0.7, axis=1), f)
    assert fit["T_eff"] == pytest.approx(0.7, rel=1e-4) and fit["r"] == pytest.approx(1.0) and fit["max_deviation"] < 1e-5
    uniform = np.full_like(f, 1 / 9)
    g = uniform.copy()
    g[0] = softmax(f[0] / 0.1)  # one state far from the rest: the fit cannot match both
    assert fit_temperature(g, f)["max_deviation"] > 0.2
    with pytest.raises(InputError, match="one shape"):
        fit_temperature(g[:, :3], f)


def test_protocol_states_are_the_papers_states():
    from astrogate.analysis.calcium import KINDS, protocol_states

    states = protocol_states(N=30, K=100, flips=6, per_kind=4, seed=3)
    assert states.states.shape == (16, 30) and states.patterns.shape == (100, 30) and states.f.shape == (16, 100)
    m = states.overlaps
    for row, (kind, source) in enumerate(zip(states.kinds, states.sources)):
        assert kind in KINDS
        if kind == "pattern":
            assert m[row, source[0]] == 1.0 and states.f[row, source[0]] == 15.0  # f = N m^2 / 2
        elif kind == "cue":
            assert m[row, source[0]] == pytest.approx(1 - 2 * 6 / 30)  # 6 flipped bits: eta = 0.2
        elif kind == "mixture3":  # the majority: a pattern disagrees with it where both others disagree with it
            xi = states.patterns[list(source)]
            assert np.array_equal(states.states[row], np.sign(xi.sum(axis=0)))
            for k in range(3):
                outvoted = np.mean((xi[k - 1] != xi[k]) & (xi[k - 2] != xi[k]))
                assert m[row, source[k]] == pytest.approx(1 - 2 * outvoted)
        else:  # (xi_a + xi_b) / 2: m_a = m_b = (1 + xi_a . xi_b / N) / 2
            a, b = source
            expected = (1 + states.patterns[a] @ states.patterns[b] / 30) / 2
            assert m[row, a] == pytest.approx(expected) and m[row, b] == pytest.approx(expected)
    with pytest.raises(InputError, match="flips"):
        protocol_states(N=5, flips=6)


def test_convergence_time_is_the_last_excursion_beyond_the_tolerance():
    from astrogate.analysis.calcium import convergence_times

    t = np.arange(10.0)
    g = np.full((3, 2, 10), 0.5)
    g[0, 0, :4] = 0.2  # settles after t = 3
    g[1, 1, -1] = 0.4  # off at the last sample: not converged
    g[2] *= 1e-3  # small gains: the tolerance is relative to the state's largest gain
    g[2, 0, :6] = 0.6e-3
    times = convergence_times(t, g, np.full((3, 2), 0.5) * [[1], [1], [1e-3]])
    assert times[0] == 4.0 and np.isnan(times[1]) and times[2] == 6.0


@pytest.mark.brian2
def test_strongest_capture_and_fast_calcium_give_softmax_gains_on_a_small_case(saved_figures, tmp_path):
    """The protocol's kinds of state (N = 30, 6 flipped bits) over K = 8 patterns, 2 states each, calcium ten times
    faster than physiological (speedup 10: the 29 s here are 290 s of physiology, at the equivalent of a 50 ms
    step) and the strongest capture of the study (O_A = 600/s). Window-averaged gains against softmax(f / T_eff),
    measured (settle 30 s, window 10 s): T_eff = 1.01, r = 0.9935, max |g - softmax| = 0.108; their shares
    g / sum g against a softmax fitted to them: r = 0.997, max deviation 0.073. The sum falls short of 1 where the
    drive is weak: the mixture of patterns with f = 2.8, 2.0, 2.8 binds 0.69 of the resource. Tolerances:
    r >= 0.98, max deviation <= 0.15, shares r >= 0.99 and max deviation <= 0.1, every sum in [0.6, 1]."""
    from brian2 import second, umolar

    from astrogate.analysis.calcium import plot_map, protocol_states, quasi_static_map, shape_agreement
    from astrogate.network.calcium import CalciumSetup

    states = protocol_states(N=30, K=8, flips=6, per_kind=2, seed=1)
    setup = CalciumSetup(parameters={"Y_pattern": 0.3 * umolar, "O_A": 600 / second, "speedup": 10.0}, dt=5.0)
    result = quasi_static_map(setup, states, settle=20.0, window=5.0, target="numpy", calcium_first=4.0)
    s = result["summary"]
    assert s["r"] >= 0.98 and s["max_deviation"] <= 0.15
    shares = shape_agreement(result["g"], result["f"])
    assert shares["r"] >= 0.99 and shares["max_deviation"] <= 0.1
    assert s["sum_min"] >= 0.6 and s["sum_max"] <= 1 + 1e-12 and s["g_low"] >= 0
    np.testing.assert_allclose(result["softmax"], softmax(states.f / s["T_eff"], axis=1))
    # the figure shows these gains against this softmax, and the sums over time
    plot_map(result, tmp_path / "map.png", "small case")
    fig = saved_figures["map.png"]
    left, right = fig.axes
    shown = np.concatenate([c.get_offsets() for c in left.collections])
    expected = np.concatenate([np.column_stack([result["softmax"][result["kinds"] == k].ravel(),
                                                result["g"][result["kinds"] == k].ravel()])
                               for k in dict.fromkeys(result["kinds"])])
    np.testing.assert_allclose(shown, expected)
    assert len(right.lines) == len(states.kinds) + 1  # one sum per state, and the window's start
    np.testing.assert_allclose(right.lines[0].get_ydata(), result["run"]["bound"][0])


@pytest.mark.brian2
def test_private_pools_do_not_compete():
    """The control: each astrocyte owns 1/K of the resource, so no gain exceeds 1/K and the gains of the
    non-winning astrocytes do not depend on the winner's drive."""
    from brian2 import second, umolar

    from astrogate.network.calcium import CalciumSetup, run_clamped

    setup = CalciumSetup(pool="private", parameters={"Y_pattern": 1.0 * umolar, "O_A": 60 / second}, dt=50.0)
    m = np.array([[1.0, 0.5, 0.2, 0.0], [0.0, 0.5, 0.2, 0.0]])
    run = run_clamped(m, setup, settle=100.0, window=20.0, target="numpy")
    g = run["g_mean"]
    assert g.max() <= 0.25 and np.isnan(run["free_low"]).all()
    np.testing.assert_allclose(g[0, 1:], g[1, 1:], rtol=1e-12)  # the same astrocytes, the same gains
    assert g[0, 0] > 0.2 and g[1, 0] < 1e-3


# -- 4. bad input -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, match", [
    (lambda ca, u: ca.check_astrocyte_kind("calcum"), "unknown astrocyte 'calcum': use one of replicator, calcium"),
    (lambda ca, u: ca.calcium_parameters({"O_PP": 1}), "unknown calcium parameter 'O_PP'"),
    (lambda ca, u: ca.calcium_parameters({"O_P": 0.9 * u.ms}), "O_P must have units of umolar/second"),
    (lambda ca, u: ca.calcium_parameters({"K_P": 0.1}), "K_P must have units of umolar"),
    (lambda ca, u: ca.calcium_parameters({"n_A": 2 * u.second}), "n_A must have no units"),
    (lambda ca, u: ca.calcium_parameters({"K_P": -0.1 * u.umolar}), "K_P must be finite and > 0"),
    (lambda ca, u: ca.calcium_parameters({"C_Theta": 0 * u.umolar}), "C_Theta must be finite and > 0"),
    (lambda ca, u: ca.calcium_parameters({"O_A": -1 / u.second}), "O_A must be finite and >= 0"),
    (lambda ca, u: ca.calcium_parameters({"Omega_G": float("inf") / u.second}), "Omega_G must be finite"),
    (lambda ca, u: ca.calcium_parameters({"zeta": "ten"}), "zeta must be a number"),
    (lambda ca, u: ca.check_pool("common"), "unknown pool 'common'"),
    (lambda ca, u: ca.check_gap_junctions("mesh"), "unknown gap_junctions 'mesh'"),
])
def test_bad_calcium_input_is_a_one_line_input_error(call, match):
    import brian2

    from astrogate.models import calcium

    with pytest.raises(InputError, match=match) as error:
        call(calcium, brian2)
    assert "\n" not in str(error.value)


def test_bad_setup_and_overlaps_are_input_errors():
    import brian2 as b2

    from astrogate.network.calcium import CalciumAstrocytes, CalciumSetup, run_clamped

    with pytest.raises(InputError, match="O_P must have units"):
        CalciumSetup(parameters={"O_P": 3.0})
    with pytest.raises(InputError, match="dt must be a positive"):
        CalciumSetup(dt=-1.0)
    with pytest.raises(InputError, match="unknown method"):
        CalciumSetup(method="milstein")
    with pytest.raises(InputError, match="ring of gap junctions needs K >= 3"):
        CalciumAstrocytes(2, CalciumSetup(gap_junctions="ring"))
    with pytest.raises(InputError, match="S x K"):
        run_clamped(np.zeros(4))
    with pytest.raises(InputError, match="settle must be a positive"):
        run_clamped(np.zeros((1, 4)), settle=-1.0)
    b2.prefs.codegen.target = "numpy"
    astro = CalciumAstrocytes(3)
    with pytest.raises(InputError, match=r"shape \(K,\) = \(3,\)"):
        astro.set_overlaps(np.zeros(4))
    with pytest.raises(InputError, match="within"):
        astro.set_overlaps(np.array([0.0, 2.0, 0.0]))


# -- 5. cpp_standalone --------------------------------------------------------------------------------------------
@pytest.mark.brian2
@pytest.mark.compile
def test_cpp_standalone_clamped_run_equals_the_runtime_run():
    """The same clamped run (shared pool with ring gap junctions, 2 copies of K = 4) on cpp_standalone and on the
    runtime device: window-averaged gains and calcium range within 1e-9."""
    from brian2 import second, umolar

    from astrogate.network.calcium import CalciumSetup, run_clamped

    setup = CalciumSetup(gap_junctions="ring", dt=20.0,
                         parameters={"Y_pattern": 1.0 * umolar, "O_A": 60 / second, "F_GJ": 2 * umolar / second})
    m = np.array([[1.0, 0.3, 0.2, 0.1], [0.6, 0.5, 0.1, 0.0]])
    runtime = run_clamped(m, setup, settle=60.0, window=20.0, target="numpy")
    standalone = run_clamped(m, setup, settle=60.0, window=20.0, device="cpp_standalone")
    for key in ("g_mean", "C_low", "C_high", "bound"):
        np.testing.assert_allclose(standalone[key], runtime[key], rtol=0, atol=1e-9)
    assert standalone["g_mean"][0].argmax() == 0 and standalone["bound"][:, -1].min() > 0.9


def test_results_page_lists_every_parameter_with_its_value_and_reference():
    from pathlib import Path

    from astrogate.models import calcium

    page = (Path(__file__).resolve().parents[1] / "docs" / "results" / "calcium.md").read_text(encoding="utf-8")
    for name, spec in calcium.PARAMETERS.items():
        assert f"| `{name}` | {calcium.shown(name)} | {spec.meaning} | {spec.reference} |" in page, name


# -- 6. the memory with calcium astrocytes ------------------------------------------------------------------------
MEMORY_OPTIONS = dict(tau_u=1.0, gamma=3.0, kappa=1.0, cue_scale=1.0, dt=0.01)  # the paper's neurons, dt for calcium


def calcium_memory_run(xi, cue, calcium, duration_ms, target="numpy", gains=None):
    """The memory with calcium astrocytes from the cue, with monitors of g and of the pool's sum at every step."""
    import brian2 as b2

    from astrogate.network.calcium import ORDER
    from astrogate.network.memory import AstrocyteGatedMemory

    b2.prefs.codegen.target = target
    mem = AstrocyteGatedMemory(xi, astrocyte="calcium", calcium=calcium, **MEMORY_OPTIONS)
    mem.set_cue(cue, gains=gains)
    monitor = b2.StateMonitor(mem.astrocytes, ["g", "C"], record=True, when="end", order=ORDER["monitors"])
    b2.Network(mem, monitor).run(duration_ms * b2.ms, namespace={})
    return mem, np.asarray(monitor.g[:]).T, np.asarray(monitor.C[:] / b2.umolar).T


def corrupted(pattern, flips, rng):
    cue = pattern.copy()
    cue[rng.choice(len(cue), flips, replace=False)] *= -1
    return cue


@pytest.mark.brian2
def test_calcium_memory_retrieves_a_corrupted_cue_with_gains_on_the_simplex():
    """K = 6, N = 20, 2 of 20 bits flipped, calcium 1000 times faster (1 s of calcium per ms), capture O_A = 60/s:
    after 10 ms sign(u) is the stored pattern (overlap > 0.99), the target's astrocyte holds most of the pool
    (its calcium was the first to rise above 0.3 uM, where the exocytosis is ~7 % on), and at every step the gains are >= 0 with
    sum <= 1 (the shared pool)."""
    from brian2 import second

    rng = np.random.default_rng(3)
    xi = rng.choice([-1.0, 1.0], size=(6, 20))
    cue = corrupted(xi[0], 2, rng)
    mem, g, C = calcium_memory_run(xi, cue, {"speedup": 1000.0, "O_A": 60 / second}, 10.0)
    state = mem.state()
    assert np.array_equal(np.sign(state["u"]), xi[0])
    assert state["m"][0] > 0.99 and np.argmax(state["g"]) == 0
    assert g.min() >= 0 and g.sum(axis=1).max() <= 1 + 1e-12
    assert state["g"][0] > 0.9 and state["g"][0] > 20 * np.delete(state["g"], 0).max()
    above = C > 0.3  # uM: where exocytosis is ~7 % on
    first = np.where(above.any(axis=0), above.argmax(axis=0), len(C))  # step at which each first rose above
    assert first[0] < np.delete(first, 0).min()


@pytest.mark.brian2
def test_calcium_memory_with_weak_capture_loses_the_cue():
    """The same case with the default capture O_A = 0.6/s: the target's gain stays below 0.1, K g below 1/gamma,
    and the state decays towards 0 (the overlap falls below 0.3 by 25 ms, the signs still the cue's): the
    failure mode the results page reports at small K."""
    rng = np.random.default_rng(3)
    xi = rng.choice([-1.0, 1.0], size=(6, 20))
    cue = corrupted(xi[0], 2, rng)
    mem, g, _ = calcium_memory_run(xi, cue, {"speedup": 1000.0}, 25.0)
    state = mem.state()
    assert g.max() < 0.1 and abs(state["m"][0]) < 0.3
    assert np.array_equal(np.sign(state["u"]), xi[0])


@pytest.mark.brian2
def test_calcium_memory_without_bound_resource_keeps_the_cue_and_private_pools_do_not_compete():
    """With the release off (O_A = 0) the gains stay 0: no recurrent input, u decays as u(0) exp(-t / tau_u)
    (the forward-Euler factor per step, within 1e-12). Private pools from gains 1/K: nothing leaves a pool for
    another, so each gain stays <= 1/K at every step."""
    from brian2 import second

    rng = np.random.default_rng(4)
    xi = rng.choice([-1.0, 1.0], size=(4, 20))
    cue = corrupted(xi[1], 2, rng)
    mem, g, _ = calcium_memory_run(xi, cue, {"speedup": 1000.0, "O_A": 0 / second}, 2.0)
    assert np.all(g == 0)
    steps = int(round(2.0 / MEMORY_OPTIONS["dt"]))
    decay = (1 - MEMORY_OPTIONS["dt"] / MEMORY_OPTIONS["tau_u"]) ** steps
    np.testing.assert_allclose(mem.state()["u"], cue * decay, rtol=1e-12, atol=0)

    from astrogate.network.calcium import CalciumSetup

    _, g, _ = calcium_memory_run(xi, cue, CalciumSetup(pool="private", parameters={"speedup": 1000.0}), 10.0,
                                 gains=0.25)
    assert g.max() <= 0.25 + 1e-12 and g.min() >= 0


@pytest.mark.brian2
def test_replicator_is_the_default_and_unchanged():
    """astrocyte="replicator" builds the replicator memory itself (its class, its objects) and runs it to the same
    state, bit for bit, as without the option."""
    import brian2 as b2

    from astrogate.network.memory import AstrocyteGatedMemory

    b2.prefs.codegen.target = "numpy"
    rng = np.random.default_rng(5)
    xi = rng.choice([-1.0, 1.0], size=(5, 12))
    cue = corrupted(xi[0], 2, rng)
    states = []
    for kwargs in ({}, {"astrocyte": "replicator"}):
        mem = AstrocyteGatedMemory(xi, **kwargs)
        assert type(mem) is AstrocyteGatedMemory and "a" in mem.astrocytes.variables
        mem.set_cue(cue)
        b2.Network(mem).run(5 * b2.ms, namespace={})
        states.append(mem.state())
    for key in ("u", "a", "g", "m"):
        assert np.array_equal(states[0][key], states[1][key]), key


@pytest.mark.parametrize("kwargs, match", [
    (dict(astrocyte="glia"), "unknown astrocyte 'glia': use one of replicator, calcium"),
    (dict(astrocyte="calcium", calcium={"O_P": 0.9}), "O_P must have units of umolar/second"),
    (dict(astrocyte="calcium", calcium={"K_P": -0.1}), "K_P must have units of umolar"),
    (dict(astrocyte="calcium", calcium={"speedup": -2.0}), "speedup must be finite and > 0"),
    (dict(astrocyte="calcium", calcium={"speedup": 1e6}), "calcium speedup 1e\\+06 is too large for dt"),
    (dict(astrocyte="calcium", calcium=[1, 2]), "calcium must be a CalciumSetup or a dict"),
    (dict(calcium={"speedup": 10.0}), "calcium parameters need the calcium astrocytes"),
    (dict(astrocyte="calcium", neuron="poisson", readout="event"), "read the spiking neurons' trace readout"),
    (dict(astrocyte="calcium", neuron="spiky"), "unknown neuron model 'spiky'"),
    (dict(astrocyte="calcium", neuron="lif", nu_max=600.0), "LIF neurons fire at most 1/t_ref = 500 Hz"),
    (dict(astrocyte="calcium", gating="dense"), "calcium astrocytes gate the factorised synapses"),
    (dict(astrocyte="calcium", nu_max=3.0), "unknown option\\(s\\) nu_max"),
    (dict(astrocyte="calcium", method="rk4"), "unknown method 'rk4'"),
    (dict(astrocyte="calcium", record_every=-1.0), "record_every"),
])
def test_bad_calcium_memory_input_is_a_one_line_input_error(kwargs, match):
    from astrogate.network.memory import AstrocyteGatedMemory

    xi = np.random.default_rng(0).choice([-1.0, 1.0], size=(4, 10))
    with pytest.raises(InputError, match=match) as error:
        AstrocyteGatedMemory(xi, **kwargs)
    assert "\n" not in str(error.value)


@pytest.mark.brian2
@pytest.mark.parametrize("neuron", ["poisson", "lif"])
def test_calcium_memory_with_spiking_neurons_retrieves_with_gains_on_the_simplex(neuron):
    """Spiking neurons drive the calcium astrocytes: K = 10, N = 100, 10 of 100 bits flipped; neurons with
    tau_u = 10 ms at dt = 0.1 ms (Poisson at nu_max = 200 Hz, LIF at 400 Hz, below 1/t_ref), the readout
    tau_r = 5 ms, so over the 150 ms the drive is the spikes' (30 tau_r: the readout's start at the cue's rate is
    forgotten); calcium 100 times faster (1 s in 10 ms), O_A = 60/s. The astrocytes' drive is the overlap of the
    filtered spike trains, m = xi v_hat / N with v_hat = 2 r / nu_max - 1 (exactly, at the last step); sign(u)
    ends on the stored pattern with the target's astrocyte holding most of the pool (measured 0.98 to 1.0 over
    seeds 0-2 for both neurons), and at every step every gain is >= 0 and their sum <= 1 (1e-12)."""
    import brian2 as b2
    from brian2 import second

    from astrogate.network.calcium import ORDER
    from astrogate.network.memory import AstrocyteGatedMemory

    b2.prefs.codegen.target = "numpy"
    rng = np.random.default_rng(0)
    xi = rng.choice([-1.0, 1.0], size=(10, 100))
    cue = corrupted(xi[0], 10, rng)
    mem = AstrocyteGatedMemory(xi, astrocyte="calcium", calcium={"speedup": 100.0, "O_A": 60 / second},
                               neuron=neuron, nu_max=200.0 if neuron == "poisson" else 400.0, tau_r=5.0,
                               tau_u=10.0, gamma=3.0, kappa=1.0, cue_scale=1.0, dt=0.1)
    mem.set_cue(cue)
    monitor = b2.StateMonitor(mem.astrocytes, "g", record=True, when="end", order=ORDER["monitors"])
    spikes = b2.SpikeMonitor(mem.neurons, record=False)
    b2.seed(1)
    b2.Network(mem, monitor, spikes).run(150 * b2.ms, namespace={})
    g = np.asarray(monitor.g[:])
    assert g.min() >= 0 and g.sum(axis=0).max() <= 1 + 1e-12
    v_hat = np.asarray(mem.neurons.v[:])
    assert spikes.num_spikes > 1000
    np.testing.assert_allclose(np.asarray(mem.astrocytes.m[:]), xi @ v_hat / 100, rtol=0, atol=1e-12)
    state = mem.state()
    assert np.array_equal(np.sign(state["u"]), xi[0])
    assert np.argmax(state["g"]) == 0 and state["g"][0] > 0.9 and state["m"][0] > 0.7


@pytest.mark.brian2
def test_calcium_memory_takes_the_network_settings_object():
    import astrogate as ag

    xi = np.random.default_rng(0).choice([-1.0, 1.0], size=(4, 10))
    settings = ag.NetworkSettings(method="exponential_euler", record_every=0.5, neuron_sample=3)
    memory = ag.AstrocyteGatedMemory(xi, None, settings, astrocyte="calcium", name="calcium_settings")
    assert (memory.method, memory.record_every, len(memory.neuron_sample)) == ("exponential_euler", 0.5, 3)
    with pytest.raises(InputError, match="gate the factorised synapses"):
        ag.AstrocyteGatedMemory(xi, None, settings.changed(gating="wired"), astrocyte="calcium")


def test_bad_calcium_memory_state_is_an_input_error():
    import brian2 as b2

    from astrogate.network.memory import AstrocyteGatedMemory

    b2.prefs.codegen.target = "numpy"
    xi = np.random.default_rng(0).choice([-1.0, 1.0], size=(4, 10))
    mem = AstrocyteGatedMemory(xi, astrocyte="calcium")
    for gains in (-0.1, [0.5, 0.5, 0.5, 0.0], [0.1, 0.1]):
        with pytest.raises(InputError, match="gains must be"):
            mem.set_cue(xi[0], gains=gains)
    with pytest.raises(InputError, match="no logits"):
        mem.state_values(a0=np.zeros(4))
    from astrogate.models.spiking_equations import SpikingParameters

    with pytest.raises(InputError, match="spiking parameters need spiking neurons"):
        mem.state_values(spiking=SpikingParameters())


@pytest.mark.brian2
@pytest.mark.compile
def test_calcium_memory_on_cpp_standalone_equals_the_runtime_run(tmp_path):
    """The same memory with calcium astrocytes (shared pool and ring gap junctions) on cpp_standalone and on the
    runtime device: u and g within 1e-9 after 10 ms."""
    import brian2 as b2
    from brian2 import second, umolar

    from astrogate.network import devices
    from astrogate.network.calcium import CalciumSetup
    from astrogate.network.memory import AstrocyteGatedMemory

    rng = np.random.default_rng(6)
    xi = rng.choice([-1.0, 1.0], size=(5, 16))
    cue = corrupted(xi[0], 2, rng)
    setup = CalciumSetup(gap_junctions="ring", parameters={"speedup": 1000.0, "F_GJ": 2 * umolar / second})
    states = []
    for device in ("runtime", "cpp_standalone"):
        choice = devices.DeviceChoice(device, "numpy") if device == "runtime" else \
            devices.DeviceChoice(device, build_root=tmp_path)
        build = devices.activate(choice, MEMORY_OPTIONS["dt"])
        mem = AstrocyteGatedMemory(xi, astrocyte="calcium", calcium=setup, **MEMORY_OPTIONS)
        mem.set_cue(cue)
        b2.Network(mem).run(10 * b2.ms, namespace={})
        if build is not None:
            b2.device.build(directory=str(build), compile=True, run=True, with_output=False)
        states.append(mem.state())
    for key in ("u", "g", "C"):
        np.testing.assert_allclose(states[1][key], states[0][key], rtol=0, atol=1e-9, err_msg=key)
    assert states[1]["g"].argmax() == 0


# -- 7. the coupling study on the study engine ----------------------------------------------------------------------
TINY_COUPLING = """
[study]
name = "tiny_coupling"
evaluation = "calcium_coupling"

[fixed]
O_A = 60.0
map_K = 6
map_N = 12
flips = 2
per_kind = 1
settle = 60.0
window = 10.0
retrieval_K = 6
retrieval_sets = 1
target = "numpy"

[axes]
mechanism = { values = ["shared pool", "private pools"] }
"""


@pytest.mark.brian2
def test_coupling_study_runs_on_the_engine_and_only_the_shared_pool_competes(tmp_path, saved_figures):
    """Two points through the engine (K = 6 patterns of N = 12 bits, 4 protocol states, 60 s of release; retrieval
    at K = 6, one set): the shared pool's gains follow softmax(f / T_eff) (measured r = 0.997 at T_eff = 0.38),
    private pools' do not (r = 0.87, T_eff = 5.3, each gain <= 1/K); every gain >= 0 and every sum <= 1 (1e-12)
    in the map's every step and the memory's every sample; the figure draws the table's values."""
    import pandas as pd

    from astrogate.analysis.engine import run_study
    from astrogate.analysis.spec import parse_study

    study = parse_study(TINY_COUPLING, tmp_path / "tiny.toml")
    outcome = run_study(study, tmp_path / "out", workers=2, progress=False)
    assert outcome.complete and outcome.failed == 0
    table = pd.read_csv(tmp_path / "out" / "results.csv").set_index("mechanism")
    shared, private = table.loc["shared pool"], table.loc["private pools"]
    assert shared["r"] >= 0.98 and private["r"] < shared["r"] - 0.05
    assert shared["T_eff"] < private["T_eff"]
    for row in (shared, private):
        assert row["g_low"] >= 0 and row["sum_max"] <= 1 + 1e-12
        assert row["retrieval_g_min"] >= 0 and row["retrieval_sum_max"] <= 1 + 1e-12
        assert row["calcium_hamming"] == 0 and row["calcium_winner_is_target"] == 1 and row["calcium_overlap"] > 0.99
    assert 0 <= shared["free_low"] < 0.01 and np.isnan(private["free_low"])
    assert private["sum_max"] <= 1 + 1e-12 and private["top_gain_mean"] <= 1 / 6 + 1e-12
    assert shared["calcium_top_gain"] > 0.9 and private["calcium_top_gain"] <= 1 / 6 + 1e-12
    # the figure: one line per mechanism in each panel, at the table's values
    from astrogate.analysis.calcium import COUPLING_PANELS

    panels = saved_figures["coupling.png"].axes
    assert len(panels) == len(COUPLING_PANELS)
    for ax, (metric, label) in zip(panels, COUPLING_PANELS):
        assert ax.get_ylabel() == label
        lines = {line.get_label().split(" (")[0]: line for line in ax.lines}
        for mechanism in ("shared pool", "private pools"):
            np.testing.assert_allclose(lines[mechanism].get_xdata(), [60.0])
            np.testing.assert_allclose(lines[mechanism].get_ydata(), [table.loc[mechanism, metric]])


@pytest.mark.parametrize("change, fragment", [
    ('mechanism = "shared pool"\nF_GJ = 0.5', "F_GJ = 0.5 uM/s needs gap junctions"),
    ('mechanism = "syncytium"', "unknown mechanism 'syncytium'"),
    ("retrieval_flips = 40", "retrieval_flips must be at most N = 20"),
    ('varied = "speedup"', "unknown varied strength 'speedup'"),
    ("O_A = -1.0", "O_A"),
])
def test_coupling_study_refuses_bad_points_before_running(change, fragment):
    from astrogate.analysis.spec import parse_study

    text = TINY_COUPLING.replace("[axes]\nmechanism = { values = [\"shared pool\", \"private pools\"] }\n", "")
    text = text.replace("O_A = 60.0\n", "" if "O_A" in change else "O_A = 60.0\n").replace(
        "[fixed]\n", f"[fixed]\n{change}\n")
    with pytest.raises(InputError, match=fragment) as error:
        parse_study(text, "tiny.toml")
    assert "\n" not in str(error.value) and str(error.value).startswith("tiny.toml:")


# -- 8. the results page's map, transfer function, memory and spiking studies on the engine --------------------------
@pytest.fixture(scope="module")
def thread_client():
    """One in-process worker thread: the points run as Dask tasks without starting worker processes."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield client


def run_spec(text, folder, client, **options):
    from astrogate.analysis.engine import run_study
    from astrogate.analysis.spec import parse_study

    outcome = run_study(parse_study(text, folder.with_suffix(".toml")), folder, client, progress=False, **options)
    assert outcome.complete and outcome.failed == 0
    return outcome


def csv_text(rows, columns=None, float_format=".4g", tmp=None):
    from astrogate.analysis.io import write_csv

    return write_csv(tmp, rows, columns, float_format=float_format).read_text()


TINY_MAP = """
[study]
evaluation = "calcium_map"
[fixed]
N = 12
K = 6
flips = 2
per_kind = 1
settle = 5.0
window = 2.0
target = "numpy"
[[zip]]
name = "row"
group = { values = ["capture", "mechanism"] }
label = { values = ["O_A=60/s", "private pool"] }
mechanism = { values = ["shared pool", "private pools"] }
O_A = { values = [60.0, 60.0] }
"""


@pytest.mark.brian2
def test_map_study_on_the_engine_writes_the_maps_of_quasi_static_map(tmp_path, thread_client, saved_figures):
    """Two configurations through the engine: sweep.csv holds, per configuration, what quasi_static_map and
    shape_agreement give for the same setup and protocol states (the same text, run time aside); the sweep figure
    draws sweep.csv's r."""
    from brian2 import second

    from astrogate.analysis.calcium import MAP_COLUMNS, protocol_states, quasi_static_map, shape_agreement
    from astrogate.network.calcium import CalciumSetup

    run_spec(TINY_MAP, tmp_path / "map", thread_client)
    states = protocol_states(12, 6, 2, 1, 0)
    lines = []
    for group, label, pool in (("capture", "O_A=60/s", "shared"), ("mechanism", "private pool", "private")):
        setup = CalciumSetup(pool, "none", {"O_A": 60.0 / second}, dt=20.0)
        result = quasi_static_map(setup, states, settle=5.0, window=2.0, target="numpy")
        s = result["summary"]
        s.update({f"shape_{k}": v for k, v in shape_agreement(result["g"], result["f"]).items()}, group=group,
                 label=label, pool=pool, gap_junctions="none", run_seconds=0.0)
        lines.append({c: s[c] for c in MAP_COLUMNS})
    import csv

    with open(tmp_path / "map" / "sweep.csv") as fh:
        written = list(csv.DictReader(fh))
    for line in written:
        line["run_seconds"] = "0"
    expected = list(csv.DictReader(csv_text(lines, MAP_COLUMNS, ".6g", tmp_path / "direct.csv").splitlines()))
    assert written == expected
    bars = saved_figures["calcium_sweep.png"].axes[0].patches  # sweep.csv: 6 significant digits
    np.testing.assert_allclose([bar.get_width() for bar in bars[:2]], [float(line["r"]) for line in written], rtol=1e-5)
    assert (tmp_path / "map" / "private_pool.npz").is_file() and "calcium_map_private_pool.png" in saved_figures


@pytest.mark.brian2
def test_transfer_study_on_the_engine_writes_the_transfer_function(tmp_path, thread_client):
    from astrogate.analysis.calcium import transfer_function

    spec = '[study]\nevaluation = "calcium_transfer"\n[fixed]\nglutamate_low = 0.01\nglutamate_high = 1.0\n' \
           'levels = 2\nsettle = 5.0\nwindow = 2.0\ntarget = "numpy"\n'
    run_spec(spec, tmp_path / "transfer", thread_client)
    response = transfer_function(np.geomspace(0.01, 1.0, 2), settle=5.0, window=2.0, target="numpy")
    rows = [dict(zip(response, values)) for values in zip(*response.values())]
    assert (tmp_path / "transfer" / "transfer.csv").read_text() == csv_text(rows, None, ".6g", tmp_path / "d.csv")


TINY_MEMORY = """
[study]
evaluation = "calcium_memory"
[fixed]
N = 20
duration = 5.0
sets = 1
target = "numpy"
[[zip]]
name = "row"
part = { values = ["retrieval", "retrieval", "flips"] }
K = { values = [6, 10, 6] }
flips = { values = [2, 2, 4] }
"""


@pytest.mark.brian2
def test_memory_study_on_the_engine_writes_the_summaries_of_calcium_retrieval(tmp_path, thread_client):
    """retrieval.csv, retrieval_summary.csv and flips.csv are what calcium_retrieval and retrieval_summary give
    directly: the retrieval points draw their sets from one generator, K = 6 first, as calcium_retrieval((6, 10))
    does. Resumed, the study runs only the point whose file was removed, and writes the same tables."""
    from astrogate.analysis.calcium import RUN_COLUMNS, calcium_retrieval, retrieval_summary

    out = tmp_path / "memory"
    run_spec(TINY_MEMORY, out, thread_client)
    lines = calcium_retrieval((6, 10), sets=1, duration=5.0, target="numpy")
    harder = retrieval_summary(calcium_retrieval((6,), flips=4, sets=1, duration=5.0, target="numpy"))
    assert (out / "retrieval.csv").read_text() == csv_text(lines, RUN_COLUMNS, ".6g", tmp_path / "a.csv")
    assert (out / "retrieval_summary.csv").read_text() == csv_text(retrieval_summary(lines), tmp=tmp_path / "b.csv")
    assert (out / "flips.csv").read_text() == csv_text([{"flips": 4, **harder[0]}], tmp=tmp_path / "c.csv")
    tables = {name: (out / name).read_text() for name in ("retrieval.csv", "retrieval_summary.csv", "flips.csv")}
    removed = sorted((out / "points").glob("*.json"))[0]
    removed.unlink()
    outcome = run_spec(TINY_MEMORY, out, thread_client, resume=True)
    assert (outcome.skipped, outcome.ran) == (2, 1) and removed.is_file()
    assert {name: (out / name).read_text() for name in tables} == tables


def test_a_failed_memory_point_has_a_row_per_set_with_its_error():
    """In the table and the Dataset, a failed point's sets say "failed" and why, beside a finished point's
    values and the points not run yet ("missing")."""
    from astrogate.analysis.engine import collect
    from astrogate.analysis.spec import parse_study
    from astrogate.analysis.study import enumerate_points

    study = parse_study(TINY_MEMORY.replace("sets = 1", "sets = 2"), "tiny.toml")
    failed, finished, _ = enumerate_points(study)
    rows = [{"K": 10, "set": s, "calcium_hamming": float(s)} for s in (0, 1)]
    dataset, table = collect(study, {failed.id: {"status": "failed", "error": "RuntimeError: boom"},
                                     finished.id: {"status": "ok", "rows": rows}})
    assert table["status"].tolist() == ["failed"] * 2 + ["ok"] * 2 + ["missing"] * 2
    assert table["set"].tolist() == [0, 1] * 3 and set(table["error"][:2]) == {"RuntimeError: boom"}
    assert dataset["status"].dims == ("set", "row")
    assert dataset["status"].values.tolist() == [["failed", "ok", "missing"]] * 2
    np.testing.assert_array_equal(dataset["calcium_hamming"].values[:, 1], [0.0, 1.0])


@pytest.mark.brian2
def test_spiking_memory_study_on_the_engine_writes_the_summary_of_calcium_spiking_retrieval(tmp_path, thread_client):
    from astrogate.analysis.calcium import calcium_spiking_retrieval, spiking_summary

    spec = '[study]\nevaluation = "calcium_spiking"\n[fixed]\nneuron = "poisson"\nK = 6\nN = 30\nflips = 3\n' \
           'sets = 1\nduration = 20.0\n'
    run_spec(spec, tmp_path / "spiking", thread_client)
    summary = spiking_summary(calcium_spiking_retrieval(6, 30, 3, 1, "poisson", 20.0))
    assert summary[0]["spikes_per_run"] > 0
    assert (tmp_path / "spiking" / "spiking_summary.csv").read_text() == csv_text(summary, tmp=tmp_path / "s.csv")


@pytest.mark.parametrize("spec, fragment", [
    (TINY_MAP.replace('O_A = { values = [60.0, 60.0] }', 'F_GJ = { values = [0.0, 0.5] }'),
     "F_GJ = 0.5 uM/s needs gap junctions"),
    (TINY_MAP.replace("flips = 2", "flips = 13"), "flips must be at most N = 12"),
    (TINY_MEMORY.replace("duration = 5.0", "duration = 5.0\nspeedup = 20000.0"), "speedup = 20000 is too large"),
    (TINY_MEMORY.replace('"flips"] }', '"sorted"] }'), "unknown part 'sorted'"),
    ('[study]\nevaluation = "calcium_transfer"\n[fixed]\nglutamate_low = 2.0\nglutamate_high = 1.0\n',
     "glutamate_low = 2 uM must be below glutamate_high = 1 uM"),
    ('[study]\nevaluation = "calcium_spiking"\n[fixed]\nneuron = "izhikevich"\n', "unknown neuron model"),
    ('[study]\nevaluation = "calcium_spiking"\n[fixed]\nN = 10\nflips = 11\n', "flips must be at most N = 10"),
])
def test_calcium_studies_refuse_bad_points_with_file_and_line(spec, fragment):
    from astrogate.analysis.spec import parse_study

    with pytest.raises(InputError, match=fragment) as error:
        parse_study(spec, "bad.toml")
    assert "\n" not in str(error.value) and re.match(r"bad\.toml:\d+: ", str(error.value))


# -- 9. the benchmark's model kind ----------------------------------------------------------------------------------
@pytest.mark.brian2
def test_benchmark_kind_gated_calcium_retrieves_the_cues_of_a_cell():
    """make_benchmark_model("gated_calcium"): one network for the pattern set, re-run from each cue (K = 6, N = 20,
    2 flipped bits, numpy): sign(u) is each cue's pattern, the gains are the final g (sum <= 1, the target's
    largest), converged where one pattern holds more than half of the pool; rates are tanh(gamma u)."""
    from astrogate.analysis.bench_models import make_benchmark_model

    rng = np.random.default_rng(3)
    xi = rng.choice([-1.0, 1.0], size=(6, 20))
    cues = np.array([corrupted(xi[0], 2, rng), corrupted(xi[4], 2, rng)])
    result = make_benchmark_model("gated_calcium", xi, duration=12.0, target="numpy").retrieve(cues)
    np.testing.assert_array_equal(result.states, xi[[0, 4]])
    assert result.gains.shape == (2, 6) and np.all(result.gains.sum(axis=1) <= 1 + 1e-12) and result.gains.min() >= 0
    assert list(np.argmax(result.gains, axis=1)) == [0, 4] and result.converged.all()
    assert np.all(np.sign(result.rates) == result.states) and list(result.steps) == [1200, 1200]


@pytest.mark.parametrize("options, match", [
    (dict(calcium={"Y_patern": 1.0}), "gated_calcium: unknown calcium parameter 'Y_patern'"),
    (dict(calcium={"O_A": -1.0}), "gated_calcium: calcium parameter O_A must be finite and >= 0"),
    (dict(calcium={"O_A": "fast"}), "calcium parameter O_A must be a number"),
    (dict(calcium=[1.0]), "option calcium must be a table"),
    (dict(pool="common"), "gated_calcium: unknown pool 'common'"),
    (dict(duration=-1.0), "gated_calcium: option duration"),
    (dict(target="gpu"), "gated_calcium: option target"),
])
def test_benchmark_kind_gated_calcium_refuses_bad_options(options, match):
    from astrogate.analysis.bench_models import make_benchmark_model

    with pytest.raises(InputError, match=match) as error:
        make_benchmark_model("gated_calcium", np.ones((2, 4)), **options)
    assert "\n" not in str(error.value)
