"""Calcium astrocytes: the G-ChI model of De Pitta et al. (2009) driven by a pattern's glutamate, gliotransmitter
release that competes for a shared resource, and the gains it sets. Equation strings and parameters with units;
no Brian2 objects (network/calcium.py builds them).

One astrocyte per stored pattern mu::

    glutamate      Y_S = Y_pattern m^2 = (2 Y_pattern / N) f,  f = N m^2 / 2 (the paper's eq. 8)
    receptors      dGamma_A/dt = O_N Y_S (1 - Gamma_A) - Omega_N (1 + zeta C/(C + K_KC)) Gamma_A
    IP3            dI/dt = J_beta + J_delta - J_3K - J_5P + J_ex + J_coupling
    Ca2+, IP3Rs    dC/dt = J_r + J_l - J_p,   dh/dt = (h_inf - h) / tau_h
    exocytosis     release = (C/C_Theta)^n_A / (1 + (C/C_Theta)^n_A)
    gain           dg/dt = O_A release * available - Omega_G g

(every right-hand side times `speedup`, 1 for the physiological time scales). The first four lines are the
G-ChI model (De Pitta et al. 2009) with the agonist-receptor kinetics, the exogenous IP3 term J_ex and the
parameter values of Stimberg et al. (2019), Brian2's example ``frompapers/Stimberg_et_al_2018/
example_2_gchi_astrocyte.py`` (its deterministic astrocyte; J_ex with I_bias = 0 is an extra removal of IP3
above I_Theta). The equations are written here from the papers' formulas, not copied.

**The drive** (this project's choice). Astrocyte mu ensheathes the synapses of pattern mu, and the glutamate it
sees is their coincident activity: (1/N^2) sum_ij xi_i xi_j v_i v_j = m^2, i.e. 2 f / N. Y_pattern is the
glutamate at a fully active pattern (m = 1). The input is the overlap m, a group variable that a memory's
neurons -> astrocytes synapses sum into (or that is clamped, for the quasi-static map).

**The output.** In De Pitta & Brunel (2016) released gliotransmitter binds presynaptic receptors (activation
at O_G G_A, deactivation at Omega_G) and sets the synapse's release probability, linearly in the fraction of
bound receptors. Here g_mu is the fraction of the syncytium's gliotransmitter resource that is released and
bound at pattern mu's synapses, and the presynaptic efficacy of pattern mu scales with it (K g_mu is the gain
of the memory's connectivity; mean gain 1 when the whole resource is bound). Release is a smooth version of De
Pitta & Brunel's threshold at C_Theta: a Hill function of calcium with exponent n_A, since under constant drive
calcium may sit on a plateau (a threshold crossing would release once); n_A -> infinity is the threshold.
Unbinding returns the resource to the pool at Omega_G (their presynaptic-receptor deactivation rate).

**The competition** (`POOLS`):

- ``shared``: one pool for all K astrocytes (available = 1 - sum_nu g_nu). The total is conserved, so the gains
  and the free fraction lie on a simplex by construction, and at steady state g_mu = k a_mu / (1 + k sum a),
  k = O_A / Omega_G, a = the time-averaged release: a divisive normalisation of the release activity
  (Carandini & Heeger 2012) that tends to a / sum a for strong capture. Justification: astrocytes form a
  gap-junction-coupled syncytium that shares its metabolites (glucose, lactate) and routes them to the sites of
  activity (Rouach et al. 2008), so the supply of gliotransmitter is a common, finite resource.
- ``private``: each astrocyte owns 1/K of the same resource (available = 1/K - g): no competition, the control.

Gap junctions (``GAP_JUNCTION_SYNAPSE``, permeability F_GJ) couple IP3 between astrocytes with the regenerative
flux of Goldberg et al. (2010) as in Stimberg et al.'s ``example_5_astro_ring.py``; F_GJ = 0 leaves them out.

References:
- De Pitta M, Goldberg M, Volman V, Berry H, Ben-Jacob E (2009). Glutamate regulation of calcium and IP3
  oscillating and pulsating dynamics in astrocytes. J Biol Phys 35:383-411.
- Stimberg M, Goodman DFM, Brette R, De Pitta M (2019). Modeling neuron-glia interactions with the Brian 2
  simulator. In De Pitta M, Berry H (eds), Computational Glioscience, Springer, pp 471-505 (bioRxiv 198366).
- De Pitta M, Brunel N (2016). Modulation of synaptic plasticity by glutamatergic gliotransmission: a modeling
  study. Neural Plast 2016:7607924.
- Goldberg M, De Pitta M, Volman V, Berry H, Ben-Jacob E (2010). Nonlinear gap junctions enable long-distance
  propagation of pulsating calcium waves in astrocyte networks. PLoS Comput Biol 6:e1000909.
- Rouach N, Koulakoff A, Abudara V, Willecke K, Giaume C (2008). Astroglial metabolic networks sustain
  hippocampal synaptic transmission. Science 322:1551-1555.
- Carandini M, Heeger DJ (2012). Normalization as a canonical neural computation. Nat Rev Neurosci 13:51-62.
"""

from __future__ import annotations

from dataclasses import dataclass

from astrogate.models.units import import_brian2

import_brian2()  # before any other Brian2 import: works in a worker thread too
from brian2 import Quantity, have_same_dimensions, second, umolar  # noqa: E402  units only

from astrogate.errors import InputError  # noqa: E402

GCHI = "Stimberg et al. 2019, Fig. 2 (Brian2 example_2_gchi_astrocyte); model of De Pitta et al. 2009"
GLIO = "De Pitta & Brunel 2016 (value as in Stimberg et al. 2019, example_4_synrel)"
GJ = "Goldberg et al. 2010 (as in Stimberg et al. 2019, example_5_astro_ring)"
OWN = "this project's choice (docs/results/calcium.md)"

# -- G-ChI: Ca2+ fluxes ------------------------------------------------------------------------------------------
O_P = 0.9 * umolar / second  # maximal Ca2+ uptake rate by SERCAs
K_P = 0.1 * umolar  # Ca2+ affinity of SERCAs
C_T = 2 * umolar  # total cell free Ca2+ content
rho_A = 0.18  # ER-to-cytoplasm volume ratio
Omega_C = 6 / second  # maximal rate of Ca2+ release by IP3Rs
Omega_L = 0.1 / second  # maximal rate of Ca2+ leak from the ER
# -- IP3R kinetics
d_1 = 0.13 * umolar  # IP3 binding affinity
d_2 = 1.05 * umolar  # Ca2+ inactivation dissociation constant
O_2 = 0.2 / umolar / second  # IP3R binding rate for Ca2+ inhibition
d_3 = 0.9434 * umolar  # IP3 dissociation constant
d_5 = 0.08 * umolar  # Ca2+ activation dissociation constant
# -- agonist-dependent IP3 production (PLCbeta)
O_beta = 5 * umolar / second  # maximal rate of IP3 production by PLCbeta
O_N = 0.3 / umolar / second  # agonist binding rate
Omega_N = 0.5 / second  # maximal receptor inactivation rate
K_KC = 0.5 * umolar  # Ca2+ affinity of PKC
zeta = 10.0  # maximal reduction of receptor affinity by PKC
# -- endogenous IP3 production (PLCdelta)
O_delta = 0.2 * umolar / second  # maximal rate of IP3 production by PLCdelta
kappa_delta = 1.5 * umolar  # inhibition constant of PLCdelta by IP3
K_delta = 0.3 * umolar  # Ca2+ affinity of PLCdelta
# -- IP3 degradation
Omega_5P = 0.1 / second  # maximal rate of IP3 degradation by IP-5P
K_D = 0.5 * umolar  # Ca2+ affinity of IP3-3K
K_3K = 1 * umolar  # IP3 affinity of IP3-3K
O_3K = 4.5 * umolar / second  # maximal rate of IP3 degradation by IP3-3K
# -- exogenous IP3 flow (J_ex) and gap junctions (their thresholds are shared)
F_ex = 0.09 * umolar / second  # maximal exogenous IP3 flow
I_bias = 0 * umolar  # exogenous IP3 level that J_ex pulls towards (0 in the example)
I_Theta = 0.3 * umolar  # threshold gradient for IP3 diffusion
omega_I = 0.05 * umolar  # scaling factor of diffusion
F_GJ = 0 * umolar / second  # gap-junction IP3 permeability (0: uncoupled; 0.09 and 2 uM/s in the examples)
# -- gliotransmitter release and its presynaptic effect
C_Theta = 0.5 * umolar  # Ca2+ threshold for exocytosis
Omega_G = 0.5 / (60 * second)  # presynaptic receptor deactivation rate (the bound resource returns to the pool)
n_A = 8.0  # Hill exponent of exocytosis around C_Theta (a smooth threshold)
O_A = 0.6 / second  # maximal rate of release-and-binding from the available resource (the capture strength)
# -- the drive and the time scale
Y_pattern = 0.3 * umolar  # glutamate seen by an astrocyte whose pattern is fully active (m = 1)
speedup = 1.0  # every rate times this (1: physiological; > 1 for studies of the ratio of time scales)


@dataclass(frozen=True)
class CalciumParameter:
    unit: str  # Brian2 unit of the group variable
    meaning: str
    reference: str
    positive: bool = True  # must be > 0 (else >= 0)


PARAMETERS: dict[str, CalciumParameter] = {
    "O_P": CalciumParameter("mmolar/second", "maximal Ca2+ uptake rate by SERCAs", GCHI),
    "K_P": CalciumParameter("mmolar", "Ca2+ affinity of SERCAs", GCHI),
    "C_T": CalciumParameter("mmolar", "total cell free Ca2+ content", GCHI),
    "rho_A": CalciumParameter("1", "ER-to-cytoplasm volume ratio", GCHI),
    "Omega_C": CalciumParameter("1/second", "maximal rate of Ca2+ release by IP3Rs", GCHI),
    "Omega_L": CalciumParameter("1/second", "maximal rate of Ca2+ leak from the ER", GCHI, positive=False),
    "d_1": CalciumParameter("mmolar", "IP3 binding affinity", GCHI),
    "d_2": CalciumParameter("mmolar", "Ca2+ inactivation dissociation constant", GCHI),
    "O_2": CalciumParameter("1/mmolar/second", "IP3R binding rate for Ca2+ inhibition", GCHI),
    "d_3": CalciumParameter("mmolar", "IP3 dissociation constant", GCHI),
    "d_5": CalciumParameter("mmolar", "Ca2+ activation dissociation constant", GCHI),
    "O_beta": CalciumParameter("mmolar/second", "maximal rate of IP3 production by PLCbeta", GCHI, positive=False),
    "O_N": CalciumParameter("1/mmolar/second", "agonist binding rate", GCHI),
    "Omega_N": CalciumParameter("1/second", "maximal receptor inactivation rate", GCHI),
    "K_KC": CalciumParameter("mmolar", "Ca2+ affinity of PKC", GCHI),
    "zeta": CalciumParameter("1", "maximal reduction of receptor affinity by PKC", GCHI, positive=False),
    "O_delta": CalciumParameter("mmolar/second", "maximal rate of IP3 production by PLCdelta", GCHI, positive=False),
    "kappa_delta": CalciumParameter("mmolar", "inhibition constant of PLCdelta by IP3", GCHI),
    "K_delta": CalciumParameter("mmolar", "Ca2+ affinity of PLCdelta", GCHI),
    "Omega_5P": CalciumParameter("1/second", "maximal rate of IP3 degradation by IP-5P", GCHI),
    "K_D": CalciumParameter("mmolar", "Ca2+ affinity of IP3-3K", GCHI),
    "K_3K": CalciumParameter("mmolar", "IP3 affinity of IP3-3K", GCHI),
    "O_3K": CalciumParameter("mmolar/second", "maximal rate of IP3 degradation by IP3-3K", GCHI, positive=False),
    "F_ex": CalciumParameter("mmolar/second", "maximal exogenous IP3 flow", GCHI, positive=False),
    "I_bias": CalciumParameter("mmolar", "exogenous IP3 level (J_ex pulls IP3 towards it)", GCHI, positive=False),
    "I_Theta": CalciumParameter("mmolar", "threshold gradient for IP3 diffusion", GCHI),
    "omega_I": CalciumParameter("mmolar", "scaling factor of IP3 diffusion", GCHI),
    "F_GJ": CalciumParameter("mmolar/second", "gap-junction IP3 permeability", GJ + "; 0 by default", positive=False),
    "C_Theta": CalciumParameter("mmolar", "Ca2+ threshold for exocytosis", GLIO),
    "Omega_G": CalciumParameter("1/second", "presynaptic receptor deactivation rate (resource back to the pool)", GLIO),
    "n_A": CalciumParameter("1", "Hill exponent of exocytosis around C_Theta", OWN),
    "O_A": CalciumParameter("1/second", "maximal release-and-binding rate from the available resource", OWN
                            + "; 0.6/s is the gliotransmitter recycling rate Omega_A of De Pitta & Brunel 2016 (example_4_synrel)",
                            positive=False),
    "Y_pattern": CalciumParameter("mmolar", "glutamate at an astrocyte whose pattern is fully active (m = 1)", OWN,
                                  positive=False),
    "speedup": CalciumParameter("1", "every rate times this (1: physiological time scales)", OWN),
}
DEFAULTS: dict[str, Quantity | float] = {name: globals()[name] for name in PARAMETERS}

POOLS = ("shared", "private")
GAP_JUNCTIONS = ("none", "ring", "all")
ASTROCYTE_KINDS = ("replicator", "calcium")  # the memory's astrocytes: the paper's replicator, or these


def check_astrocyte_kind(kind: str) -> None:
    if kind not in ASTROCYTE_KINDS:
        raise InputError(f"unknown astrocyte {kind!r}: use one of {', '.join(ASTROCYTE_KINDS)}")


def check_pool(pool: str) -> None:
    if pool not in POOLS:
        raise InputError(f"unknown pool {pool!r}: use one of {', '.join(POOLS)}")


def check_gap_junctions(topology: str) -> None:
    if topology not in GAP_JUNCTIONS:
        raise InputError(f"unknown gap_junctions {topology!r}: use one of {', '.join(GAP_JUNCTIONS)}")


def calcium_parameters(overrides: dict | None = None) -> dict:
    """The parameters with `overrides` applied, as {name: Brian2 quantity (or float if dimensionless)}.
    An unknown name, a value of the wrong unit (a plain number for a dimensioned parameter included), a negative
    value, or zero where the equations divide by it, is an InputError naming the parameter."""
    values = dict(DEFAULTS)
    for name, value in (overrides or {}).items():
        values[name] = checked_parameter(name, value)
    return values


def checked_parameter(name: str, value):
    import numpy as np

    if name not in PARAMETERS:
        raise InputError(f"unknown calcium parameter {name!r}: known are {', '.join(PARAMETERS)}")
    spec, default = PARAMETERS[name], DEFAULTS[name]
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number, Quantity)):
        raise InputError(f"calcium parameter {name} must be a number with units like {shown(name)}, got {value!r}")
    if np.ndim(value) != 0:
        raise InputError(f"calcium parameter {name} must be a single value, got an array of shape {np.shape(value)}")
    if not have_same_dimensions(value, default):
        unit = "no units" if spec.unit == "1" else f"units of {display_unit(name)}"
        raise InputError(f"calcium parameter {name} must have {unit} (like {shown(name)}), got {value!r}")
    number = float(np.asarray(value))  # in SI base units: only the sign and finiteness are read
    if not np.isfinite(number) or number < 0 or (spec.positive and number == 0):
        sign = "> 0" if spec.positive else ">= 0"
        raise InputError(f"calcium parameter {name} must be finite and {sign}, got {value!r}")
    return float(value) if spec.unit == "1" else value


def display_unit(name: str) -> str:
    """The unit a parameter is quoted in: micromolar where the group variable is in mmolar."""
    return PARAMETERS[name].unit.replace("mmolar", "umolar")


def in_display_unit(name: str, value) -> float:
    import brian2

    unit = display_unit(name)
    return float(value) if unit == "1" else float(value / eval(unit, vars(brian2)))


def from_display_units(numbers: dict) -> dict:
    """Calcium parameters given as plain numbers in their display units ({"O_A": 60, "Y_pattern": 1.0}: 1/s,
    uM, ...; a TOML table) as the quantities `calcium_parameters` takes; an unknown name is an InputError."""
    import brian2

    values = {}
    for name, number in numbers.items():
        if name not in PARAMETERS:
            raise InputError(f"unknown calcium parameter {name!r}: known are {', '.join(PARAMETERS)}")
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise InputError(f"calcium parameter {name} must be a number (in {display_unit(name)}), got {number!r}")
        unit = display_unit(name)
        values[name] = float(number) if unit == "1" else number * eval(unit, vars(brian2))
    return values


def shown(name: str, value=None) -> str:
    """A parameter's value in its display unit, as '0.9 umolar/second' (its default unless value is given)."""
    number = in_display_unit(name, DEFAULTS[name] if value is None else value)
    unit = display_unit(name)
    return f"{number:g}" if unit == "1" else f"{number:g} {unit}"


# -- Brian2 equations -------------------------------------------------------------------------------------------
# Parameters are shared, constant group variables: a standalone build re-runs with other values (run_args).
GCHI_EQUATIONS = """
m                       : 1          # overlap of the neural state with this astrocyte's pattern (input, summed)
Y_S = Y_pattern*m**2    : mmolar     # glutamate of the pattern's ensemble, 2 Y_pattern f / N
dGamma_A/dt = speedup*(O_N*Y_S*(1 - Gamma_A) - Omega_N*(1 + zeta*C/(C + K_KC))*Gamma_A) : 1
dI/dt = speedup*(J_beta + J_delta - J_3K - J_5P + J_ex + J_coupling) : mmolar
J_beta = O_beta*Gamma_A : mmolar/second                                      # PLCbeta, agonist-driven
J_delta = O_delta/(1 + I/kappa_delta)*C**2/(C**2 + K_delta**2) : mmolar/second  # PLCdelta, Ca2+-driven
J_3K = O_3K*C**4/(C**4 + K_D**4)*I/(I + K_3K) : mmolar/second                   # degradation by IP3-3K
J_5P = Omega_5P*I : mmolar/second                                            # degradation by IP-5P
J_ex = -F_ex/2*(1 + tanh((abs(I - I_bias) - I_Theta)/omega_I))*sign(I - I_bias) : mmolar/second
J_coupling              : mmolar/second  # IP3 through gap junctions (summed; 0 without)
dC/dt = speedup*(J_r + J_l - J_p) : mmolar
dh/dt = speedup*(h_inf - h)/tau_h : 1                                         # IP3R de-inactivation
J_r = Omega_C*m_inf**3*h**3*(C_T - (1 + rho_A)*C) : mmolar/second             # Ca2+-induced Ca2+ release
J_l = Omega_L*(C_T - (1 + rho_A)*C) : mmolar/second                           # leak from the ER
J_p = O_P*C**2/(C**2 + K_P**2) : mmolar/second                                # SERCA uptake
m_inf = I/(I + d_1)*C/(C + d_5) : 1
h_inf = Q_2/(Q_2 + C) : 1
tau_h = 1/(O_2*(Q_2 + C)) : second
Q_2 = d_2*(I + d_1)/(I + d_3) : mmolar
"""
RELEASE_EQUATIONS = """
release = (C/C_Theta)**n_A/(1 + (C/C_Theta)**n_A) : 1   # Ca2+-dependent exocytosis activity
release_before          : 1          # release at the start of the step (RELEASE_STORE)
held = (release + release_before)/2 : 1                  # the release over the step, trapezoidal
g                       : 1          # resource bound at the pattern's synapses: the gain (the exact step below)
"""
RELEASE_STORE = "release_before = release"
# dg/dt = O_A release available - Omega_G g is stiff where O_A is large (the capture strength studied goes to
# 600/s), and an explicit step of a shared pool overdraws it when dt O_A sum(release) > 1. So g takes the exact
# step of these linear equations with the release held at `held`, the mean of its values at the two ends of the
# step (computed after calcium's step): positivity and sum g <= 1 hold for every dt, to round-off.
#
# Private pool (available = share - g), with a = O_A held, b = Omega_G (times speedup):
#     g(t + dt) = g* + (g - g*) exp(-(a + b) dt),   g* = a share / (a + b)
PRIVATE_GAIN_UPDATE = """
g = g_private + (g - g_private)*exp(-speedup*(O_A*held + Omega_G)*dt)
"""
PRIVATE_POOL_EQUATIONS = """
g_private = O_A*held*share/(O_A*held + Omega_G) : 1   # the steady state at the held release
share                   : 1 (shared, constant)  # 1/K
"""
# Shared pool (available = 1 - S, S = sum g): with A = sum of a over the pool, S relaxes exactly as
#     S(s) = S* + (S0 - S*) exp(-(A + b) s),   S* = A / (A + b),
# and each g_mu(t + dt) = g_mu exp(-b dt) + a_mu E, where the pool's exposure E = int_0^dt (1 - S(s))
# exp(-b (dt - s)) ds is one number per pool, computed at the hub:
#     E = (1 - S*) (1 - exp(-b dt)) / b - (S0 - S*) exp(-b dt) dt exprel(-A dt).
# Summed over mu this is S(dt): the conservation is exact, not imposed. No gain is divided by a sum of gains.
SHARED_GAIN_UPDATE = """
g = g*exp(-speedup*Omega_G*dt) + speedup*O_A*held*exposure
"""
SHARED_POOL_EQUATIONS = """
exposure                : second (linked)  # hub: the pool's free-resource exposure over the step
"""
HUB_EQUATIONS = """
bound                   : 1          # S = sum of g of the pool (summed)
capture                 : 1/second   # A = sum of speedup O_A held (summed)
exposure                : second     # E (HUB_UPDATE)
decay                   : 1/second (shared, constant)  # b = speedup Omega_G
"""
HUB_UPDATE = """
S_star = capture/(capture + decay)
exposure = (1 - S_star)*(-expm1(-decay*dt))/decay - (bound - S_star)*exp(-decay*dt)*dt*exprel(-capture*dt)
"""
POOL_SYNAPSE = """
bound_post = g_pre : 1 (summed)
capture_post = speedup_pre*O_A_pre*held_pre : 1/second (summed)
"""
# the regenerative IP3 flux of Goldberg et al. (2010) from the presynaptic astrocyte into the postsynaptic one
GAP_JUNCTION_SYNAPSE = """
delta_I = I_post - I_pre : mmolar
J_coupling_post = -F_GJ_post/2*(1 + tanh((abs(delta_I) - I_Theta_post)/omega_I_post))*sign(delta_I) : mmolar/second (summed)
"""
# the example's initial state: IP3Rs mostly available for Ca2+-induced Ca2+ release; all resource in the pool
INITIAL_STATE = {"h": 0.9, "C": 0 * umolar, "I": 0 * umolar, "Gamma_A": 0.0, "g": 0.0}


def parameter_declarations() -> str:
    return "".join(f"{name:<24}: {spec.unit} (shared, constant)\n" for name, spec in PARAMETERS.items())


def astrocyte_equations(pool: str) -> str:
    """The equations of the calcium astrocyte group for a pool kind (`POOLS`)."""
    check_pool(pool)
    return (GCHI_EQUATIONS + RELEASE_EQUATIONS
            + (SHARED_POOL_EQUATIONS if pool == "shared" else PRIVATE_POOL_EQUATIONS) + parameter_declarations())


def gain_update(pool: str) -> str:
    """The code of g's exact step (run once per step, after the groups have integrated calcium)."""
    check_pool(pool)
    return SHARED_GAIN_UPDATE if pool == "shared" else PRIVATE_GAIN_UPDATE
