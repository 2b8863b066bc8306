"""Spiking neurons for the Brian2 network (docs/model.md, "The spiking variant"): equation strings and parameters.

Only spikes leave a neuron. Its state u follows the rate model's dynamics, and it fires with the
instantaneous rate

    rate = nu_max (1 + tanh(gamma u)) / 2

either as a Poisson process (a Bernoulli draw each step, rand() < rate dt) or as a leaky
integrate-and-fire membrane driven by the constant-drive potential whose firing rate is `rate`
(the LIF f-I curve inverted below). The astrocytes see the rate-coded estimate

    v_hat_i = 2 r_i / nu_max - 1,    dr_i/dt = -r_i / tau_r,   r_i += 1 / tau_r at each spike of i

so r_i estimates neuron i's rate (its mean is the rate exactly, also under forward Euler). The
event-driven readout computes the same sum at the astrocytes: each spike of neuron i adds
xi[mu, i] / (N tau_r) to a trace s_mu that decays with tau_r, so s_mu = sum_i xi[mu, i] r_i / N and

    m_hat_mu = 2 s_mu / nu_max - mean_i xi[mu, i]

(the constant -1 of v_hat summed analytically). Both readouts decay in the 'groups' slot and jump after
the threshold of the same step, so with the same spikes they give the same m_hat up to round-off.

LIF calibration, for the network as simulated (forward Euler at dt, spikes on the step grid). With reset
and rest at 0, threshold V_th, membrane time constant tau_m and refractory period t_ref = R dt, a neuron
that spikes at step k is refractory for steps k+1 .. k+R-1; from step k+R each Euler step takes V to
D - q (D - V), q = 1 - dt/tau_m, so after n steps V = D (1 - q^n), and it spikes at step k + R + n - 1 for
the first n with V > V_th. With n = x + 1/2 on average over the fractional part of
x = ln(1 - V_th/D) / ln q, the mean interval is (R - 1/2 + x) dt; setting it to 1/f:

    D(f) = V_th / (1 - q^((1/f - t_ref)/dt + 1/2))

(for dt -> 0 this is the continuous-time inverse f-I curve V_th / (1 - exp(-(1/f - t_ref)/tau_m))).
A constant drive fires at an integer number of steps, so a single neuron's rate is the target up to
that rounding (ISI within dt/2: 1 % at 200 Hz, dt = 0.1 ms); drives that vary average it out.
f -> 0 gives D -> V_th (silent); below about 1 / (t_ref + 37 tau_m) = 2.7 Hz q^x < 1e-16 and D is V_th in
double precision, so such rates come out silent. f -> 1/t_ref needs an infinite drive, so nu_max must
stay below 1/t_ref (checked).

The readout starts at the rate of the initial state (r(0) = rate(u(0))): as if the cue had been
presented long enough for the readout to settle. Starting from r = 0 the astrocytes would see
v_hat = -1 for the first ~tau_r while u, with tau_u < tau_r, forgets the cue.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from astrogate.errors import InputError
from astrogate.models.checks import shown
from astrogate.models.declared import Declared, check_value, docstring_section

NEURON_MODELS = ("rate", "poisson", "lif")
SPIKING = ("poisson", "lif")
READOUTS = ("trace", "event")

# -- neurons: u as in the rate model, spikes at rate nu_max (1 + tanh(gamma u)) / 2 ----------------------
SPIKING_NEURON_EQUATIONS = """
du/dt = (-u + I_rec + I_cue*int(t < t_cue_end) + I_ext) / tau_u : 1
rate = nu_max * (1 + tanh(gamma*u)) / 2 : Hz  # intended firing rate
dr/dt = -r / tau_r : Hz                      # readout trace; += 1/tau_r per spike, so r estimates the rate
dexpected/dt = rate : 1                      # integral of the intended rate: the expected spike count
v                       : 1                  # rate-coded estimate 2 r / nu_max - 1, stored once per step
I_rec                   : 1                  # recurrent input kappa K sum_mu g_mu F'(m_hat_mu) xi[mu, i] (summed)
I_cue                   : 1                  # cue current, applied while t < t_cue_end
I_ext                   : 1                  # the user's input (0 unless driven: run_regularly, summed synapses)
gamma                   : 1 (shared, constant)       # neural gain
tau_u                   : second (shared, constant)  # neuron time constant
t_cue_end               : second (shared, constant)  # the cue current is on while t < t_cue_end
nu_max                  : Hz (shared, constant)      # largest firing rate
tau_r                   : second (shared, constant)  # readout time constant
"""
LIF_EQUATIONS = """
dV/dt = (V_drive - V) / tau_m : volt (unless refractory)  # membrane; reset and rest at 0
V_drive = V_th / (1 - (1 - dt/tau_m)**((1/(rate + 1e-9*Hz) - t_ref)/dt + 0.5)) : volt  # fires at `rate`
V_th                    : volt (shared, constant)    # threshold above reset
tau_m                   : second (shared, constant)  # membrane time constant
t_ref                   : second (shared, constant)  # refractory period
"""
# added to the rate in V_drive: 1/rate at rate = 0 (tanh = -1 in floating point); D = V_th there anyway
RATE_FLOOR = 1e-9  # Hz, as written in LIF_EQUATIONS
POISSON_THRESHOLD = "rand() < rate*dt"
LIF_THRESHOLD = "V > V_th"
TRACE_RESET = "r += 1/tau_r"
LIF_RESET = "V = 0*volt\n" + TRACE_RESET
READOUT_UPDATE = "v = 2*r/nu_max - 1"  # replaces the rate model's v = tanh(gamma u)

# -- event-driven readout at the astrocytes -----------------------------------------------------------
EVENT_ASTROCYTE_EQUATIONS = """
ds/dt = -s / tau_r : Hz                      # sum_i xi[mu, i] r_i / N, updated by spikes
pattern_mean            : 1 (constant)       # mean_i xi[mu, i]: the -1 of v_hat, summed analytically
nu_max                  : Hz (shared, constant)      # largest firing rate
tau_r                   : second (shared, constant)  # readout time constant
"""
EVENT_OVERLAP_SYNAPSE = """
weight                  : 1 (constant)       # pattern[mu, i] / N_neurons
"""
EVENT_ON_SPIKE = "s_post += weight / tau_r_post"
EVENT_OVERLAP_UPDATE = "m = 2*s/nu_max - pattern_mean"


def check_neuron_model(neuron: str) -> None:
    """An InputError naming the neuron models, for any other name."""
    if not isinstance(neuron, str) or neuron not in NEURON_MODELS:
        raise InputError(f"unknown neuron model {shown(neuron)}: use one of {', '.join(NEURON_MODELS)}")


SPIKING_TABLE = (
    Declared("nu_max", 200.0, "largest firing rate, at tanh(gamma u) = 1 (LIF: below 1/t_ref)", unit="Hz",
             bounds="> 0", group="neurons"),
    Declared("tau_r", 20.0, "readout time constant of the rate estimate (it averages over about tau_r)", unit="ms",
             bounds="> 0", group="neurons"),
    Declared("readout", "trace", "trace (a per-neuron low-pass of the spikes) or event (each spike updates the "
             "astrocytes' overlap traces)", kind="choice", choices=READOUTS),
    Declared("tau_m", 10.0, "LIF membrane time constant", unit="ms", bounds="> 0", group="lif"),
    Declared("t_ref", 2.0, "LIF refractory period (nu_max < 1/t_ref)", unit="ms", bounds="> 0", group="lif"),
    Declared("V_th", 20.0, "LIF threshold above reset and rest", unit="mV", bounds="> 0", group="lif"),
    Declared("seed", 0, "Brian2's random numbers (Poisson draws) and the LIF initial phases", kind="seed",
             option=False),
)


@dataclass(frozen=True)
class SpikingParameters:
    # the docstring is generated from SPIKING_TABLE below
    nu_max: float = 200.0  # Hz
    tau_r: float = 20.0  # ms
    readout: str = "trace"
    tau_m: float = 10.0  # ms
    t_ref: float = 2.0  # ms
    V_th: float = 20.0  # mV
    seed: int = 0

    def __post_init__(self):
        for row in SPIKING_TABLE:
            object.__setattr__(self, row.name, check_value(row, getattr(self, row.name), "spiking parameter"))

    def check(self, neuron: str, dt: float) -> None:
        """Refuse what the neuron model cannot do at this time step."""
        check_neuron_model(neuron)
        if self.nu_max * dt * 1e-3 > 1:
            raise InputError(f"nu_max dt = {self.nu_max * dt * 1e-3:g} > 1: a Poisson neuron cannot fire more "
                             f"than once per step; lower --nu-max or --dt")
        if neuron == "lif" and self.nu_max * self.t_ref * 1e-3 >= 1:
            raise InputError(f"LIF neurons fire at most 1/t_ref = {1e3 / self.t_ref:g} Hz: --nu-max "
                             f"{self.nu_max:g} must be below it")
        if self.tau_r < dt:
            raise InputError(f"tau_r = {self.tau_r} ms is shorter than the step dt = {dt} ms")
        if neuron == "lif" and (self.tau_m <= dt or self.t_ref < dt):
            raise InputError(f"LIF neurons need tau_m > dt and t_ref >= dt = {dt} ms")

    def to_dict(self) -> dict:
        return asdict(self)


SpikingParameters.__doc__ = (
    "Spiking neurons and the rate readout: times in ms, rates in Hz, potentials in mV, or Brian2 quantities\n"
    "(``nu_max=100*Hz``) converted to those units.\n\n" + docstring_section(SPIKING_TABLE))


def target_rate(u, gamma: float, nu_max: float) -> np.ndarray:
    """nu_max (1 + tanh(gamma u)) / 2, in Hz."""
    return nu_max * (1.0 + np.tanh(gamma * np.asarray(u, dtype=float))) / 2.0


def lif_rate(drive, sp: SpikingParameters, dt: float) -> np.ndarray:
    """Mean LIF rate (Hz) of the simulated neuron (dt in ms) for a constant drive in mV, averaged over the
    rounding to whole steps: 0 at or below threshold."""
    drive = np.asarray(drive, dtype=float)
    above = drive > sp.V_th
    q = 1.0 - dt / sp.tau_m
    steps = np.log(1.0 - sp.V_th / np.where(above, drive, 2 * sp.V_th)) / np.log(q)
    return np.where(above, 1e3 / (sp.t_ref - dt / 2 + steps * dt), 0.0)


def lif_drive(rate, sp: SpikingParameters, dt: float) -> np.ndarray:
    """The calibration of LIF_EQUATIONS: the drive (mV) whose mean rate is `rate` (Hz), dt in ms."""
    rate = np.asarray(rate, dtype=float) + RATE_FLOOR
    q = 1.0 - dt / sp.tau_m
    return sp.V_th / (1.0 - q ** ((1e3 / rate - sp.t_ref) / dt + 0.5))


def lif_initial_state(u0, gamma: float, sp: SpikingParameters, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Membrane potential (mV) and time since the last spike (ms) of LIF neurons that have been firing at
    the rate of u(0) with phases uniform over the whole interspike interval, refractory part included
    (a potential drawn uniformly below threshold covers only the part after it, which leaves the
    population's firing periodic)."""
    rate = target_rate(u0, gamma, sp.nu_max)
    isi = 1e3 / (rate + RATE_FLOOR)  # ms
    since_spike = np.random.default_rng(sp.seed).uniform(0.0, 1.0, np.shape(rate)) * isi
    drive = lif_drive(rate, sp, dt)
    charging_steps = np.maximum(since_spike - sp.t_ref, 0.0) / dt
    V = drive * (1.0 - (1.0 - dt / sp.tau_m) ** charging_steps)
    return np.minimum(V, np.nextafter(sp.V_th, 0.0)), since_spike


def neuron_equations(neuron: str) -> str:
    return SPIKING_NEURON_EQUATIONS + (LIF_EQUATIONS if neuron == "lif" else "")


def neuron_group_options(neuron: str) -> dict:
    """threshold, reset and refractoriness for NeuronGroup."""
    if neuron == "poisson":
        return dict(threshold=POISSON_THRESHOLD, reset=TRACE_RESET)
    return dict(threshold=LIF_THRESHOLD, reset=LIF_RESET, refractory="t_ref")


def neuron_values(sp: SpikingParameters, neuron: str) -> dict:
    """Shared neuron variables with units: the rows of SPIKING_TABLE that the neurons hold (group "neurons",
    and "lif" for LIF neurons)."""
    from astrogate.models.brian2_equations import with_unit

    groups = ("neurons", "lif") if neuron == "lif" else ("neurons",)
    return {row.name: with_unit(getattr(sp, row.name), row.unit) for row in SPIKING_TABLE if row.group in groups}
