"""Attention with separate queries, keys and values (models/attention.py, analysis/attention.py).

The reference softmax attention is written here again, on purpose independently of analysis/attention.py.
Tolerances: query mode stops when max|da/dt|, max|dy/dt| < tol = 1e-10 / ms, so |a - a*| < tau_g tol = 2e-9 and
the gains and outputs are within a few 1e-9 of the fixed point (measured up to 8.5e-10); we assert 1e-8.
"""

import math

import numpy as np
import pytest

from astrogate.analysis.attention import attention
from astrogate.errors import InputError
from astrogate.models.attention import HeteroAssociativeMemory
from astrogate.models.parameters import Parameters
from astrogate.models.patterns import flip_cue, random_patterns


def reference_attention(Q, K, V):
    """softmax(Q K^T / sqrt(d)) V, row by row, with Python's math."""
    d = K.shape[1]
    weights = np.zeros((Q.shape[0], K.shape[0]))
    for t, q in enumerate(Q):
        scores = [sum(q[i] * k[i] for i in range(d)) / math.sqrt(d) for k in K]
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        total = sum(exps)
        weights[t] = [e / total for e in exps]
    return weights, weights @ V


def qkv(T, n, d, D, seed=0, spread=1.0):
    rng = np.random.default_rng(seed)
    return spread * rng.normal(size=(T, d)), spread * rng.normal(size=(n, d)), rng.normal(size=(n, D))


@pytest.mark.parametrize("T, n, d, D", [(3, 5, 4, 2), (7, 12, 9, 5), (2, 30, 16, 11), (5, 1, 3, 4)])
def test_query_mode_equals_softmax_attention(T, n, d, D):
    Q, K, V = qkv(T, n, d, D, seed=T + n, spread=1.5)
    weights, outputs = reference_attention(Q, K, V)
    result = attention(Q, K, V)
    assert result.outputs.shape == (T, D) and result.gains.shape == (T, n)
    assert np.all(result.converged)
    assert np.max(np.abs(result.gains - weights)) < 1e-8
    assert np.max(np.abs(result.outputs - outputs)) < 1e-8
    # the distances the result reports are those to softmax attention
    assert result.output_distance == pytest.approx(np.max(np.abs(result.outputs - outputs)), abs=1e-14)
    assert result.gain_distance < 1e-8


def test_query_mode_is_a_dynamical_system_not_a_formula():
    """Stopped early the network is not yet at softmax attention; run on, it is (and the gains are not uniform)."""
    Q, K, V = qkv(4, 6, 5, 3, seed=2, spread=2.0)
    weights, outputs = reference_attention(Q, K, V)
    early = attention(Q, K, V, duration=20.0, tol=0.0)
    assert not np.any(early.converged)
    assert np.max(np.abs(early.outputs - outputs)) > 1e-2
    assert np.max(np.abs(attention(Q, K, V).outputs - outputs)) < 1e-8
    assert np.max(weights) > 2.0 / K.shape[0]


def test_other_scale_similarity_and_kappa_v():
    Q, K, V = qkv(3, 8, 6, 4, seed=5)
    weights, _ = reference_attention(2.0 * Q, K, V)  # scale 2/sqrt(d)
    result = attention(Q, K, V, scale=2.0 / math.sqrt(6), kappa_v=3.0)
    assert np.max(np.abs(result.gains - weights)) < 1e-8
    assert np.max(np.abs(result.outputs - 3.0 * weights @ V)) < 1e-7
    # F quadratic: the gains are softmax(beta m^2 / 2), m = K q / d, beta = scale d: not softmax attention
    quadratic = attention(Q, K, V, similarity="quadratic")
    m = Q @ K.T / 6
    logits = math.sqrt(6) * m**2 / 2
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    assert np.max(np.abs(quadratic.gains - expected)) < 1e-8
    assert quadratic.gain_distance > 1e-3


def test_retrieval_mode_cleans_corrupted_queries_and_routes_their_values():
    rng = np.random.default_rng(4)
    K = random_patterns(40, 64, rng, correlation=0.3)
    V = rng.choice([-1.0, 1.0], size=(40, 12))
    targets = np.arange(0, 40, 5)
    Q = flip_cue(K[targets], 0.2, rng)
    result = attention(Q, K, V, mode="retrieval")
    assert np.all(result.converged)
    np.testing.assert_array_equal(np.argmax(result.gains, axis=1), targets)
    np.testing.assert_array_equal(np.sign(result.outputs), V[targets])  # the value itself, not a blend
    # one-shot softmax attention on the same queries blends the values
    assert np.max(np.abs(result.reference_outputs - V[targets])) > 0.1


def test_exported_at_the_root_without_brian2():
    import subprocess
    import sys

    import astrogate as ag

    assert ag.attention is attention
    code = ("import sys, numpy as np, astrogate as ag; r = ag.attention(np.ones((2, 3)), np.eye(3), np.eye(3)); "
            "print(isinstance(r, ag.AttentionResult), 'brian2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]


# -- the Lyapunov function ---------------------------------------------------------------------------------
def increases(energy):
    """Largest step-to-step increase of L, relative to its size (round-off is ~1e-15)."""
    scale = max(1.0, float(np.max(np.abs(energy))))
    return float(np.max(np.diff(energy, axis=0))) / scale


@pytest.mark.parametrize("similarity, tau_y, spread", [("linear", 10.0, 1.0), ("quadratic", 50.0, 3.0),
                                                       ("power:3", 5.0, 2.0)])
def test_lyapunov_never_increases_in_query_mode(similarity, tau_y, spread):
    Q, K, V = qkv(4, 9, 6, 5, seed=7, spread=spread)
    memory = HeteroAssociativeMemory(K, 10 * V, Parameters(similarity=similarity, beta=6.0), tau_y=tau_y)
    run = memory.run(Q, duration=300.0, tol=0.0, record_every=0.1)  # every step
    assert run.energy.shape == (3001, 4)
    assert increases(run.energy) < 1e-12
    assert np.all(run.energy[-1] < run.energy[0] - 1e-3)  # it does descend


def test_lyapunov_never_increases_in_retrieval_mode():
    rng = np.random.default_rng(8)
    K = random_patterns(30, 40, rng, correlation=0.4)
    V = 5 * rng.normal(size=(30, 6))
    Q = flip_cue(K[:5], 0.25, rng)
    memory = HeteroAssociativeMemory(K, V, Parameters())
    run = memory.run(Q, mode="retrieval", duration=200.0, tol=0.0, record_every=0.1)
    assert increases(run.energy) < 1e-12
    assert np.all(run.energy[-1] < run.energy[0])


def test_the_value_term_needs_its_weight():
    """L_key alone never increases but ignores y; with the derived weight c the value term keeps L a Lyapunov
    function, while a weight that ignores the size of the values (1) lets L rise: the gains pull the values
    away from their target faster than L_key falls. Values with zero mean start y = 0 at its target."""
    Q, K, V = qkv(5, 7, 4, 3, seed=0)
    V = 100 * (V - V.mean(axis=0))
    memory = HeteroAssociativeMemory(K, V, Parameters(similarity="linear", beta=2.0))
    derived = memory.run(Q, duration=300.0, tol=0.0, record_every=0.1)
    assert increases(derived.energy) < 1e-12
    naive = memory.run(Q, duration=300.0, tol=0.0, record_every=0.1, value_weight=1.0)
    assert increases(naive.energy) > 1e-3
    # the rise is in the value term: L_key alone falls along the same trajectory
    key_only = memory.astrocyte_energy(np.log(naive.gain_trace), memory.query_overlaps(Q))
    assert increases(key_only) < 1e-12


# -- bad input ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("change, message", [
    (lambda Q, K, V: (Q, K, V[:-1]), "keys have n = 6 rows, values have 5"),
    (lambda Q, K, V: (Q[:, :-1], K, V), "queries have width 3 but keys have d = 4"),
    (lambda Q, K, V: (np.where(Q > 0.5, np.nan, Q), K, V), "queries: contains NaN or inf"),
    (lambda Q, K, V: (Q, np.where(K > 0.5, np.inf, K), V), "keys: contains NaN or inf"),
    (lambda Q, K, V: (Q, K, V[:, 0]), "values: expected a n x D matrix"),
    (lambda Q, K, V: (Q, K[:0], V[:0]), "keys: is empty"),
    (lambda Q, K, V: ("abc", K, V), "queries: not a numeric array"),
])
def test_bad_input_is_one_line(change, message):
    Q, K, V = qkv(2, 6, 4, 3, seed=1)
    with pytest.raises(InputError) as info:
        attention(*change(Q, K, V))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("options, message", [
    (dict(mode="keys"), "unknown mode"), (dict(backend="gpu"), "unknown backend"),
    (dict(scale=-1.0), "scale must be a positive number"), (dict(scale=float("nan")), "scale must be"),
    (dict(kappa_v=float("inf")), "kappa_v must be a finite number"), (dict(tau_y=0.0), "tau_y must be a positive number"),
    (dict(mode="retrieval", backend="brian2", layout="per_query"), "layout applies to query mode"),
    (dict(target="numpy"), "options of the Brian2 backend"), (dict(similarity="cubic"), "unknown similarity"),
])
def test_bad_options_are_one_line(options, message):
    Q, K, V = qkv(2, 6, 4, 3, seed=1)
    with pytest.raises(InputError, match=message):
        attention(Q, K, V, **options)


def test_attention_settings_are_one_object_checked_once_and_keywords_change_it():
    import astrogate as ag

    rng = np.random.default_rng(0)
    Q, K, V = rng.normal(size=(2, 4)), rng.normal(size=(5, 4)), rng.normal(size=(5, 3))
    settings = ag.AttentionSettings(scale=0.3, tol=1e-9)
    by_object = ag.attention(Q, K, V, settings=settings)
    by_keyword = ag.attention(Q, K, V, scale=0.3, tol=1e-9)
    assert np.array_equal(by_object.outputs, by_keyword.outputs) and by_object.scale == 0.3
    assert not np.array_equal(ag.attention(Q, K, V, settings=settings, scale=0.6).outputs, by_object.outputs)
    with pytest.raises(ag.InputError, match="scale must be > 0|scale"):
        ag.AttentionSettings(scale=-1.0)
    with pytest.raises(ag.InputError, match="unknown attention setting.*: temperature"):
        ag.attention(Q, K, V, temperature=2.0)
