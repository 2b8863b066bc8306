"""The model (docs/model.md) as Brian2 equation strings, and its parameters with units.

Read top to bottom, this is the network::

    neurons (N)      tau_u du/dt = -u + I_rec + I_cue [t < t_cue_end] + I_ext, v = tanh(gamma u)
    neurons -> astrocytes (N K synapses, weight xi[mu, i] / N):          m_mu = sum_i xi[mu, i] v_i / N
    astrocytes (K)   tau_g da/dt = beta F(m) - a,                            g = softmax(a)
    astrocytes -> hub (K synapses):                                       Z = sum_mu exp(a_mu - lse)
    astrocytes -> neurons (K N synapses, weight xi[mu, i]):   I_rec_i = sum_mu xi[mu, i] kappa K g_mu F'(m_mu)

The softmax goes through a one-element "hub" that holds the normaliser Z and lse, the
log-sum-exp of the logits of the previous step. The numerators are exp(a - lse_previous), never exp(a):
with beta = 20 N the logits reach thousands and exp(a) overflows. One step changes each logit by at most
dt/tau_g * beta * (max F - min F) (a stays between beta min F and beta max F, since |m| <= 1), so the
shifted exponents stay far from overflow and the largest never underflows; `softmax_shift_margin`
checks this bound. After the step lse becomes lse + ln Z = logsumexp(a), so ln g = a - lse - ln Z
never underflows even where g does.

Per step, in this order (network/memory.py sets it; all from the state at t, so that u and a take one
forward-Euler step from the same state, as in the abstract model)::

    1. v = tanh(gamma u)                  2. m (summed)           3. numerators exp(a - lse)
    4. Z (summed into the hub)            5. g = numerator / Z, astrocyte output h = kappa K g F'(m)
    6. lse += ln Z                        7. I_rec (summed)       8. Lyapunov terms (summed), monitors
    9. Euler step of u and a

Nothing here creates Brian2 objects. Names: `xi` and `e` are reserved in Brian2 (noise, Euler's number),
so the patterns are called `pattern`; `N` inside Synapses code is the number of synapses.
"""

from __future__ import annotations

import math

from astrogate.models.units import import_brian2

import_brian2()  # before any other Brian2 import: works in a worker thread too
from brian2 import ms  # noqa: E402  units only

from astrogate.errors import InputError
from astrogate.models.parameters import PARAMETER_TABLE, Parameters
from astrogate.models.similarity import Similarity

# -- rate neurons: one per pattern bit ------------------------------------------------------------
NEURON_EQUATIONS = """
du/dt = (-u + I_rec + I_cue*int(t < t_cue_end) + I_ext) / tau_u : 1
v                       : 1                  # rate tanh(gamma*u), stored once per step
I_rec                   : 1                  # recurrent input kappa K sum_mu g_mu F'(m_mu) xi[mu, i] (summed)
I_cue                   : 1                  # cue current, applied while t < t_cue_end
I_ext                   : 1                  # the user's input (0 unless driven: run_regularly, summed synapses)
G = (v*gamma*u - (abs(gamma*u) + log(1 + exp(-2*abs(gamma*u))) - log(2.0))) / gamma : 1
                                             # Lyapunov term G(v) = (v artanh v + ln(1 - v^2)/2)/gamma, overflow-free
gamma                   : 1 (shared, constant)       # neural gain
tau_u                   : second (shared, constant)  # neuron time constant
t_cue_end               : second (shared, constant)  # the cue current is on while t < t_cue_end
"""
RATE_UPDATE = "v = tanh(gamma*u)"

# -- astrocytes: one per pattern, logit dynamics ----------------------------------------------------
ASTROCYTE_EQUATIONS = """
da/dt = (beta*{F} - a) / tau_g : 1         # entropy-regularised replicator dynamics in logit form
m                       : 1                  # overlap with this astrocyte's pattern (summed)
numerator               : 1                  # exp(a - lse): softmax numerator, shifted for range
g                       : 1                  # gain softmax(a), stored once per step
log_g                   : 1                  # ln g, without underflow (for the Lyapunov function)
h                       : 1                  # output kappa K g F'(m), delivered to the neurons
lse                     : 1 (linked)         # hub: log-sum-exp of the logits
Z                       : 1 (linked)         # hub: softmax normaliser
beta                    : 1 (shared, constant)       # allocation inverse temperature
tau_g                   : second (shared, constant)  # astrocyte time constant
kappa_K                 : 1 (shared, constant)       # coupling times the number of patterns
energy_scale            : 1 (shared, constant)       # kappa K N in the Lyapunov function
entropy_weight          : 1 (shared, constant)       # kappa K N / beta (0 for beta = 0)
"""
NUMERATOR_UPDATE = "numerator = exp(a - lse)"
GAIN_UPDATE = """
g = numerator / Z
log_g = a - lse - log(Z)
h = kappa_K * g * {dF}
"""

# -- hub: population-wide sums (a group of one, linked back to the astrocytes without an index) --------
HUB_EQUATIONS = """
Z                       : 1                  # sum_mu exp(a_mu - lse) (summed)
lse                     : 1                  # logsumexp(a): previous step's until step 6
L_neural                : 1                  # sum_i G(v_i) (summed)
L_astro                 : 1                  # -kappa K N sum g F(m) + (kappa K N / beta) sum g ln g (summed)
L = L_neural + L_astro  : 1                  # Lyapunov function (docs/model.md)
"""
LSE_UPDATE = "lse = lse + log(Z)"

# -- gating synapses (factorised, O(N K)) -----------------------------------------------------------
OVERLAP_SYNAPSE = """
weight                  : 1 (constant)       # pattern[mu, i] / N_neurons
m_post = weight * v_pre : 1 (summed)
"""
OUTPUT_SYNAPSE = """
pattern                 : 1 (constant)       # pattern[mu, i]
I_rec_post = pattern * h_pre : 1 (summed)
"""
NORMALISER_SYNAPSE = "Z_post = numerator_pre : 1 (summed)"
NEURAL_ENERGY_SYNAPSE = "L_neural_post = G_pre : 1 (summed)"
ASTRO_ENERGY_SYNAPSE = "L_astro_post = -energy_scale_pre*g_pre*{F_pre} + entropy_weight_pre*g_pre*log_g_pre : 1 (summed)"

# -- wired gating (factorised, +-1 patterns only): the patterns are the wiring, no weights ---------------
# A synapse wherever pattern[mu, i] = +1 (about N K / 2 per direction, against N K weighted ones), each
# moving only its two int32 indices. With S_mu = sum_{i: +1} v_i and T_i = sum_{mu: +1} h_mu,
#     m_mu = (2 S_mu - sum_i v_i) / N,      I_rec_i = 2 T_i - sum_mu h_mu,
# the two population totals going through the hub. The patterns are compiled into the build.
WIRED_OVERLAP_SYNAPSE = "S_post = v_pre : 1 (summed)"
WIRED_OUTPUT_SYNAPSE = "T_post = h_pre : 1 (summed)"
RATE_TOTAL_SYNAPSE = "v_total_post = v_pre : 1 (summed)"
OUTPUT_TOTAL_SYNAPSE = "h_total_post = h_pre : 1 (summed)"
WIRED_NEURON_EQUATIONS = """
T                       : 1                  # sum of h over the astrocytes wired to this neuron (summed)
h_total                 : 1 (linked)         # hub: sum_mu h_mu
"""
WIRED_ASTROCYTE_EQUATIONS = """
S                       : 1                  # sum of v over the neurons wired to this astrocyte (summed)
v_total                 : 1 (linked)         # hub: sum_i v_i
n_neurons               : 1 (shared, constant)       # N
"""
WIRED_HUB_EQUATIONS = """
v_total                 : 1                  # sum_i v_i (summed)
h_total                 : 1                  # sum_mu h_mu (summed)
"""
WIRED_OVERLAP_UPDATE = "m = (2*S - v_total) / n_neurons"
WIRED_RECURRENT_UPDATE = "I_rec = 2*T - h_total"

# -- dense tripartite gating (F quadratic only, O(K N^2); a small-N cross-check) --------------------
# W_ij = (kappa/N) sum_mu K g_mu xi[mu, i] xi[mu, j]: each astrocyte gates every synapse of its pattern.
DENSE_RECURRENT_SYNAPSE = """
W                       : 1                  # gated Hebbian weight (summed from the astrocytes)
I_rec_post = W * v_pre  : 1 (summed)
"""
DENSE_GATE_SYNAPSE = """
coactivation            : 1 (constant)       # pattern[mu, i] pattern[mu, j] / N_neurons
W_post = h_pre * coactivation : 1 (summed)  # h = kappa K g m, and F'(m) = m: h / m = kappa K g
"""
# with F quadratic h/m = kappa K g: the astrocyte gate of the dense form
DENSE_GATE_OUTPUT = "h = kappa_K * g"

GATINGS = ("factorised", "wired", "dense")


def astrocyte_equations(F: Similarity) -> str:
    F_expr, _ = F.brian2_expressions("m")
    return ASTROCYTE_EQUATIONS.format(F=f"({F_expr})")


def gain_update(F: Similarity, gating: str) -> str:
    if gating == "dense":
        return "g = numerator / Z\nlog_g = a - lse - log(Z)\n" + DENSE_GATE_OUTPUT
    _, dF_expr = F.brian2_expressions("m")
    return GAIN_UPDATE.format(dF=f"({dF_expr})")


def astro_energy_synapse(F: Similarity) -> str:
    F_expr, _ = F.brian2_expressions("m_pre")
    return ASTRO_ENERGY_SYNAPSE.format(F_pre=f"({F_expr})")


def similarity_range(F: Similarity) -> float:
    """max F - min F over ``|m| <= 1``."""
    if F.kind == "quadratic":
        return 0.5
    if F.kind == "linear":
        return 2.0
    return 2.0 / F.power if F.power % 2 else 1.0 / F.power


# exp() of a double overflows above ~709.78 and underflows to 0 below ~-745
_EXP_LIMIT = 700.0


def softmax_shift_margin(params: Parameters, N: int, K: int) -> float:
    """How far the shifted softmax exponents may go, at most, in one step; must stay below ~700."""
    p = params.resolved(N)
    return p.dt / p.tau_g * p.beta * similarity_range(p.F) + math.log(K)


# the astrocytes' shared variables derived from the parameters (not parameters themselves)
DERIVED_ASTROCYTE_VALUES = ("kappa_K", "energy_scale", "entropy_weight")
# the groups' shared parameter variables, as declared in PARAMETER_TABLE (its `group` column)
NEURON_PARAMETERS = tuple(row.name for row in PARAMETER_TABLE if row.group == "neurons")
ASTROCYTE_PARAMETERS = tuple(row.name for row in PARAMETER_TABLE if row.group == "astrocytes") + \
    DERIVED_ASTROCYTE_VALUES


def network_parameters(params: Parameters, N: int, K: int) -> dict:
    """The group variables of the network with Brian2 units, from a Parameters (times in ms): the rows of
    PARAMETER_TABLE that a group holds, the derived astrocyte values and the clock's dt."""
    p = params.resolved(N)
    margin = softmax_shift_margin(p, N, K)
    if margin > _EXP_LIMIT:
        raise InputError(
            f"dt/tau_g * beta * range(F) + ln K = {margin:.0f} is too large for the shifted softmax of the "
            f"Brian2 network (exp overflows above ~709): use a smaller dt or beta")
    energy_scale = p.kappa * K * N
    values = {row.name: with_unit(getattr(p, row.name), row.unit) for row in PARAMETER_TABLE if row.group}
    values.update(kappa_K=p.kappa * K, energy_scale=energy_scale,
                  entropy_weight=energy_scale / p.beta if p.beta > 0 else 0.0, dt=p.dt * ms)
    return values


def with_unit(value: float, unit: str):
    """A plain number in a declared unit ("ms", "Hz", "mV" or "" for none) as a Brian2 quantity."""
    import brian2

    return value * getattr(brian2, unit) if unit else value
