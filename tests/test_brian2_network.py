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

from astrogate.analysis.recall import generated_problem, recall
from astrogate.errors import InputError
from astrogate.models.abstract import AstroGateModel, RunInputs
from astrogate.models.parameters import Parameters

pytestmark = pytest.mark.brian2

ROUND_OFF = 1e-9
DURATION = 50.0  # ms: 500 steps, through the retrieval transient


@pytest.fixture(scope="module")
def problem():
    return generated_problem(K=20, N=30, correlation=0.3, flip=0.25, seed=3)


def abstract(problem, params, duration=DURATION, **kwargs):
    return recall(problem, params, duration=duration, tol=0.0, **kwargs)


def brian2(problem, params, duration=DURATION, **options):
    return recall(problem, params, duration=duration, tol=0.0, backend="brian2", **options)


def assert_agrees(net, ref):
    """Final state, traces, residual and energy of two records on the same problem."""
    assert net["retrieved"] == ref["retrieved"]
    assert np.max(np.abs(np.asarray(net["g"]) - ref["g"])) < 1e-3  # the agreement first asked for ...
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


@pytest.mark.parametrize("target", ["numpy", pytest.param("cython", marks=pytest.mark.compile)])
@pytest.mark.parametrize("gating", ["factorised", "wired", "dense"])
def test_runtime_matches_abstract_euler(problem, gating, target):
    params = Parameters()
    net = brian2(problem, params, device="runtime", target=target, gating=gating)
    assert_agrees(net, abstract(problem, params))
    assert_simplex_and_descent(net)
    assert net["backend"] == "brian2" and net["brian2"]["gating"] == gating
    assert {"build_seconds", "run_seconds"} <= set(net["timings"])


def test_wired_gating_has_a_synapse_per_plus_one_entry(problem):
    """The wiring is the patterns: (i, mu) connected from neurons to astrocytes, and (mu, i) back, exactly where
    pattern[mu, i] = +1; the overlaps it computes are those of the weighted network (traces compared above)."""
    from astrogate.models.patterns import validate_patterns
    from astrogate.network import devices
    from astrogate.network.memory import AstrocyteGatedMemory

    xi = validate_patterns(problem.patterns)
    params = Parameters().resolved(xi.shape[1])
    devices.activate(devices.DeviceChoice("runtime", "numpy"), params.dt)
    handles = AstrocyteGatedMemory(xi, params, gating="wired")
    plus = np.zeros_like(xi, dtype=bool)
    plus[np.asarray(handles.synapses["overlap"].j[:]), np.asarray(handles.synapses["overlap"].i[:])] = True
    np.testing.assert_array_equal(plus, xi > 0)
    assert len(handles.synapses["overlap"]) == len(handles.synapses["output"]) == np.count_nonzero(xi > 0)
    back = np.zeros_like(plus)
    back[np.asarray(handles.synapses["output"].i[:]), np.asarray(handles.synapses["output"].j[:])] = True
    np.testing.assert_array_equal(back, plus)


def test_wired_gating_refuses_what_it_cannot_wire(problem):
    from astrogate.analysis.recall import RecallProblem
    from astrogate.models.spiking_equations import SpikingParameters
    from astrogate.network import devices
    from astrogate.network.memory import AstrocyteGatedMemory

    real = RecallProblem(problem.patterns * np.linspace(0.5, 1.5, problem.patterns.shape[1]), problem.cue)
    with pytest.raises(InputError, match="wired gating .* needs patterns of \\+-1 entries"):
        brian2(real, Parameters(), target="numpy", gating="wired")
    with pytest.raises(InputError, match="use the trace readout"):
        brian2(problem, Parameters(), target="numpy", gating="wired", neuron="poisson",
               spiking=SpikingParameters(readout="event"))
    params = Parameters().resolved(problem.patterns.shape[1])
    devices.activate(devices.DeviceChoice("runtime", "numpy"), params.dt)
    handles = AstrocyteGatedMemory(problem.patterns, params, gating="wired")
    with pytest.raises(InputError, match="compiles the patterns into the network"):
        handles.state_values(-problem.patterns, params.cue_scale * problem.cue)


@pytest.mark.parametrize("gating", ["factorised", "wired"])
def test_exponential_euler_network_matches_the_abstract_exponential_euler(problem, gating):
    """method='exponential_euler': Brian2's own scheme on the network against the abstract model's, step for
    step (traces, final state, L), and not the forward-Euler trajectory (the comparison can tell them apart)."""
    params = Parameters()
    net = brian2(problem, params, target="numpy", gating=gating, method="exponential_euler")
    reference = abstract(problem, params, method="exponential_euler")
    assert net["method"] == reference["method"] == "exponential_euler"
    assert_agrees(net, reference)
    euler = abstract(problem, params)
    assert np.max(np.abs(np.asarray(net["u"]) - euler["u"])) > 1e3 * ROUND_OFF


def test_a_session_keeps_its_method(problem):
    from astrogate.network.recall import Brian2Session

    with Brian2Session("runtime", "numpy", method="exponential_euler") as session:
        with pytest.raises(InputError, match="integrates with 'exponential_euler', not 'euler'"):
            brian2(problem, Parameters(), session=session)
    with pytest.raises(InputError, match="unknown method 'rk4': use one of euler, exponential_euler"):
        Brian2Session("runtime", method="rk4")


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
    reference = model.run(problem.cue, duration=DURATION, tol=0.0, record_every=params.dt,
                          inputs=RunInputs(u0=zero, current=problem.cue, t_current=5.0))
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
        (dict(gating="tripartite"), "use one of factorised, wired, dense"),
        (dict(method="adaptive"), "method 'euler' or 'exponential_euler'"),
        (dict(tol=-1.0), "tol must be >= 0"),
        (dict(duration=0.0), "duration must be a positive"),
    ],
)
def test_bad_options_are_input_errors(problem, options, message):
    kwargs = dict(duration=DURATION, tol=0.0, target="numpy")
    kwargs.update(options)
    with pytest.raises(InputError, match=message):
        recall(problem, Parameters(), backend="brian2", **kwargs)


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
def test_cpp_standalone_matches_and_reruns_without_recompiling(problem, gating, tmp_path):
    """One build, three runs through run_args: the problem, another pattern set with other parameters,
    and the problem again; each agrees with the abstract model (and so with a fresh build of its own)."""
    from astrogate.network.recall import Brian2Session

    params = Parameters()
    other = generated_problem(K=20, N=30, correlation=0.0, flip=0.1, seed=11)
    other_params = params.updated(beta=300.0, tau_g=5.0, gamma=2.0, kappa=0.5)
    with Brian2Session("cpp_standalone", gating=gating, build_dir=tmp_path) as session:
        first = recall(problem, params, backend="brian2", duration=DURATION, tol=0.0, session=session)
        build_path = session.build_path
        second = recall(other, other_params, backend="brian2", duration=DURATION, tol=0.0, session=session)
        third = recall(problem, params, backend="brian2", duration=DURATION, tol=0.0, session=session)
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


@pytest.mark.compile
def test_cpp_standalone_wired_reruns_new_parameters_and_rebuilds_for_new_patterns(problem, tmp_path):
    from astrogate.network.recall import Brian2Session

    params = Parameters()
    other_params = params.updated(beta=300.0, tau_g=5.0, gamma=2.0, kappa=0.5)
    other = generated_problem(K=20, N=30, correlation=0.0, flip=0.1, seed=11)
    with Brian2Session("cpp_standalone", gating="wired", build_dir=tmp_path) as session:
        first = recall(problem, params, backend="brian2", duration=DURATION, tol=0.0, session=session)
        second = recall(problem, other_params, backend="brian2", duration=DURATION, tol=0.0, session=session)
        third = recall(other, params, backend="brian2", duration=DURATION, tol=0.0, session=session)
    assert not first["timings"]["reused_build"] and second["timings"]["reused_build"]
    assert not third["timings"]["reused_build"]  # new patterns are a new wiring
    assert_agrees(first, abstract(problem, params))
    assert_agrees(second, abstract(problem, other_params))
    assert_agrees(third, abstract(other, params))


def test_wired_gating_drives_spiking_neurons_as_the_weighted_network_does(problem):
    """Same seed, so the same Poisson draws: the two gatings differ only by round-off in the overlaps,
    far below anything that moves a spike (measured: identical spike counts, u within 1e-14)."""
    from astrogate.models.spiking_equations import SpikingParameters

    runs = {gating: brian2(problem, Parameters(), target="numpy", gating=gating, neuron="poisson",
                           spiking=SpikingParameters()) for gating in ("factorised", "wired")}
    weighted, wired = runs["factorised"], runs["wired"]
    np.testing.assert_array_equal(wired["brian2"]["spiking"]["spike_counts"], weighted["brian2"]["spiking"]["spike_counts"])
    np.testing.assert_allclose(wired["u"], weighted["u"], rtol=0, atol=ROUND_OFF * max(1.0, np.max(np.abs(weighted["u"]))))
    np.testing.assert_allclose(wired["g"], weighted["g"], rtol=0, atol=ROUND_OFF)


@pytest.mark.parametrize("threads", [1, 2])
def test_cpp_standalone_sums_the_gating_with_every_thread(problem, tmp_path, threads):
    """The gating sums use network/templates/summed_variable.cpp (code generation only; compiled and run
    against the abstract model in the test below)."""
    from astrogate.network.recall import Brian2Session

    model = AstroGateModel(problem.patterns, Parameters())
    u0, a0 = model.initial_state(problem.cue)
    with Brian2Session("cpp_standalone", gating="wired", build_dir=tmp_path, threads=threads) as session:
        session.run(model.xi, model.params, u0, a0, duration=1.0, stop_after="code")
        code = {p.name: p.read_text() for p in (session.build_path / "code_objects").glob("*summed_variable*.cpp")}
    for synapses in ("overlap", "output", "overlap_total", "output_total", "normaliser", "neural_energy"):
        source = next(text for name, text in code.items() if name.startswith(f"agm_{synapses}_summed_variable"))
        assert "_partial_sums" in source, synapses
        assert ("#pragma omp for" in source) == (threads > 1), synapses


@pytest.mark.parametrize("options, message", [
    (dict(device="runtime", threads=2), "apply to device cpp_standalone only"),
    (dict(device="cpp_standalone", threads=0), "threads must be a whole number >= 1"),
])
def test_bad_thread_counts_are_input_errors(problem, options, message):
    with pytest.raises(InputError, match=message):
        brian2(problem, Parameters(), **options)


@pytest.mark.compile
@pytest.mark.parametrize("gating", ["factorised", "wired"])
def test_cpp_standalone_with_two_threads_matches_abstract_euler(problem, gating, tmp_path):
    """Two threads add the gating sums in another order: round-off only."""
    params = Parameters()
    net = brian2(problem, params, device="cpp_standalone", gating=gating, threads=2, build_dir=tmp_path)
    assert net["brian2"]["threads"] == 2
    assert_agrees(net, abstract(problem, params))
    assert_simplex_and_descent(net)


def test_runtime_session_rebuilds_wired_gating_for_new_patterns(problem):
    from astrogate.network.recall import Brian2Session

    params = Parameters()
    other = generated_problem(K=20, N=30, correlation=0.0, flip=0.1, seed=11)
    with Brian2Session("runtime", "numpy", gating="wired") as session:
        first = recall(problem, params, backend="brian2", duration=DURATION, tol=0.0, session=session)
        again = recall(problem, params.updated(beta=300.0), backend="brian2", duration=DURATION, tol=0.0, session=session)
        new = recall(other, params, backend="brian2", duration=DURATION, tol=0.0, session=session)
    assert again["timings"]["reused_build"] and not new["timings"]["reused_build"]
    assert_agrees(first, abstract(problem, params))
    assert_agrees(again, abstract(problem, params.updated(beta=300.0)))
    assert_agrees(new, abstract(other, params))


def test_a_build_says_when_it_starts_and_how_long_it_took(problem, tmp_path, capsys):
    """Builds that take a while (a standalone project; Cython, in the compiled test below) print their start, what
    they usually take and their duration on stderr; the numpy target, which compiles nothing, prints nothing."""
    import re

    from astrogate.network.recall import Brian2Session

    model = AstroGateModel(problem.patterns, Parameters())
    u0, a0 = model.initial_state(problem.cue)
    with Brian2Session("cpp_standalone", build_dir=tmp_path) as session:
        session.run(model.xi, model.params, u0, a0, duration=1.0, stop_after="code")
    err = capsys.readouterr().err
    assert re.search(r"^astrogate: generating the cpp_standalone project of K = 20, N = 30 in .+ \(code generation: "
                     r"seconds\) \.\.\.\nastrogate: generating .+: done in \d+\.\d s$", err.strip(), flags=re.M), err
    with Brian2Session("runtime", target="numpy") as session:
        session.run(model.xi, model.params, u0, a0, duration=1.0)
    assert capsys.readouterr().err == ""


@pytest.mark.compile
def test_a_cython_build_says_so(problem, capsys):
    brian2(problem, Parameters(), duration=1.0, device="runtime", target="cython")
    err = capsys.readouterr().err
    assert "astrogate: compiling the network's code (K = 20, N = 30) (Cython: 30 to 150 s the first time, then " \
           "cached in" in err and "): done in " in err
