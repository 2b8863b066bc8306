"""Model parameters and their defaults (docs/model.md, "Parameters and their defaults"). Times are in milliseconds in the abstract model."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from astrogate.errors import InputError
from astrogate.models.checks import euler_stable_dt
from astrogate.models.similarity import Similarity, parse_similarity
from astrogate.models.units import convert_fields

# beta = BETA_PER_NEURON * N unless given: 20x a pattern's Hebbian energy for F quadratic (docs/model.md)
BETA_PER_NEURON = 20.0


@dataclass(frozen=True)
class Parameters:
    """Parameters of the model (the defaults of the model page, docs/model.md). Times are plain numbers in ms, or Brian2 quantities
    (``tau_u=10*ms``), which are converted to ms."""

    gamma: float = 3.0  # neural gain of v = tanh(gamma u)
    kappa: float = 1.0  # recurrent coupling
    beta: float | None = None  # allocation inverse temperature; None -> 20 N
    tau_u: float = 10.0  # ms, neurons
    tau_g: float = 20.0  # ms, astrocytes
    similarity: str = "quadratic"  # 'quadratic', 'linear' or 'power:n'
    dt: float = 0.1  # ms, forward-Euler step (the Brian2 clock)
    cue_scale: float = 0.5  # u(0) = cue_scale * cue

    def __post_init__(self):
        convert_fields(self, {"tau_u": "ms", "tau_g": "ms", "dt": "ms"})
        for name in asdict(self):
            check_field(name, getattr(self, name))
        # the one check of several fields together: dt against the time constants
        euler_stable_dt(self.dt, {"tau_u": self.tau_u, "tau_g": self.tau_g})

    @property
    def F(self) -> Similarity:
        return parse_similarity(self.similarity)

    def beta_for(self, n_neurons: int) -> float:
        return BETA_PER_NEURON * n_neurons if self.beta is None else float(self.beta)

    def resolved(self, n_neurons: int) -> "Parameters":
        """A copy with beta made explicit for a network of n_neurons."""
        return replace(self, beta=self.beta_for(n_neurons))

    def to_dict(self) -> dict:
        return asdict(self)

    def updated(self, **changes) -> "Parameters":
        unknown = set(changes) - set(asdict(self))
        if unknown:
            raise InputError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
        return replace(self, **changes)


def check_field(name: str, value) -> None:
    """The checks of one parameter on its own (a sweep checks each value of an axis with this, and every
    combination with Parameters); an InputError naming the parameter."""
    if name == "similarity":
        parse_similarity(value)  # raises on an unknown name
        return
    if name == "beta" and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"parameter {name} must be a finite number, got {value!r}")
    if name in ("tau_u", "tau_g", "dt", "gamma") and value <= 0:
        raise InputError(f"parameter {name} must be positive, got {value!r}")
    if name == "kappa" and value < 0:
        raise InputError(f"parameter kappa must be >= 0, got {value!r}")
    if name == "beta" and value < 0:
        raise InputError(f"parameter beta must be finite and >= 0, got {value!r}")
