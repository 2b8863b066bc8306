"""The Brian2 network against the abstract model with forward Euler at the same dt.

Tolerances: one network step is one abstract Euler step computed from the same state in the same order,
so the two differ only by floating-point round-off (summation order of the overlaps and inputs, operand
order in the Euler update): ~1e-16 relative per step, and the dynamics contract, so the difference does
not grow. Measured: final u and a within ~1e-13, traces within ~1e-15 (N = 30, K = 20, 500 steps).
We assert 1e-9 (relative to the size of each quantity), on the traces as well as the final state: the final
state alone cannot see a scheduling error. Measured on this problem: computing I_rec before the gains of the
same step (a one-step lag) changes the gain traces by 0.07 and the overlap traces by 0.15, yet the final
gains still agree to 1e-100, since both runs reach the same fixed point.
"""

import numpy as np
import pytest

from astrogate.analysis.recall import generated_problem, run_recall
from astrogate.errors import InputError
from astrogate.models.abstract import AstroGateModel
from astrogate.models.parameters import Parameters

pytestmark = pytest.mark.brian2

ROUND_OFF = 1e-9
DURATION = 50.0  # ms: 500 steps, through the retrieval transient


@pytest.fixture(scope="module")
def problem():
    return generated_problem(K=20, N=30, correlation=0.3, flip=0.25, seed=3)


def abstract(problem, params, duration=DURATION, **kwargs):
    return run_recall(problem, params, duration=duration, tol=0.0, **kwargs)


def brian2(problem, params, duration=DURATION, **options):
    return run_recall(problem, params, duration=duration, tol=0.0, backend="brian2", **options)


def assert_agrees(net, ref):
    """Final state, traces, residual and energy of two records on the same problem."""
    assert net["retrieved"] == ref["retrieved"]
    assert np.max(np.abs(np.asarray(net["g"]) - ref["g"])) < 1e-3  # the criterion ...
    assert np.max(np.abs(np.asarray(net["g"]) - ref["g"])) < ROUND_OFF  # ... and what we actually get
    assert np.max(np.abs(np.asarray(net["v"]) - ref["v"])) < ROUND_OFF
    scale_u = max(1.0, np.max(np.abs(ref["u"])))
    assert np.max(np.abs(np.asarray(net["u"]) - ref["u"])) < ROUND_OFF * scale_u
    np.testing.assert_array_equal(net["t"], ref["t"])
    assert net["trace_patterns"] == ref["trace_patterns"]
    assert np.max(np.abs(np.asarray(net["overlap_trace"]) - ref["overlap_trace"])) < ROUND_OFF
    assert np.max(np.abs(np.asarray(net["gain_trace"]) - ref["gain_trace"])) < ROUND_OFF
    scale_L = max(1.0, np.max(np.abs(ref["energy"])))
    assert np.max(np.abs(np.asarray(net["energy"]) - ref["energy"])) < ROUND_OFF * scale_L
    assert abs(net["softmax_residual"] - ref["softmax_residual"]) < ROUND_OFF


def assert_simplex_and_descent(net):
    assert np.all(np.asarray(net["gain_trace"]) >= 0)
    assert net["brian2"]["simplex_error"] < 1e-12  # every recorded step
    assert abs(np.sum(net["g"]) - 1.0) < 1e-12
    energy = np.asarray(net["energy"])
    assert np.max(np.diff(energy)) <= ROUND_OFF * max(1.0, np.max(np.abs(energy)))


@pytest.mark.parametrize("gating", ["factorised", "dense"])
def test_runtime_numpy_matches_abstract_euler(problem, gating):
    params = Parameters()
    net = brian2(problem, params, device="runtime", target="numpy", gating=gating)
    assert_agrees(net, abstract(problem, params))
    assert_simplex_and_descent(net)
    assert net["backend"] == "brian2" and net["brian2"]["gating"] == gating
    assert {"build_seconds", "run_seconds"} <= set(net["timings"])


@pytest.mark.parametrize("similarity", ["linear", "power:3"])
def test_other_similarities_match(problem, similarity):
    params = Parameters(similarity=similarity, beta=40.0)
    net = brian2(problem, params, target="numpy")
    assert_agrees(net, abstract(problem, params))
    assert_simplex_and_descent(net)


def test_every_step_on_the_simplex_and_energy_descends_at_default_beta():
    """beta = 20 N = 4000: exp(a) would overflow without the shifted softmax."""
    from astrogate.models.patterns import flip_cue, random_patterns
    from astrogate.network.recall import Brian2Session

    rng = np.random.default_rng(0)
    xi = random_patterns(40, 200, rng, 0.3)
    model = AstroGateModel(xi, Parameters())
    cue = flip_cue(xi[7], 0.2, rng)
    u0, a0 = model.initial_state(cue)
    session = Brian2Session("runtime", "numpy")
    handles, results, _ = session.run(xi, Parameters(), u0, a0, duration=20.0)
    assert np.isfinite(results["g"]).all() and np.isfinite(results["energy"]).all()
    assert np.max(np.abs(results["g"].sum(axis=1) - 1.0)) < 1e-12
    assert results["a"].max() > 1000  # the logits do reach the range where exp() overflows
    energy = results["energy"]
    assert np.max(np.diff(energy)) <= ROUND_OFF * np.max(np.abs(energy))
    # the in-network Lyapunov function is the abstract model's L of the same state
    reference = model.run(cue, duration=20.0, tol=0.0, record_every=model.params.dt)
    np.testing.assert_allclose(energy, reference.energy[:-1], rtol=ROUND_OFF)


def test_cue_as_current_matches(problem):
    """The cue as a current I = cue during t < t_cue from u(0) = 0."""
    from astrogate.network.recall import Brian2Session

    params = Parameters()
    model = AstroGateModel(problem.patterns, params)
    zero = np.zeros(model.N)
    session = Brian2Session("runtime", "numpy", record_every=params.dt)
    _, results, _ = session.run(model.xi, params, zero, None, duration=DURATION, current=problem.cue, t_current=5.0)
    reference = model.run(problem.cue, duration=DURATION, tol=0.0, current=problem.cue, t_current=5.0, u0=zero,
                          record_every=params.dt)
    assert np.max(np.abs(results["u"] - reference.u)) < ROUND_OFF * np.max(np.abs(reference.u))
    assert np.max(np.abs(results["m"] - reference.overlaps[:-1])) < ROUND_OFF


@pytest.mark.parametrize("neuron", ["rate", "poisson", "lif"])
def test_runtime_session_reruns_its_build_bit_for_bit(problem, neuron):
    """A runtime session re-runs its network (store/restore, Brian2's seed set again) for a new cue, new
    patterns, new parameters and another duration: every result equals a fresh build's, bit for bit.
    A new seed, or another session activating the device in between, builds anew."""
    from astrogate.models.spiking_equations import SpikingParameters
    from astrogate.network.recall import Brian2Session

    spiking = SpikingParameters(seed=4) if neuron != "rate" else None
    other = generated_problem(K=20, N=30, correlation=0.0, flip=0.1, seed=11)
    other_params = Parameters().updated(beta=300.0, tau_g=5.0, gamma=2.0)
    runs = [(problem, Parameters(), 20.0), (other, other_params, 20.0), (problem, Parameters(), 10.0)]
    inputs = []
    for prob, params, duration in runs:
        model = AstroGateModel(prob.patterns, params)
        inputs.append((model.xi, params, *model.initial_state(prob.cue), duration))
    session = Brian2Session("runtime", "numpy", record_every=1.0, neuron=neuron, spiking=spiking)
    reused = [session.run(*args) for args in inputs]
    assert [timings["reused_build"] for _, _, timings in reused] == [False, True, True]
    for args, (_, results, _) in zip(inputs[1:], reused[1:]):  # the first run is a fresh build
        _, reference, timings = Brian2Session("runtime", "numpy", record_every=1.0, neuron=neuron,
                                              spiking=spiking).run(*args)
        assert not timings["reused_build"] and results.keys() == reference.keys()
        for key in results:
            np.testing.assert_array_equal(results[key], reference[key], err_msg=key)
    # the fresh sessions above activated the device anew: this session's network is gone
    assert not session.run(*inputs[0])[2]["reused_build"]
    assert session.run(*inputs[0])[2]["reused_build"]
    if spiking is not None:  # the seed is set at the build
        session.spiking = SpikingParameters(seed=5)
        assert not session.run(*inputs[0])[2]["reused_build"]


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(device="gpu"), "use one of runtime, cpp_standalone, cuda_standalone"),
        (dict(target="fortran"), "use one of cython, numpy"),
        (dict(gating="tripartite"), "use one of factorised, dense"),
        (dict(method="adaptive"), "method must be 'euler'"),
        (dict(tol=-1.0), "tol must be >= 0"),
        (dict(duration=0.0), "duration must be a positive"),
    ],
)
def test_bad_options_are_input_errors(problem, options, message):
    kwargs = dict(duration=DURATION, tol=0.0, target="numpy")
    kwargs.update(options)
    with pytest.raises(InputError, match=message):
        run_recall(problem, Parameters(), backend="brian2", **kwargs)


def test_dense_gating_needs_quadratic_similarity(problem):
    with pytest.raises(InputError, match="needs F quadratic"):
        brian2(problem, Parameters(similarity="linear"), target="numpy", gating="dense")


def test_cuda_without_brian2cuda_says_so(problem, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "brian2cuda", None)  # makes `import brian2cuda` fail as if not installed
    with pytest.raises(InputError, match="brian2cuda"):
        brian2(problem, Parameters(), device="cuda_standalone")


def test_too_large_a_softmax_step_is_refused(problem):
    with pytest.raises(InputError, match="shifted softmax"):
        brian2(problem, Parameters(beta=1e7), target="numpy")


def test_bad_patterns_give_the_abstract_backends_errors():
    from astrogate.analysis.recall import RecallProblem

    with pytest.raises(InputError, match="contains NaN"):
        RecallProblem(np.array([[1.0, np.nan], [1.0, -1.0]]), np.ones(2))


# -- compiled: Cython and C++ standalone (make test-slow) ----------------------------------------------

@pytest.mark.compile
@pytest.mark.parametrize("gating", ["factorised", "dense"])
def test_runtime_cython_matches_abstract_euler(problem, gating):
    params = Parameters()
    net = brian2(problem, params, device="runtime", target="cython", gating=gating)
    assert_agrees(net, abstract(problem, params))
    assert_simplex_and_descent(net)


@pytest.mark.compile
@pytest.mark.parametrize("gating", ["factorised", "dense"])
def test_cpp_standalone_matches_and_reruns_without_recompiling(problem, gating, tmp_path):
    """One build, three runs through run_args: the problem, another pattern set with other parameters,
    and the problem again; each agrees with the abstract model (and so with a fresh build of its own)."""
    from astrogate.network.recall import Brian2Session, run_brian2_recall

    params = Parameters()
    other = generated_problem(K=20, N=30, correlation=0.0, flip=0.1, seed=11)
    other_params = params.updated(beta=300.0, tau_g=5.0, gamma=2.0, kappa=0.5)
    with Brian2Session("cpp_standalone", gating=gating, build_dir=tmp_path) as session:
        first = run_brian2_recall(problem, params, duration=DURATION, tol=0.0, session=session)
        build_path = session.build_path
        second = run_brian2_recall(other, other_params, duration=DURATION, tol=0.0, session=session)
        third = run_brian2_recall(problem, params, duration=DURATION, tol=0.0, session=session)
        assert session.build_path == build_path
    assert not first["timings"]["reused_build"]
    assert second["timings"]["reused_build"] and third["timings"]["reused_build"]
    assert_agrees(first, abstract(problem, params))
    assert_agrees(second, abstract(other, other_params))
    for key in ("u", "a", "g", "energy", "overlap_trace"):
        np.testing.assert_array_equal(third[key], first[key])
    assert_simplex_and_descent(first)
    if gating == "factorised":  # the re-run with other patterns and parameters against a fresh build of them
        fresh = brian2(other, other_params, device="cpp_standalone", gating=gating, build_dir=tmp_path)
        for key in ("u", "a", "g", "energy", "overlap_trace", "gain_trace"):
            np.testing.assert_array_equal(second[key], fresh[key])
