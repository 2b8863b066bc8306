"""Attention as Brian2 networks: T queries against one set of n keys and values.

Retrieval mode (RetrievalNetwork) is the library's AstrocyteGatedMemory, one per query, with value neurons
attached to its astrocytes as a user would attach them. Query mode (QueryNetwork), below, clamps the key rates.

Per query t (models/attention.py has the equations):

    key neurons (d)      v = q_t, clamped (a constant group variable)
    key -> astrocytes    (d n synapses, weight K[mu, i] / d):         m_mu = sum_i K[mu, i] v_i / d   (summed)
    astrocytes (n)       tau_g da/dt = beta F(m) - a,                  g = softmax(a)
    astrocytes -> hub    (n synapses into element t of a hub of T):    Z_t = sum_mu exp(a_mu - lse_t)
    astrocytes -> values (n D synapses, weight V[mu, k]):              I_k = sum_mu V[mu, k] g_mu       (summed)
    value neurons (D)    tau_y dy/dt = -y + kappa_v I

Layout "batched" (the default) puts the T queries in one group of each kind (T d key neurons, T n astrocytes,
T D value neurons, a hub of T, block-diagonal synapses; each astrocyte reads its query's lse and Z through a
linked variable with an index); "per_query" builds those objects once per query (T sets of groups in one
Network). Both compute the same numbers; docs/results/attention.md measures the two.

The softmax is shifted as in models/brian2_equations.py: numerator exp(a - lse_previous), lse += ln Z.
A step computes, in the 'start' slot and in this order, the overlaps, numerators, normaliser, gains, lse and the
value input, all from the state at t; then the 'groups' slot takes one forward-Euler step of a and y: the step of
HeteroAssociativeMemory.run in query mode.

The network lives in its own Network, every object named with a prefix, each with its own clock at dt: it does
not change Brian2's preferences, device or default clock. It runs on the runtime device; `target` ("numpy" or
"cython") picks the code objects of its own objects only (default: Brian2's codegen preference).
"""

from __future__ import annotations

import contextlib
import itertools
import time

import numpy as np
from scipy.special import logsumexp

from astrogate.errors import InputError
from astrogate.models.checks import euler_steps
from astrogate.models.abstract import AstroGateModel
# the memory's overlap (its weight here K[mu, i] / d) and normaliser synapses, and its softmax steps
from astrogate.models.brian2_equations import LSE_UPDATE, NORMALISER_SYNAPSE, NUMERATOR_UPDATE, OVERLAP_SYNAPSE
from astrogate.network.devices import CODEGEN_TARGETS

LAYOUTS = ("batched", "per_query")
SLOT = "start"
ORDER = dict(overlaps=0, numerators=1, normaliser=2, gains=3, lse=4, values=5)
_instances = itertools.count()

KEY_EQUATIONS = "v : 1 (constant)  # clamped at the query"
ASTROCYTE_EQUATIONS = """
da/dt = (beta*{F} - a) / tau_g : 1
m                       : 1          # overlap K[mu] . q / d (summed)
numerator               : 1          # exp(a - lse)
g                       : 1          # gain softmax(a), stored once per step
lse                     : 1 (linked) # this query's log-sum-exp of the logits
Z                       : 1 (linked) # this query's softmax normaliser
beta                    : 1 (shared, constant)
tau_g                   : second (shared, constant)
"""
HUB_EQUATIONS = """
Z                       : 1          # sum of this query's numerators (summed)
lse                     : 1          # logsumexp(a): the previous step's until 'lse'
"""
VALUE_EQUATIONS = """
dy/dt = (-y + kappa_v*I_value) / tau_y : 1
I_value                 : 1          # sum_mu V[mu, k] g_mu (summed)
kappa_v                 : 1 (shared, constant)
tau_y                   : second (shared, constant)
"""
VALUE_SYNAPSE = """
value : 1 (constant)                 # V[mu, k]
I_value_post = value * g_pre : 1 (summed)
"""


def block_pairs(T: int, n_pre: int, n_post: int) -> tuple[np.ndarray, np.ndarray]:
    """All-to-all within each of T blocks: presynaptic t*n_pre + p to postsynaptic t*n_post + q, in the
    order (t, p, q)."""
    t, p, q = np.meshgrid(np.arange(T), np.arange(n_pre), np.arange(n_post), indexing="ij")
    return (t * n_pre + p).ravel(), (t * n_post + q).ravel()


class QueryBlock:
    """The groups and synapses of T queries (one block; per_query layout: one block per query)."""

    def __init__(self, memory, queries: np.ndarray, prefix: str, dt, codeobj_class):
        import brian2 as b2

        T = queries.shape[0]
        n, d, D = memory.n, memory.d, memory.D
        F_expr, _ = memory.F.brian2_expressions("m")
        common = dict(dt=dt, codeobj_class=codeobj_class)
        self.T = T
        self.keys = b2.NeuronGroup(T * d, KEY_EQUATIONS, name=f"{prefix}_keys", **common)
        self.astrocytes = b2.NeuronGroup(T * n, ASTROCYTE_EQUATIONS.format(F=f"({F_expr})"), method="euler",
                                         name=f"{prefix}_astrocytes", **common)
        self.hub = b2.NeuronGroup(T, HUB_EQUATIONS, name=f"{prefix}_hub", **common)
        self.values = b2.NeuronGroup(T * D, VALUE_EQUATIONS, method="euler", name=f"{prefix}_values", **common)
        query_of = np.repeat(np.arange(T), n)
        self.astrocytes.lse = b2.linked_var(self.hub, "lse", index=query_of)
        self.astrocytes.Z = b2.linked_var(self.hub, "Z", index=query_of)

        def summed(synapses, variable, order):
            updater = synapses.summed_updaters[variable]
            updater.when, updater.order = SLOT, ORDER[order]

        self.overlap = b2.Synapses(self.keys, self.astrocytes, OVERLAP_SYNAPSE, name=f"{prefix}_overlap", **common)
        i, j = block_pairs(T, d, n)  # (t, i, mu)
        self.overlap.connect(i=i, j=j)
        self.overlap.weight = np.tile((memory.xi.T / d).ravel(), T)
        summed(self.overlap, "m_post", "overlaps")
        self.normaliser = b2.Synapses(self.astrocytes, self.hub, NORMALISER_SYNAPSE, name=f"{prefix}_normaliser",
                                      **common)
        self.normaliser.connect(i=np.arange(T * n), j=query_of)
        summed(self.normaliser, "Z_post", "normaliser")
        self.value_synapses = b2.Synapses(self.astrocytes, self.values, VALUE_SYNAPSE, name=f"{prefix}_value_input",
                                          **common)
        i, j = block_pairs(T, n, D)  # (t, mu, k)
        self.value_synapses.connect(i=i, j=j)
        self.value_synapses.value = np.tile(memory.zeta.ravel(), T)
        summed(self.value_synapses, "I_value_post", "values")

        def step(group, code, order):
            return group.run_regularly(code, when=SLOT, order=ORDER[order], name=f"{group.name}_{order}",
                                       codeobj_class=codeobj_class)

        self.operations = [step(self.astrocytes, NUMERATOR_UPDATE, "numerators"),
                           step(self.astrocytes, "g = numerator / Z", "gains"),
                           step(self.hub, LSE_UPDATE, "lse")]
        # the state at t = 0: clamped rates, a = 0 (uniform gains), y = 0
        self.keys.v = queries.ravel()
        self.astrocytes.a = 0.0
        self.astrocytes.beta = memory.beta
        self.astrocytes.tau_g = memory.params.tau_g * b2.ms
        self.hub.lse = logsumexp(np.zeros(n))
        self.values.y = 0.0
        self.values.kappa_v = memory.kappa_v
        self.values.tau_y = memory.tau_y * b2.ms

    @property
    def objects(self) -> list:
        return [self.keys, self.astrocytes, self.hub, self.values, self.overlap, self.normaliser,
                self.value_synapses, *self.operations]

    def state(self, memory) -> dict:
        """Final gains, outputs and right-hand sides (1/ms) from the network's variables, (T, .) arrays."""
        a = np.asarray(self.astrocytes.a[:]).reshape(self.T, memory.n)
        m = np.asarray(self.astrocytes.m[:]).reshape(self.T, memory.n)
        y = np.asarray(self.values.y[:]).reshape(self.T, memory.D)
        gains = np.asarray(self.astrocytes.g[:]).reshape(self.T, memory.n)  # softmax(a) of the last step's start
        g_now = AstroGateModel.gains(a)
        da = (memory.beta * memory.F.F(m) - a) / memory.params.tau_g
        dy = (memory.value_drive(g_now) - y) / memory.tau_y
        return {"a": a, "y": y, "gains_last_step": gains, "gains": g_now,
                "rate": np.maximum(np.max(np.abs(da), axis=1), np.max(np.abs(dy), axis=1))}


def check_softmax_range(memory, queries: np.ndarray) -> None:
    """The shifted exponents a - lse_previous stay below one step's change of a logit, dt/tau_g max|beta F(m)|
    (a moves from 0 towards the constant beta F(m)), plus ln n; exp overflows above ~709."""
    drive = np.max(np.abs(memory.beta * memory.F.F(memory.query_overlaps(queries))))
    margin = memory.params.dt / memory.params.tau_g * drive + np.log(memory.n)
    if margin > 700:
        raise InputError(f"dt/tau_g * max|beta F(m)| + ln n = {margin:.0f} is too large for the network's shifted "
                         f"softmax (exp overflows above ~709): use a smaller dt or scale")


def check_runtime_device() -> None:
    from brian2 import get_device
    from brian2.devices.device import RuntimeDevice

    if not isinstance(get_device(), RuntimeDevice):
        raise InputError(f"the attention network runs on Brian2's runtime device; the active device is "
                         f"{type(get_device()).__name__} (set_device('runtime') first)")


def code_object_class(target: str | None):
    if target is None:
        return None
    if target not in CODEGEN_TARGETS:
        raise InputError(f"unknown target {target!r}: use 'numpy' or 'cython'")
    if target == "numpy":
        from brian2.codegen.runtime.numpy_rt import NumpyCodeObject

        return NumpyCodeObject
    from brian2.codegen.runtime.cython_rt import CythonCodeObject

    return CythonCodeObject


class QueryNetwork:
    """A Network of query-mode attention for `memory` (models.attention.HeteroAssociativeMemory) and T queries."""

    def __init__(self, memory, queries, layout: str = "batched", target: str | None = None, prefix: str | None = None):
        import brian2 as b2

        if layout not in LAYOUTS:
            raise InputError(f"unknown layout {layout!r}: use 'batched' or 'per_query'")
        check_runtime_device()
        queries = np.atleast_2d(np.asarray(queries, dtype=float))
        check_softmax_range(memory, queries)
        self.memory = memory
        self.layout = layout
        self.prefix = prefix or f"attention{next(_instances)}"
        dt = memory.params.dt * b2.ms
        codeobj_class = code_object_class(target)
        if layout == "batched":
            self.blocks = [QueryBlock(memory, queries, self.prefix, dt, codeobj_class)]
        else:
            self.blocks = [QueryBlock(memory, queries[t:t + 1], f"{self.prefix}_q{t}", dt, codeobj_class)
                           for t in range(queries.shape[0])]
        self.net = b2.Network(*(obj for block in self.blocks for obj in block.objects), name=f"{self.prefix}_network")
        self.steps = 0

    def run_steps(self, n_steps: int) -> None:
        import brian2 as b2

        self.net.run(n_steps * self.memory.params.dt * b2.ms)
        self.steps += n_steps

    def state(self) -> dict:
        parts = [block.state(self.memory) for block in self.blocks]
        return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


@contextlib.contextmanager
def codegen_target(target: str | None):
    """Brian2's codegen.target set to `target` inside the block and restored after it (None: unchanged)."""
    from brian2 import prefs

    if target is None:
        yield
        return
    before = prefs.codegen.target
    prefs.codegen.target = target
    try:
        yield
    finally:
        prefs.codegen.target = before


def use_code_objects(obj, codeobj_class) -> None:
    """Make the Brian2 object `obj` and everything it contains (an AstrocyteGatedMemory contains its groups,
    synapses and operations) generate code for `codeobj_class` (None: leave them as built)."""
    if codeobj_class is None:
        return
    obj.codeobj_class = codeobj_class
    for contained in obj.contained_objects:
        use_code_objects(contained, codeobj_class)


class RetrievalNetwork:
    """Retrieval mode as a user of the library builds it: one AstrocyteGatedMemory per query (the keys as its
    patterns, started from the query by set_cue), and D value neurons per memory driven by its astrocytes' gains
    through n D synapses (I_k = sum_mu V[mu, k] g_mu, summed after the memory's gains of the step), on the
    memory's clock. The memories compute no Lyapunov function (energy=False). A `target` is Brian2's codegen.target
    while the memories are built (their connect() runs code then; restored afterwards) and the code objects of
    everything here at run time."""

    def __init__(self, memory, queries, target: str | None = None, prefix: str | None = None):
        import brian2 as b2

        check_runtime_device()
        queries = np.atleast_2d(np.asarray(queries, dtype=float))
        self.memory = memory
        self.layout = "memories"
        self.prefix = prefix or f"attention{next(_instances)}"
        codeobj_class = code_object_class(target)
        self.memories, self.values, objects = [], [], []
        with codegen_target(target):  # the memories' connect() runs code as they are built
            for t, query in enumerate(queries):
                objects += self._memory_with_values(memory, query, f"{self.prefix}_q{t}", codeobj_class)
        self.net = b2.Network(*objects, name=f"{self.prefix}_network")
        self.steps = 0

    def _memory_with_values(self, memory, query, name, codeobj_class) -> list:
        """One AstrocyteGatedMemory started from `query`, its value neurons and the routing synapses."""
        import brian2 as b2

        from astrogate.network.memory import ORDER as MEMORY_ORDER
        from astrogate.network.memory import SLOT as MEMORY_SLOT
        from astrogate.network.memory import AstrocyteGatedMemory

        mem = AstrocyteGatedMemory(memory.xi, memory.params, name=name, energy=False)
        mem.set_cue(query)
        values = b2.NeuronGroup(memory.D, VALUE_EQUATIONS, method="euler", clock=mem.clock, name=f"{name}_values",
                                codeobj_class=codeobj_class)
        values.y = 0.0
        values.kappa_v = memory.kappa_v
        values.tau_y = memory.tau_y * b2.ms
        routing = b2.Synapses(mem.astrocytes, values, VALUE_SYNAPSE, clock=mem.clock, name=f"{name}_value_input",
                              codeobj_class=codeobj_class)
        routing.connect()  # all-to-all, pre-major: synapse mu*D + k
        routing.value = memory.zeta.ravel()
        updater = routing.summed_updaters["I_value_post"]
        updater.when, updater.order = MEMORY_SLOT, MEMORY_ORDER["gains"] + 1  # this step's gains
        use_code_objects(mem, codeobj_class)
        self.memories.append(mem)
        self.values.append(values)
        return [mem, values, routing]

    def run_steps(self, n_steps: int) -> None:
        import brian2 as b2

        self.net.run(n_steps * self.memory.params.dt * b2.ms)
        self.steps += n_steps

    def state(self) -> dict:
        """Final gains, outputs, key state and right-hand sides (1/ms), as the abstract retrieval mode judges them."""
        u = np.array([mem.state()["u"] for mem in self.memories])
        a = np.array([mem.state()["a"] for mem in self.memories])
        y = np.array([np.asarray(values.y[:]) for values in self.values])
        key_model = self.memory.key_model
        du, da = key_model.derivatives(u, a)
        g = key_model.gains(a)
        dy = (self.memory.value_drive(g) - y) / self.memory.tau_y
        rate = np.max(np.abs(np.concatenate([du, da, dy], axis=1)), axis=1)
        return {"u": u, "a": a, "y": y, "gains": g, "rate": rate}


def check_chunk(chunk: float) -> None:
    if isinstance(chunk, bool) or not isinstance(chunk, (int, float)) or not np.isfinite(chunk) or chunk <= 0:
        raise InputError(f"chunk must be a positive number of ms, got {chunk!r}")


def run_network(network, duration: float, tol: float, chunk: float) -> tuple[dict, float]:
    """Run in chunks of `chunk` ms until every query's rate of change is below tol or `duration` ms is reached."""
    dt = network.memory.params.dt
    total = euler_steps(duration, dt)
    per_chunk = max(1, int(round(chunk / dt)))
    start = time.perf_counter()
    state = network.state()
    while network.steps < total:
        network.run_steps(min(per_chunk, total - network.steps))
        state = network.state()
        if np.all(state["rate"] < tol):
            break
    return state, time.perf_counter() - start


def built(make, target: str | None, what: str):
    """make() -> a network, its code generated (and compiled, for Cython: announced, as builds are) by a run
    of no steps."""
    from brian2 import prefs

    from astrogate.network.devices import announced_build, expected_build_time

    expected = expected_build_time("runtime", target or prefs.codegen.target)
    with announced_build(what, expected) if expected else contextlib.nullcontext():
        network = make()
        network.run_steps(0)
    return network


def run_retrieval_network(memory, queries, duration: float, tol: float, target: str | None = None,
                          chunk: float = 50.0) -> dict:
    """Retrieval mode on Brian2 (RetrievalNetwork), run as run_query_network runs query mode."""
    check_chunk(chunk)
    start = time.perf_counter()
    network = built(lambda: RetrievalNetwork(memory, queries, target), target,
                    "compiling the retrieval-mode attention network's code")
    build_seconds = time.perf_counter() - start
    state, run_seconds = run_network(network, duration, tol, chunk)
    return {"outputs": state["y"], "gains": state["gains"], "converged": state["rate"] < tol, "u": state["u"],
            "steps": network.steps, "layout": network.layout, "build_seconds": build_seconds,
            "run_seconds": run_seconds, "network": network}


def run_query_network(memory, queries, duration: float, tol: float, target: str | None = None, chunk: float = 50.0,
                      layout: str = "batched") -> dict:
    """Build the network and run it in chunks of `chunk` ms until every query has max|da/dt|, max|dy/dt| < tol
    (1/ms, judged from the network's own variables after each chunk) or `duration` ms.
    Returns outputs (T x D), gains (T x n) = softmax of the final logits, converged (T,), steps, timings."""
    check_chunk(chunk)
    start = time.perf_counter()
    network = built(lambda: QueryNetwork(memory, queries, layout, target), target,
                    "compiling the query-mode attention network's code")
    build_seconds = time.perf_counter() - start
    state, run_seconds = run_network(network, duration, tol, chunk)
    return {"outputs": state["y"], "gains": state["gains"], "converged": state["rate"] < tol,
            "steps": network.steps, "layout": layout, "build_seconds": build_seconds,
            "run_seconds": run_seconds, "network": network}
