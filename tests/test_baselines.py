"""Each benchmark model on its own: fixed points, known capacities, the NAAM tensor contraction."""

import numpy as np
import pytest

from astrogate.errors import InputError
from astrogate.models.baselines import NeuronAstrocyteMemory, make_model
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


def test_naam_contraction_equals_the_brute_force_tensor():
    rng = np.random.default_rng(10)
    K, N = 3, 6
    xi = rng.choice([-1.0, 1.0], size=(K, N))
    q = rng.normal(size=(2, N, N))
    T = np.einsum("mi,mj,mk,ml->ijkl", xi, xi, xi, xi) / N**3
    brute = np.einsum("ijkl,bkl->bij", T, q)
    assert np.allclose(NeuronAstrocyteMemory(xi).contract(q), brute)


def test_naam_reduces_to_a_dense_memory_beyond_classical_capacity():
    """Its fast-synapse limit is a dense memory with F ~ m^4: it must retrieve where classical Hopfield fails."""
    N = 50
    xi, targets, cues = problem(K=15, N=N, flip=0.1, n_cues=8, seed=11)
    naam = exact_rate(make_model("naam", xi).retrieve(cues).states, xi, targets)
    classical = exact_rate(make_model("hopfield", xi).retrieve(cues).states, xi, targets)
    assert naam >= 7 / 8 and classical <= 0.5, (naam, classical)


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
