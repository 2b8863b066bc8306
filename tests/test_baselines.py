"""Each benchmark model on its own: fixed points, known capacities, the NAAM tensor contraction."""

import numpy as np
import pytest

from astrogate.errors import InputError
from astrogate.models.baselines import NaamState, NeuronAstrocyteMemory, make_model
from astrogate.models.patterns import flip_cue, random_patterns

LOW_LOAD_MODELS = [
    ("oracle", {}),
    ("hopfield", {}),
    ("hopfield-continuous", {}),
    ("dense", {"power": 3}),
    ("dense", {"power": 4}),
    ("dense", {"power": "exp"}),
    ("modern", {"beta": 1.0}),
    ("modern", {"beta": 1.0, "iterate": True}),
    ("naam", {}),
    ("gated", {}),
]


def exact_rate(states, patterns, targets):
    return float(np.mean(np.all(states == patterns[targets], axis=1)))


def problem(K, N, flip, n_cues, seed, correlation=0.0):
    rng = np.random.default_rng(seed)
    xi = random_patterns(K, N, rng, correlation)
    targets = rng.choice(K, size=n_cues, replace=n_cues > K)
    return xi, targets, flip_cue(xi[targets], flip, rng)


@pytest.mark.parametrize("kind,options", LOW_LOAD_MODELS, ids=lambda x: str(x))
def test_stored_patterns_are_fixed_points_at_low_load(kind, options):
    xi, _, _ = problem(K=3, N=48, flip=0.0, n_cues=1, seed=1)
    result = make_model(kind, xi, **options).retrieve(xi)
    assert np.array_equal(result.states, xi)
    assert result.converged.all()


@pytest.mark.parametrize("kind,options", LOW_LOAD_MODELS, ids=lambda x: str(x))
def test_every_model_retrieves_from_flipped_cues_at_low_load(kind, options):
    xi, targets, cues = problem(K=4, N=64, flip=0.15, n_cues=8, seed=2)
    result = make_model(kind, xi, **options).retrieve(cues)
    assert exact_rate(result.states, xi, targets) >= 7 / 8
    assert result.states.shape == cues.shape and result.steps.shape == result.converged.shape == (8,)


def test_cue_reference_returns_the_cue():
    xi, _, cues = problem(K=4, N=32, flip=0.2, n_cues=5, seed=3)
    assert np.array_equal(make_model("cue", xi).retrieve(cues).states, cues)


def test_classical_hopfield_capacity_0138():
    """iid patterns, N = 300, 10 % flipped bits: retrieval nearly always at K/N = 0.05, mostly fails at 0.3
    (the capacity is about 0.138 N; beyond it retrieval states carry errors or are lost)."""
    N = 300
    xi, targets, cues = problem(K=15, N=N, flip=0.1, n_cues=40, seed=4)
    assert exact_rate(make_model("hopfield", xi, seed=0).retrieve(cues).states, xi, targets) >= 0.9
    xi, targets, cues = problem(K=90, N=N, flip=0.1, n_cues=40, seed=5)
    assert exact_rate(make_model("hopfield", xi, seed=0).retrieve(cues).states, xi, targets) <= 0.2


def test_classical_hopfield_error_free_storage_near_N_over_2lnN():
    """Stored patterns are exact fixed points far below N / (2 ln N) and rarely far above it."""
    N = 200
    limit = N / (2 * np.log(N))  # about 19
    for K, bound in ((int(limit / 2), "high"), (int(3 * limit), "low")):
        xi, _, _ = problem(K=K, N=N, flip=0.0, n_cues=1, seed=6)
        model = make_model("hopfield", xi, max_sweeps=1)
        stable = exact_rate(model.retrieve(xi).states, xi, np.arange(K))
        assert stable >= 0.95 if bound == "high" else stable <= 0.5, (K, stable)


def test_modern_hopfield_one_step_retrieves_at_high_beta_beyond_classical_capacity():
    N = 100
    xi, targets, cues = problem(K=2 * N, N=N, flip=0.2, n_cues=24, seed=7)
    one_step = make_model("modern", xi, beta=64.0 / N).retrieve(cues)
    assert exact_rate(one_step.states, xi, targets) >= 0.95
    assert np.all(one_step.steps == 1)
    low_beta = make_model("modern", xi, beta=0.5 / N).retrieve(cues)  # a blur of all patterns
    assert exact_rate(low_beta.states, xi, targets) <= 0.1


def test_dense_memory_n3_stores_more_than_classical():
    N = 100
    xi, targets, cues = problem(K=30, N=N, flip=0.1, n_cues=24, seed=8)
    dense = exact_rate(make_model("dense", xi, power=3).retrieve(cues).states, xi, targets)
    classical = exact_rate(make_model("hopfield", xi).retrieve(cues).states, xi, targets)
    assert dense >= 0.9 and classical <= 0.3, (dense, classical)


def test_exponential_dense_memory_does_not_overflow_at_large_N():
    xi, targets, cues = problem(K=20, N=800, flip=0.3, n_cues=4, seed=9)
    with np.errstate(over="raise", invalid="raise"):
        states = make_model("dense", xi, power="exp").retrieve(cues).states
    assert exact_rate(states, xi, targets) == 1.0


def explicit_T(xi):
    """T_ijkl = sum_mu xi_mu,i xi_mu,j xi_mu,k xi_mu,l / N^3, built (N^4 entries: small N only)."""
    return np.einsum("mi,mj,mk,ml->ijkl", xi, xi, xi, xi) / xi.shape[1] ** 3


def test_naam_contraction_equals_the_brute_force_tensor():
    rng = np.random.default_rng(10)
    K, N = 3, 6
    xi = rng.choice([-1.0, 1.0], size=(K, N))
    q = rng.normal(size=(2, N, N))
    brute = np.einsum("ijkl,bkl->bij", explicit_T(xi), q)
    assert np.allclose(NeuronAstrocyteMemory(xi).contract(q), brute, rtol=1e-12, atol=1e-15)


def test_naam_batched_step_equals_the_step_with_T_built():
    """One euler_step on a batch of arbitrary (not symmetric) states = the equations with T built, per cue."""
    rng = np.random.default_rng(3)
    B, K, N = 3, 4, 9
    xi = rng.choice([-1.0, 1.0], size=(K, N))
    model = NeuronAstrocyteMemory(xi)
    state = NaamState(x=rng.normal(size=(B, N)), S=0.3 * rng.normal(size=(B, N, N)), P=0.3 * rng.normal(size=(B, N, N)))
    T, b, dt = explicit_T(xi), 5.0, 0.05
    want = []
    for x, S, P in zip(state.x, state.S, state.P):
        h, g, psi = np.tanh(b * x), np.tanh(b * S), np.tanh(b * P)
        want.append((x + dt * (-x + g @ h), S + dt * (-S + np.outer(h, h) + psi),
                     P + dt * (-P + np.einsum("ijkl,kl->ij", T, psi) + g)))
    model.euler_step(state)
    for c, (x, S, P) in enumerate(want):
        for got, expected in ((state.x[c], x), (state.S[c], S), (state.P[c], P)):
            assert np.allclose(got, expected, rtol=1e-12, atol=1e-12)


def forward_euler_from_the_equations(xi, cue, steps, b=5.0, dt=0.05):
    """The NAAM equations for one cue, written out with T built (Kozachkov, Slotine & Krotov's notebook)."""
    T = explicit_T(xi)
    x = cue.astype(float).copy()
    h0 = np.tanh(b * x)
    P = np.arctanh(-np.outer(h0, h0)) / b
    S = np.arctanh(np.einsum("ijkl,kl->ij", T, np.outer(h0, h0))) / b
    for _ in range(steps):
        h, g, psi = np.tanh(b * x), np.tanh(b * S), np.tanh(b * P)
        x, S, P = (x + dt * (-x + g @ h), S + dt * (-S + np.outer(h, h) + psi),
                   P + dt * (-P + np.einsum("ijkl,kl->ij", T, psi) + g))
    return x


def test_naam_integrate_equals_an_independent_forward_euler():
    rng = np.random.default_rng(5)
    K, N = 3, 12
    xi = rng.choice([-1.0, 1.0], size=(K, N))
    cues = flip_cue(xi[[0, 2]], 0.25, rng)
    cues[1, :2] = 0.0  # masked entries (cue 0) too
    got = NeuronAstrocyteMemory(xi, steps=400).integrate(cues)
    for cue, x in zip(cues, got):
        want = forward_euler_from_the_equations(xi, cue, 400)
        assert np.max(np.abs(x - want)) <= 1e-9 * np.max(np.abs(want))
    assert not np.allclose(got, cues)  # the states moved: the comparison is not of the initial state


def test_naam_batches_in_chunks_with_the_same_result(monkeypatch):
    """A batch bigger than NAAM_BATCH_BYTES runs in chunks; chunking does not change any cue's result."""
    import astrogate.models.baselines as baselines

    xi, targets, cues = problem(K=4, N=20, flip=0.2, n_cues=5, seed=8)
    model = NeuronAstrocyteMemory(xi, steps=50)
    whole = model.integrate(cues)
    monkeypatch.setattr(baselines, "NAAM_BATCH_BYTES", 2 * model.bytes_per_cue())
    assert model.batch_size() == 2
    assert np.array_equal(model.integrate(cues), whole)


def test_naam_cue_with_an_undefined_initial_state_is_undecided_not_guessed():
    """S(0) = artanh(T:(h0 h0^T) / N^3) / b needs |T:(h0 h0^T)| / N^3 < 1: many near-identical patterns break it."""
    rng = np.random.default_rng(2)
    N = 10
    parent = rng.choice([-1.0, 1.0], size=N)
    xi = np.tile(parent, (3 * N, 1))
    xi[np.arange(3 * N), rng.integers(N, size=3 * N)] *= -1  # 30 patterns, each one bit from the parent
    cues = np.stack([parent, xi[0]])
    result = NeuronAstrocyteMemory(xi).retrieve(cues)
    assert np.all(result.states == 0) and not result.converged.any() and np.all(result.steps == 0)
    assert np.isnan(NeuronAstrocyteMemory(xi).integrate(cues)).all()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_naam_retrieves_the_authors_demonstration(seed):
    """The notebook's defaults: N = 500, K = 10 random +-1 memories, each entry of a memory flipped with
    probability 0.1, b = 5, dt = 0.05, 1000 steps: retrieval is exact (their notebook: final distance 0)."""
    rng = np.random.default_rng(seed)
    xi = random_patterns(10, 500, rng)
    targets = np.array([2, 7])
    cues = xi[targets] * np.where(rng.random((2, 500)) < 0.1, -1.0, 1.0)
    result = NeuronAstrocyteMemory(xi).retrieve(cues)
    assert np.array_equal(result.states, xi[targets]) and result.converged.all()
    assert np.sum(cues != xi[targets]) > 50  # about 10 % of 1000 entries were flipped


def test_naam_retrieves_beyond_classical_capacity():
    """Its dense-memory-like coupling T (fourth order in the patterns) retrieves where classical Hopfield fails."""
    N = 50
    xi, targets, cues = problem(K=15, N=N, flip=0.1, n_cues=8, seed=11)
    naam = exact_rate(make_model("naam", xi).retrieve(cues).states, xi, targets)
    classical = exact_rate(make_model("hopfield", xi).retrieve(cues).states, xi, targets)
    assert naam >= 7 / 8 and classical <= 0.5, (naam, classical)


@pytest.mark.parametrize("options, message", [
    ({"b": 0.0}, "gain b must be a positive number"),
    ({"dt": -0.1}, "dt must be a positive number"),
    ({"steps": 0}, "steps must be a positive integer"),
    ({"steps": 2.5}, "steps must be a positive integer"),
])
def test_naam_bad_options_are_input_errors(options, message):
    with pytest.raises(InputError, match=message):
        NeuronAstrocyteMemory(np.ones((2, 4)), **options)


def test_gated_network_retrieves_far_beyond_classical_capacity():
    N = 64
    xi, targets, cues = problem(K=2 * N, N=N, flip=0.2, n_cues=8, seed=12)
    result = make_model("gated", xi).retrieve(cues)
    assert exact_rate(result.states, xi, targets) >= 7 / 8
    assert result.converged.all() and np.all(result.steps > 0)


def test_gated_fast_and_reference_settings_retrieve_alike_and_say_which_rule_stopped_each_cue():
    N = 64
    xi, targets, cues = problem(K=2 * N, N=N, flip=0.2, n_cues=8, seed=12)
    fast_model, reference_model = make_model("gated", xi), make_model("gated", xi, settings="reference")
    fast, reference = fast_model.retrieve(cues), reference_model.retrieve(cues)
    assert fast_model.settings.stop == "decided" and reference_model.settings.method == "euler"
    np.testing.assert_array_equal(fast.states, reference.states)
    assert set(fast_model.last_stop_rules) == {"decided"}
    assert set(reference_model.last_stop_rules) <= {"fixed point", "time limit"}
    assert fast.steps.max() < reference.steps.min() / 20
    # a model's own dt is its step, whatever the preset's; single fields of the preset can be changed
    changed = make_model("gated", xi, settings="fast", dt=0.05, dtype="float64")
    assert changed.settings.dt == 0.05 and changed.model.params.dt == 0.05 and changed.settings.dtype == "float64"
    with pytest.raises(InputError, match="unknown run settings 'quick'"):
        make_model("gated", xi, settings="quick")


def test_masked_cues_are_completed():
    rng = np.random.default_rng(13)
    xi = random_patterns(5, 80, rng)
    cues = xi.copy()
    cues[:, :30] = 0.0
    for kind, options in (("hopfield", {}), ("dense", {"power": 3}), ("modern", {"beta": 1.0}), ("gated", {})):
        assert np.array_equal(make_model(kind, xi, **options).retrieve(cues).states, xi), kind


def test_bad_model_requests_are_input_errors():
    xi = np.ones((2, 4))
    with pytest.raises(InputError, match="unknown model kind"):
        make_model("boltzmann", xi)
    with pytest.raises(InputError, match="power"):
        make_model("dense", xi, power=1)
    with pytest.raises(InputError, match="temperature|unexpected keyword"):
        make_model("hopfield", xi, temperature=2.0)
    with pytest.raises(InputError, match="unknown parameter"):
        make_model("gated", xi, temperature=2.0)
