"""Model parameters, declared once in PARAMETER_TABLE (docs/model.md, "Parameters"), in astrogate's names and in
the paper's (Vivet & Arenas 2026): T, tau_p, tau_x, sigma. Times are in ms in the abstract model.

The paper's names convert exactly (docs/model.md derives the mapping):

    beta = N / T,    tau_g = tau_p / T,    tau_u = tau_x,    gamma = sigma    (kappa = 1, cue_scale = 1)

T is held as given until N is known: `Parameters` stores `T` (the temperature; default 1/20, i.e. beta = 20 N)
or `beta` (given explicitly, then T = N / beta is known once N is), and `resolved(N)` makes both explicit, with
`N` recorded. tau_p is converted to tau_g = tau_p / T when given (T must then be known without N).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import asdict, dataclass, fields

from astrogate.errors import InputError
from astrogate.models.checks import euler_stable_dt
from astrogate.models.declared import Declared, check_value, docstring_section
from astrogate.models.similarity import Similarity, parse_similarity

# beta = BETA_PER_NEURON * N unless given (T = 1 / BETA_PER_NEURON): 20x a pattern's Hebbian energy for F
# quadratic (docs/model.md)
BETA_PER_NEURON = 20.0
DEFAULT_T = 1.0 / BETA_PER_NEURON

PARAMETER_TABLE = (
    Declared("gamma", 3.0, "neural gain: the slope of v = tanh(gamma u); higher is closer to binary neurons",
             bounds="> 0", paper="sigma", equation="eq. 1", group="neurons"),
    Declared("kappa", 1.0, "coupling: the strength of the recurrent (gated Hebbian) input", bounds=">= 0",
             paper="1", equation="eq. 5"),
    Declared("beta", None, "allocation inverse temperature: how sharply the gains pick the best-matching patterns "
             "(0: classical Hopfield)", bounds=">= 0", default_text="20 N", paper="N / T", equation="eq. 7",
             group="astrocytes", optional=True),
    Declared("tau_u", 10.0, "neuron time constant", unit="ms", bounds="> 0", paper="tau_x", equation="eq. 4",
             group="neurons"),
    Declared("tau_g", 20.0, "astrocyte time constant of the logit form", unit="ms", bounds="> 0",
             paper="tau_p / T", equation="eq. 6", group="astrocytes"),
    Declared("similarity", "quadratic", "the similarity function F: quadratic, linear or power:n",
             kind="similarity", paper="f = N F(m) with F quadratic", equation="eq. 8"),
    Declared("dt", 0.1, "forward-Euler step, and the Brian2 clock", unit="ms", bounds="> 0", paper="dt",
             equation="appendix .5"),
    Declared("cue_scale", 0.5, "initial state u(0) = cue_scale * cue", paper="1, x(0) = the cue",
             equation="Sec. II.3.1"),
    Declared("T", DEFAULT_T, "temperature: beta = N / T", bounds="> 0", paper="T", equation="eq. 7",
             default_text="0.05, i.e. beta = 20 N", same_as="beta", optional=True),
    Declared("N", None, "number of neurons the parameters are resolved for (set by resolved(N))", kind="count",
             default_text="None", option=False, optional=True),
    # the paper's names of fields above: keywords and read-only properties, not fields
    Declared("tau_p", None, "astrocyte time constant of eq. 6: tau_g = tau_p / T", unit="ms", bounds="> 0",
             paper="tau_p", equation="eq. 6", default_text="T tau_g = 1 ms", same_as="tau_g"),
    Declared("tau_x", None, "neuron time constant, the same as tau_u", unit="ms", bounds="> 0", paper="tau_x",
             equation="eq. 4", default_text="tau_u", same_as="tau_u"),
    Declared("sigma", None, "neural gain, the same as gamma", bounds="> 0", paper="sigma", equation="eq. 1",
             default_text="gamma", same_as="gamma"),
)
TABLE = {row.name: row for row in PARAMETER_TABLE}
# the names a user may give: every row that is an option (command line, sweep axis, benchmark option)
PARAMETER_NAMES = tuple(row.name for row in PARAMETER_TABLE if row.option)
# paper name -> the field holding the same quantity; one of each pair at a time
PAPER_NAMES = {row.name: row.same_as for row in PARAMETER_TABLE if row.same_as}
# either name of a quantity -> the other
SAME_QUANTITY = {**PAPER_NAMES, **{field: paper for paper, field in PAPER_NAMES.items()}}
PROPERTIES = ("tau_p", "tau_x", "sigma")  # paper names that are properties (T is a field)


@dataclass(frozen=True, init=False)
class Parameters:
    # the docstring is generated from PARAMETER_TABLE below
    gamma: float = 3.0
    kappa: float = 1.0
    beta: float | None = None
    tau_u: float = 10.0
    tau_g: float = 20.0
    similarity: str = "quadratic"
    dt: float = 0.1
    cue_scale: float = 0.5
    T: float | None = DEFAULT_T
    N: int | None = None

    def __init__(self, **values):
        unknown = sorted(set(values) - set(TABLE))
        if unknown:
            raise InputError(f"unknown parameter(s): {', '.join(unknown)} (known: {', '.join(PARAMETER_NAMES)})")
        given = {name: check_value(TABLE[name], value) for name, value in values.items()}
        for paper, field in PAPER_NAMES.items():
            both = (given.get(paper) is not None and given.get(field) is not None) if paper == "T" else \
                (paper in given and field in given)
            if both and not (paper == "T" and given.get("N") is not None):
                raise InputError(f"give {field} or {paper}, not both: they are one quantity "
                                 f"({_relation(paper)}; docs/model.md)")
        state = {f.name: f.default for f in fields(self)}
        state.update({name: given[name] for name in given if name not in PROPERTIES})
        state["tau_u"] = given.get("tau_x", state["tau_u"])
        state["gamma"] = given.get("sigma", state["gamma"])
        if given.get("beta") is not None and given.get("T") is None:
            state["T"] = None  # given beta: T = N / beta, unknown until N is
        if state["beta"] is None and state["T"] is None:
            state["T"] = DEFAULT_T
        if state["N"] is not None:
            _resolve(state)
        if given.get("tau_p") is not None:
            if state["T"] is None:
                raise InputError(f"tau_p needs the temperature: tau_g = tau_p / T, and with beta = {state['beta']:g} "
                                 f"given, T = N / beta depends on N; give T instead of beta, or tau_g")
            state["tau_g"] = given["tau_p"] / state["T"]
        for name, value in state.items():
            object.__setattr__(self, name, value)
        # the one check of several fields together: dt against the time constants
        euler_stable_dt(self.dt, {"tau_u": self.tau_u, "tau_g": self.tau_g})

    # -- the paper's names (read back) ---------------------------------------------------------------
    @property
    def tau_p(self) -> float | None:
        """The paper's astrocyte time constant T tau_g (ms); None while T is unknown (beta given, N not)."""
        return None if self.T is None else self.T * self.tau_g

    @property
    def tau_x(self) -> float:
        """The paper's neuron time constant: tau_u (ms)."""
        return self.tau_u

    @property
    def sigma(self) -> float:
        """The paper's neural gain: gamma."""
        return self.gamma

    @property
    def F(self) -> Similarity:
        return parse_similarity(self.similarity)

    def beta_for(self, n_neurons: int) -> float:
        """beta for a network of n_neurons: the given beta, or N / T."""
        return float(self.beta) if self.beta is not None else n_neurons / self.T

    def resolved(self, n_neurons: int) -> "Parameters":
        """A copy with beta and T both explicit for a network of n_neurons (N records it). Parameters resolved
        for another N keep their beta (and so get another T)."""
        return self if self.N == n_neurons else self.updated(N=n_neurons)

    def to_dict(self) -> dict:
        """The fields (``Parameters(**p.to_dict()) == p``)."""
        return asdict(self)

    def paper_dict(self) -> dict:
        """The parameters in the paper's names: T, tau_p, tau_x, sigma (None where T is not yet known)."""
        return {"T": self.T, "tau_p": self.tau_p, "tau_x": self.tau_x, "sigma": self.sigma}

    def updated(self, **changes) -> "Parameters":
        """A copy with some parameters changed, in either vocabulary: a change replaces the other name of
        the same quantity (updated(T=0.01) drops a given beta, updated(tau_p=1) sets tau_g = tau_p / T)."""
        unknown = sorted(set(changes) - set(TABLE))
        if unknown:
            raise InputError(f"unknown parameter(s): {', '.join(unknown)} (known: {', '.join(PARAMETER_NAMES)})")
        base = self.to_dict()
        for paper, field in PAPER_NAMES.items():
            if paper in changes:
                base.pop(field)
            if field in changes:
                base.pop(paper, None)
        if "N" in changes and base.get("beta") is not None and "T" not in changes:
            base.pop("T", None)  # another N keeps a resolved beta (and so changes T)
        return Parameters(**{**base, **changes})


def _relation(paper: str) -> str:
    return {"T": "beta = N / T", "tau_p": "tau_g = tau_p / T", "tau_x": "tau_u = tau_x",
            "sigma": "gamma = sigma"}[paper]


def _resolve(state: dict) -> None:
    """beta and T both explicit once N is known: beta = N / T, or T = N / beta."""
    N, beta, T = state["N"], state["beta"], state["T"]
    if beta is None:
        state["beta"] = N / T
    elif T is None:
        state["T"] = N / beta if beta > 0 else None  # beta = 0: T infinite (classical Hopfield)
    elif not math.isclose(beta, N / T, rel_tol=1e-12):
        raise InputError(f"beta = {beta:g} and T = {T:g} disagree for N = {N} (beta = N / T): give one of them")


def check_field(name: str, value) -> None:
    """The checks of one parameter on its own (a sweep checks each value of an axis with this, and every
    combination with Parameters); an InputError naming the parameter."""
    if name not in TABLE:
        raise InputError(f"unknown parameter {name!r} (known: {', '.join(PARAMETER_NAMES)})")
    check_value(TABLE[name], value)


Parameters.__doc__ = (
    "Parameters of the model (docs/model.md), in astrogate's names or the paper's (T, tau_p, tau_x, sigma).\n\n"
    "Every parameter is a keyword; times are plain numbers in ms or Brian2 quantities (``tau_u=10*ms``).\n"
    "T is None while beta is given and N is not yet known (T = N / beta), and for beta = 0 (T infinite);\n"
    "tau_p (T tau_g) is then None too. `resolved(N)` makes beta and T explicit.\n"
    "Both names of one quantity at once (beta and T, tau_g and tau_p, tau_u and tau_x, gamma and sigma) are\n"
    "refused; T and beta may come together only with N, and must then agree. The paper's names read back as\n"
    "``params.T``, ``params.tau_p``, ``params.tau_x``, ``params.sigma``.\n\n"
    + docstring_section(PARAMETER_TABLE)
)
Parameters.__signature__ = inspect.Signature(
    [inspect.Parameter(row.name, inspect.Parameter.KEYWORD_ONLY, default=row.default) for row in PARAMETER_TABLE])
