"""Spiking retrievals against the softmax fixed point of the abstract model.

The astrocytes of a spiking network see the rate-coded overlaps m_hat (models/spiking_equations.py).
Two distances say how close its gains come to the abstract model:

- the softmax residual max_mu |g_t - softmax(beta F(m_hat_t))_mu| at each recorded step, averaged over the
  second half of the run (the first half holds the retrieval transient): how far the astrocytes are from
  the fixed point of their own, noisy, input;
- the time-averaged gains of the second half against the abstract model's fixed point g* for the same
  cue (the abstract model run to convergence).

The noise in m_hat comes from counting spikes: a neuron firing at rate f has a readout with variance
f / (2 tau_r), so m_hat has a standard deviation ~ 1 / sqrt(N nu_max tau_r) and the residual should shrink
like a power of N, nu_max and tau_r (the study fits the exponents).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import softmax

from astrogate.models.abstract import AstroGateModel
from astrogate.models.parameters import Parameters
from astrogate.models.spiking_equations import SpikingParameters


def softmax_residual_trace(model: AstroGateModel, m_hat: np.ndarray, g: np.ndarray) -> np.ndarray:
    """max_mu |g_t - softmax(beta F(m_hat_t))| for traces m_hat, g of shape (T, K)."""
    target = softmax(model.beta * model.F.F(np.asarray(m_hat)), axis=-1)
    return np.max(np.abs(np.asarray(g) - target), axis=-1)


def late_half(trace: np.ndarray) -> np.ndarray:
    """The second half of a trace (the retrieval transient is in the first)."""
    trace = np.asarray(trace)
    return trace[len(trace) // 2:]
