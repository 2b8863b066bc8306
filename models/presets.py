"""Named protocols: model parameters and run options together, usable as the keywords of `recall`.

``astrogate.PAPER_PRESET`` is the protocol of Vivet & Arenas (2026), Sec. II.3.1 and appendix .5, in astrogate's
units (1 paper time unit = 1 ms; docs/model.md, "The paper's protocol"):

    x(0) = the cue, p(0) = 1/K, T = 0.01, tau_x = tau_p = 1, dt = 0.001, t_f = 10,
    forward Euler on eq. 6 as written (form "replicator"), observables at t_f (tol = 0: no early stop),

and sigma = PAPER_SIGMA, which the paper does not state (chosen from a measurement, docs/results/paper.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from astrogate.errors import InputError
from astrogate.models.parameters import Parameters

# the neural gain of the paper's protocol: not stated in the paper; chosen from the sigma dependence of its
# default point (N = 30, K = 100, 6 flipped bits), docs/results/paper.md
PAPER_SIGMA = 3.0


@dataclass(frozen=True)
class Preset(Mapping):
    """A protocol: `params` (keywords of Parameters) and `run` (keywords of AstroGateModel.run and recall).
    As a mapping it is both together, so that ``recall(problem, **preset)`` runs it; `parameters()` is the
    Parameters, ``model.run(cue, **preset.run)`` runs it on an AstroGateModel."""

    name: str
    description: str
    params: Mapping = field(default_factory=dict)
    run: Mapping = field(default_factory=dict)

    def parameters(self) -> Parameters:
        return Parameters(**self.params)

    def __getitem__(self, key):
        if key in self.params:
            return self.params[key]
        return self.run[key]

    def __iter__(self):
        return iter((*self.params, *self.run))

    def __len__(self):
        return len(self.params) + len(self.run)


PAPER_PRESET = Preset(
    name="paper",
    description="Vivet & Arenas (2026): x(0) = cue, p(0) = 1/K, T = 0.01, tau_x = tau_p = 1 ms, "
                f"sigma = {PAPER_SIGMA:g}, forward Euler on eq. 6 (replicator form), dt = 0.001 ms, t_f = 10 ms",
    params={"T": 0.01, "tau_p": 1.0, "tau_x": 1.0, "sigma": PAPER_SIGMA, "dt": 0.001, "cue_scale": 1.0},
    run={"duration": 10.0, "tol": 0.0, "method": "euler", "form": "replicator"},
)
PRESETS = {PAPER_PRESET.name: PAPER_PRESET}


def preset(name: str) -> Preset:
    """A named preset ("paper"); an InputError names the known ones."""
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}: use {', '.join(PRESETS)}")
    return PRESETS[name]
