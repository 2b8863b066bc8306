"""Query-mode attention as a Brian2 network (network/attention.py).

Tolerances: a network step is one Euler step of HeteroAssociativeMemory.run computed from the same state in the
same order, so at a fixed duration the two agree to round-off (measured 1e-16; asserted 1e-12). Run to
convergence (checked every `chunk` ms) the network is within 2.3e-10 of softmax attention (measured); asserted 1e-6.
"""

import math

import numpy as np
import pytest

from astrogate.analysis.attention import attention
from astrogate.errors import InputError

pytestmark = pytest.mark.brian2


def reference_attention(Q, K, V):
    scores = Q @ K.T / math.sqrt(K.shape[1])
    weights = np.exp(scores - scores.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    return weights, weights @ V


def qkv(T, n, d, D, seed=0):
    rng = np.random.default_rng(seed)
    return 1.5 * rng.normal(size=(T, d)), 1.5 * rng.normal(size=(n, d)), rng.normal(size=(n, D))


@pytest.mark.parametrize("T, n, d, D, layout", [(3, 5, 4, 2, "batched"), (4, 9, 6, 3, "batched"),
                                                (2, 7, 3, 5, "per_query")])
def test_brian2_query_mode_equals_softmax_attention(T, n, d, D, layout):
    Q, K, V = qkv(T, n, d, D, seed=n)
    weights, outputs = reference_attention(Q, K, V)
    result = attention(Q, K, V, backend="brian2", target="numpy", layout=layout)
    assert np.all(result.converged)
    assert result.outputs.shape == (T, D) and result.gains.shape == (T, n)
    assert np.max(np.abs(result.gains - weights)) < 1e-6
    assert np.max(np.abs(result.outputs - outputs)) < 1e-6
    assert result.extra["layout"] == layout


def test_brian2_steps_are_the_abstract_model_steps():
    Q, K, V = qkv(3, 6, 5, 4, seed=1)
    abstract = attention(Q, K, V, duration=30.0, tol=0.0)
    for layout in ("batched", "per_query"):
        net = attention(Q, K, V, backend="brian2", target="numpy", duration=30.0, tol=0.0, layout=layout)
        assert net.extra["steps"] == abstract.trajectory.steps == 300
        assert np.max(np.abs(net.outputs - abstract.outputs)) < 1e-12
        assert np.max(np.abs(net.gains - abstract.gains)) < 1e-12
        assert np.max(np.abs(net.outputs - abstract.reference_outputs)) > 1e-3  # 30 ms: not there yet


def retrieval_problem(seed=4):
    from astrogate.models.patterns import flip_cue, random_patterns

    rng = np.random.default_rng(seed)
    K = random_patterns(20, 32, rng, correlation=0.3)
    V = rng.choice([-1.0, 1.0], size=(20, 5))
    targets = np.array([0, 3, 7])
    return flip_cue(K[targets], 0.2, rng), K, V, targets


def test_brian2_retrieval_mode_is_the_abstract_retrieval_mode():
    """AstrocyteGatedMemory per query with value neurons attached: step for step the abstract model's run."""
    import brian2 as b2

    b2.prefs.codegen.target = "numpy"
    Q, K, V, targets = retrieval_problem()
    abstract = attention(Q, K, V, mode="retrieval", duration=30.0, tol=0.0)
    net = attention(Q, K, V, mode="retrieval", backend="brian2", duration=30.0, tol=0.0)
    assert net.extra["steps"] == abstract.trajectory.steps == 300
    assert np.max(np.abs(net.extra["u"] - abstract.trajectory.u)) < 1e-12
    assert np.max(np.abs(net.gains - abstract.gains)) < 1e-12
    assert np.max(np.abs(net.outputs - abstract.outputs)) < 1e-12
    assert np.max(np.abs(net.outputs)) > 0.1  # the values have moved
    names = {obj.name for obj in net.extra["network"].net.objects}
    assert all(name.startswith("attention") for name in names)


@pytest.mark.slow
def test_brian2_retrieval_mode_routes_the_cleaned_queries_values():
    import brian2 as b2

    b2.prefs.codegen.target = "numpy"
    Q, K, V, targets = retrieval_problem()
    result = attention(Q, K, V, mode="retrieval", backend="brian2")
    assert np.all(result.converged)
    np.testing.assert_array_equal(np.argmax(result.gains, axis=1), targets)
    np.testing.assert_array_equal(np.sign(result.outputs), V[targets])


def test_brian2_network_leaves_the_users_brian2_alone():
    import brian2 as b2

    b2.prefs.codegen.target = "numpy"
    b2.defaultclock.dt = 0.05 * b2.ms
    # a user's own objects, with names the attention network must not clash with
    mine = b2.NeuronGroup(3, "dx/dt = -x / (5*ms) : 1", name="astrocytes")
    mine.x = 1.0
    user_net = b2.Network(mine)
    Q, K, V = qkv(2, 4, 3, 2, seed=3)
    first = attention(Q, K, V, backend="brian2", duration=5.0, tol=0.0)
    second = attention(Q, K, V, backend="brian2", duration=5.0, tol=0.0)  # a second network in the same process
    np.testing.assert_array_equal(first.outputs, second.outputs)
    assert b2.prefs.codegen.target == "numpy"
    assert float(b2.defaultclock.dt / b2.ms) == pytest.approx(0.05)
    names = {obj.name for obj in first.extra["network"].net.objects}
    assert all(name.startswith("attention") for name in names)
    user_net.run(1 * b2.ms)
    assert np.allclose(mine.x[:], np.exp(-1 / 5), rtol=1e-3)


def test_target_applies_to_the_attention_objects_only():
    """With Brian2's default codegen preference, target='numpy' runs both modes without leaving a preference set."""
    import brian2 as b2

    before = b2.prefs.codegen.target
    Q, K, V, _ = retrieval_problem()
    attention(Q[:1], K, V, mode="retrieval", backend="brian2", target="numpy", duration=1.0, tol=0.0)
    attention(Q[:1], K, V, backend="brian2", target="numpy", duration=1.0, tol=0.0)
    assert b2.prefs.codegen.target == before


def test_brian2_backend_needs_the_runtime_device():
    import brian2 as b2

    b2.set_device("cpp_standalone", build_on_run=False)
    Q, K, V = qkv(2, 4, 3, 2)
    with pytest.raises(InputError, match="runtime device"):
        attention(Q, K, V, backend="brian2")


@pytest.mark.parametrize("options, message", [(dict(layout="grid"), "unknown layout"),
                                              (dict(target="cuda"), "unknown target"),
                                              (dict(chunk=0.0), "chunk must be"),
                                              (dict(scale=1e7), "too large for the network's shifted softmax")])
def test_brian2_bad_options(options, message):
    Q, K, V = qkv(2, 4, 3, 2)
    with pytest.raises(InputError, match=message):
        attention(Q, K, V, backend="brian2", **options)
