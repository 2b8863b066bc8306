"""Similarity functions F(m) of the overlap and their derivatives F'(m) (docs/model.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from astrogate.errors import InputError


@dataclass(frozen=True)
class Similarity:
    """F(m) = m^2/2 (quadratic), m (linear) or m^n/n (power n)."""

    kind: str
    power: int = 2

    @property
    def name(self) -> str:
        return f"power:{self.power}" if self.kind == "power" else self.kind

    def F(self, m: np.ndarray) -> np.ndarray:
        if self.kind == "quadratic":
            return 0.5 * m * m
        if self.kind == "linear":
            return m.copy() if isinstance(m, np.ndarray) else m
        return m**self.power / self.power

    def dF(self, m: np.ndarray) -> np.ndarray:
        if self.kind == "quadratic":
            return m
        if self.kind == "linear":
            return np.ones_like(m)
        return m ** (self.power - 1)

    def brian2_expressions(self, overlap: str = "m") -> tuple[str, str]:
        """(F, F') as Brian2 expression strings in the variable `overlap`."""
        if self.kind == "quadratic":
            return f"0.5*{overlap}**2", overlap
        if self.kind == "linear":
            return overlap, "1.0"
        n = self.power
        return f"{overlap}**{n}/{n}", f"{overlap}**{n - 1}"


def parse_similarity(similarity: str | Similarity) -> Similarity:
    """'quadratic', 'linear' or 'power:n' (n an integer >= 2)."""
    if isinstance(similarity, Similarity):
        return similarity
    text = str(similarity).strip().lower()
    if text in ("quadratic", "linear"):
        return Similarity(text)
    if text.startswith("power:"):
        try:
            n = int(text.split(":", 1)[1])
        except ValueError:
            n = 0
        if n < 2:
            raise InputError(f"similarity {similarity!r}: the power must be an integer >= 2, as in 'power:3'")
        return Similarity("power", n)
    raise InputError(f"unknown similarity {similarity!r}: use 'quadratic', 'linear' or 'power:n' (n >= 2)")
