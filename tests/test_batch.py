"""Many memories in one Brian2 network: a batch of B independent copies of AstrocyteGatedMemory."""

import os

import numpy as np
import pytest

from astrogate.errors import InputError
from astrogate.models.abstract import AstroGateModel
from astrogate.models.parameters import Parameters
from astrogate.models.patterns import flip_cue, random_patterns

pytestmark = pytest.mark.brian2

STEPS = 40  # 4 ms at dt = 0.1 ms: the gains commit
B, K, N = 5, 6, 20
BETA = np.array([10.0, 25.0, 40.0, 60.0, 120.0])  # per copy
TAU_G = np.array([8.0, 12.0, 20.0, 30.0, 45.0])  # ms, per copy


def batch_problem(seed, copies=B, K=K, N=N):
    """Different pattern sets and cues, one per copy."""
    rng = np.random.default_rng(seed)
    xi = np.stack([random_patterns(K, N, rng) for _ in range(copies)])
    cues = np.stack([flip_cue(xi[b, b % K], 0.2, rng) for b in range(copies)])
    return xi, cues


def copy_params(b, beta=BETA, tau_g=TAU_G):
    return Parameters().updated(beta=beta[b], tau_g=tau_g[b])


def abstract_euler(xi, cue, params, steps=STEPS):
    model = AstroGateModel(xi, params)
    u, a = model.initial_state(cue)
    for _ in range(steps):
        du, da = model.derivatives(u, a)
        u, a = u + model.params.dt * du, a + model.params.dt * da
    return model, u, a


def assert_copy_matches_abstract(state, b, xi, cue, params, tol=1e-9):
    model, u, a = abstract_euler(xi, cue, params)
    np.testing.assert_allclose(state["u"][b], u, rtol=0, atol=tol)
    np.testing.assert_allclose(state["a"][b], a, rtol=0, atol=tol * max(1.0, np.max(np.abs(a))))
    np.testing.assert_allclose(state["g"][b], model.gains(a), rtol=0, atol=tol)
    np.testing.assert_allclose(state["m"][b], model.overlaps(model.rates(u)), rtol=0, atol=tol)


def run_batch(xi, cues, gating="factorised", steps=STEPS, **options):
    import brian2 as b2

    from astrogate.network.memory import AstrocyteGatedMemory

    mem = AstrocyteGatedMemory(xi, Parameters(), gating=gating, **options)
    mem.set_cue(cues)
    b2.Network(mem).run(steps * mem.params.dt * b2.ms)
    return mem


@pytest.mark.parametrize("gating", ["factorised", "wired", "dense"])
def test_each_copy_equals_abstract_euler_and_the_memory_run_alone(gating):
    import brian2 as b2

    from astrogate.network.memory import AstrocyteGatedMemory

    b2.prefs.codegen.target = "numpy"
    xi, cues = batch_problem(1)
    mem = run_batch(xi, cues, gating, beta=BETA, tau_g=TAU_G * b2.ms)
    state = mem.state()
    assert state["u"].shape == (B, N) and state["g"].shape == (B, K)
    for b in range(B):
        assert_copy_matches_abstract(state, b, xi[b], cues[b], copy_params(b))
        alone = AstrocyteGatedMemory(xi[b], copy_params(b), gating=gating)
        alone.set_cue(cues[b])
        b2.Network(alone).run(STEPS * alone.params.dt * b2.ms)
        # the same equations; only round-off differs: one memory's parameters are shared variables, so Brian2
        # hoists loop-invariant terms such as dt/tau_u out of the loop, which a batch's per-element ones are not
        for name, value in alone.state().items():
            np.testing.assert_allclose(state[name][b], value, rtol=0, atol=1e-12 * max(1.0, np.max(np.abs(value))),
                                       err_msg=f"copy {b}: {name}")
        # the hub's sums (normaliser, Lyapunov function) are per copy
        for name in ("Z", "lse", "L"):
            np.testing.assert_allclose(getattr(mem.hub, name)[b], getattr(alone.hub, name)[0], rtol=1e-12,
                                       err_msg=f"copy {b}: hub {name}")


def test_changing_one_copy_leaves_the_others_bit_for_bit_unchanged():
    import brian2 as b2

    b2.prefs.codegen.target = "numpy"
    xi, cues = batch_problem(2)
    first = run_batch(xi, cues, beta=BETA, tau_g=TAU_G).state()
    other_xi, other_cues = batch_problem(3)
    changed_xi, changed_cues = xi.copy(), cues.copy()
    changed_xi[2], changed_cues[4] = other_xi[2], other_cues[4]
    second = run_batch(changed_xi, changed_cues, beta=BETA, tau_g=TAU_G).state()
    for b in range(B):
        same = b not in (2, 4)
        assert np.array_equal(first["u"][b], second["u"][b]) == same, b
        assert np.array_equal(first["a"][b], second["a"][b]) == same, b
    # and one copy's parameter
    beta = BETA.copy()
    beta[0] *= 2
    third = run_batch(xi, cues, beta=beta, tau_g=TAU_G).state()
    assert not np.array_equal(first["a"][0], third["a"][0])
    for b in range(1, B):
        np.testing.assert_array_equal(first["a"][b], third["a"][b])
        np.testing.assert_array_equal(first["u"][b], third["u"][b])


def test_copies_are_not_connected_across_copies():
    """Every synapse joins two elements of one copy; every hub sum goes to the copy's own element."""
    import brian2 as b2

    b2.prefs.codegen.target = "numpy"
    xi, cues = batch_problem(4)
    for gating in ("factorised", "wired"):
        mem = run_batch(xi, cues, gating, steps=1)
        copy = {mem.neurons.name: mem.neurons.copy[:], mem.astrocytes.name: mem.astrocytes.copy[:],
                mem.hub.name: np.arange(B)}
        for syn in mem.synapses.values():
            pre = copy[syn.source.name][syn.i[:]]
            post = copy[syn.target.name][syn.j[:]]
            assert len(pre) > 0 and np.array_equal(pre, post), syn.name
        assert len(mem.synapses["overlap"]) == (B * K * N if gating == "factorised" else np.sum(xi > 0))


def test_spiking_copies_draw_independent_numbers_and_a_seed_reproduces_the_batch():
    import brian2 as b2

    b2.prefs.codegen.target = "numpy"
    xi, cues = batch_problem(5, copies=3)
    xi[1], cues[1] = xi[0], cues[0]  # copies 0 and 1: the same problem
    states = []
    for _ in range(2):
        b2.seed(7)
        mem = run_batch(xi, cues, neuron="poisson", steps=200, nu_max=500, seed=7)
        states.append(mem.state())
    assert not np.array_equal(states[0]["u"][0], states[0]["u"][1])  # their own Poisson draws
    for name in ("u", "a", "v"):
        np.testing.assert_array_equal(states[0][name], states[1][name])


def test_lif_batch_copy_zero_equals_the_memory_alone():
    """LIF neurons are deterministic once their initial phases are drawn; copy 0 draws the same phases as the
    memory alone (the seed's first N numbers)."""
    import brian2 as b2

    from astrogate.network.memory import AstrocyteGatedMemory

    b2.prefs.codegen.target = "numpy"
    xi, cues = batch_problem(6, copies=3)
    batch = run_batch(xi, cues, neuron="lif", steps=100).state()
    alone = AstrocyteGatedMemory(xi[0], Parameters(), neuron="lif")
    alone.set_cue(cues[0])
    b2.Network(alone).run(100 * alone.params.dt * b2.ms)
    for name, value in alone.state().items():  # round-off as in test_each_copy_equals_... (spike times equal)
        np.testing.assert_allclose(batch[name][0], value, rtol=0, atol=1e-9 * max(1.0, np.max(np.abs(value))),
                                   err_msg=name)


@pytest.mark.parametrize("make, message", [
    (lambda xi: dict(patterns=[xi[0], xi[1][:-1]]), "ragged batch"),
    (lambda xi: dict(patterns=np.zeros((0, K, N))), "B = 0"),
    (lambda xi: dict(patterns=xi, beta=BETA[:3]), "beta: expected one value per copy (length B = 5), got shape (3,)"),
    (lambda xi: dict(patterns=xi, tau_g=np.ones((B, 2))), "tau_g: expected one value per copy"),
    (lambda xi: dict(patterns=xi[0], beta=BETA), "beta: one value per copy needs a batch"),
    (lambda xi: dict(patterns=xi, dt=np.full(B, 0.1)), "dt is compiled into the network"),
    (lambda xi: dict(patterns=np.broadcast_to(xi[0], (10**7, K, N))), "of memory (estimated before allocating)"),
])
def test_bad_batches_are_one_line_errors(make, message):
    from astrogate.network.memory import AstrocyteGatedMemory

    xi, _ = batch_problem(7)
    kwargs = make(xi)
    with pytest.raises(InputError) as info:
        AstrocyteGatedMemory(kwargs.pop("patterns"), **kwargs)
    text = str(info.value)
    assert message in text and "\n" not in text, text
    if "memory" in message:
        assert "B = 10000000" in text and "GiB" in text


def test_bad_cues_and_state_values_of_a_batch():
    from astrogate.network.memory import AstrocyteGatedMemory

    xi, cues = batch_problem(8)
    mem = AstrocyteGatedMemory(xi)
    for bad, message in ((cues[0], "one cue per copy, B x N = 5 x 20"), (cues[:3], "one cue per copy")):
        with pytest.raises(InputError, match=message):
            mem.set_cue(bad)
    with pytest.raises(InputError, match="built for B x K x N = 5 x 6 x 20"):
        mem.state_values(xi[:4], cues[:4])
    with pytest.raises(InputError, match="a sequence of B = 5 Parameters"):
        mem.state_values(xi, cues, params=[Parameters()] * 4)


@pytest.mark.compile
def test_cpp_standalone_batch_run_args_change_parameters_and_patterns_without_recompiling(tmp_path):
    """One cpp_standalone build of B = 5 copies; run_args give every copy new patterns, cues and parameters;
    each run's copies equal the abstract model's forward Euler, and the binary is not rebuilt."""
    import brian2 as b2

    from astrogate.network import devices
    from astrogate.network.memory import AstrocyteGatedMemory

    params = Parameters()
    devices.activate(devices.DeviceChoice("cpp_standalone", build_root=tmp_path), params.dt)
    xi, cues = batch_problem(9)
    mem = AstrocyteGatedMemory(xi, params, beta=BETA, tau_g=TAU_G)
    mem.set_cue(cues)
    b2.Network(mem).run(STEPS * params.dt * b2.ms)
    project = tmp_path / "project"
    b2.device.build(directory=str(project), compile=True, run=False, with_output=False)
    binary = project / "main"
    built = os.stat(binary).st_mtime_ns
    b2.device.run(directory=str(project), with_output=False, results_directory="first")
    state = mem.state()
    for b in range(B):
        assert_copy_matches_abstract(state, b, xi[b], cues[b], copy_params(b))
    # a whole new batch of patterns and cues, and new per-copy beta and tau_g
    other, other_cues = batch_problem(10)
    beta, tau_g = BETA[::-1] * 1.5, TAU_G[::-1]
    per_copy = [copy_params(b, beta, tau_g) for b in range(B)]
    u0 = np.stack([p.cue_scale * c for p, c in zip(per_copy, other_cues)])
    values = mem.state_values(other, u0, params=per_copy)
    b2.device.run(directory=str(project), with_output=False, results_directory="second",
                  run_args=mem.run_args(values))
    assert os.stat(binary).st_mtime_ns == built  # re-run, not rebuilt
    assert np.array_equal(mem.network_patterns(), other)
    state = mem.state()
    for b in range(B):
        assert_copy_matches_abstract(state, b, other[b], other_cues[b], per_copy[b])


def test_recall_batch_equals_recall_of_each_problem_alone():
    """One network of B copies gives each problem the record `recall(problem, backend="brian2")` gives it alone."""
    import astrogate as ag

    problems = [ag.generated_problem(K=K, N=N, seed=seed, flip=0.2) for seed in range(4)]
    beta = BETA[:4]
    results = ag.recall_batch(problems, duration=STEPS * 0.1, tol=0, target="numpy", record_every=0.5, beta=beta)
    assert len(results) == 4
    for b, (problem, batched) in enumerate(zip(problems, results)):
        alone = ag.recall(problem, backend="brian2", duration=STEPS * 0.1, tol=0, target="numpy", record_every=0.5,
                          beta=beta[b])
        for key in ("u", "a"):
            np.testing.assert_allclose(batched[key], alone[key], rtol=0, atol=1e-12)
        np.testing.assert_allclose(batched["gain_trace"], alone["gain_trace"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(batched["energy"], alone["energy"], rtol=1e-12)
        assert batched.retrieved == alone.retrieved and batched["t"].tolist() == alone["t"].tolist()
        assert batched["timings"]["batch"] == 4


def test_recall_batch_refuses_mixed_sizes_and_wrong_lengths():
    import astrogate as ag

    problems = [ag.generated_problem(K=K, N=N, seed=0), ag.generated_problem(K=K + 1, N=N, seed=1)]
    with pytest.raises(InputError, match="one network holds problems of one K x N"):
        ag.recall_batch(problems)
    with pytest.raises(InputError, match="beta: expected one value, or one per problem"):
        ag.recall_batch(problems[:1] * 3, beta=[1.0, 2.0])


def cuda_batch_project(tmp_path, compile: bool):
    """A batch of B = 5 copies (wired and factorised gating) as one cuda_standalone project; no GPU is needed to
    generate and compile it."""
    pytest.importorskip("brian2cuda", reason="the cuda extra is not installed")
    import brian2 as b2

    from astrogate.network import devices
    from astrogate.network.memory import AstrocyteGatedMemory

    build = devices.activate(devices.DeviceChoice("cuda_standalone", build_root=tmp_path, compute_capability=8.0),
                             0.1)
    xi, cues = batch_problem(11)
    factorised = AstrocyteGatedMemory(xi, beta=BETA, tau_g=TAU_G)
    wired = AstrocyteGatedMemory(xi, gating="wired", beta=BETA)
    factorised.set_cue(cues)
    wired.set_cue(cues)
    b2.Network(factorised, wired).run(1 * b2.ms)
    b2.device.build(directory=str(build), compile=compile, run=False, with_output=False)
    return build, factorised, wired


def test_cuda_standalone_generates_a_batch(tmp_path):
    build, factorised, wired = cuda_batch_project(tmp_path, compile=False)
    header = (build / "objects.h").read_text()
    for mem in (factorised, wired):
        assert f"{mem.name}_overlap" in header and f"{mem.name}_normaliser" in header
    # the per-copy parameters are arrays of the groups (run_args can set them), not constants
    assert f"_array_{factorised.name}_astrocytes_beta" in header and f"_array_{factorised.name}_neurons_gamma" in header


@pytest.mark.nvcc
def test_cuda_standalone_batch_compiles_with_nvcc(tmp_path):
    build, _, _ = cuda_batch_project(tmp_path, compile=True)
    assert (build / "main").stat().st_size > 100_000
