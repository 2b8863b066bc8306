"""Stored patterns and cues: generation, corruption, loading and validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from astrogate.errors import InputError


def random_patterns(K: int, N: int, rng: np.random.Generator, correlation: float = 0.0) -> np.ndarray:
    """K x N patterns of +-1 by the parent model: each bit copies a shared parent bit with
    probability `correlation`, otherwise it is an independent fair coin. Pairwise overlaps
    are then correlation**2 on average."""
    _check_sizes(K, N)
    if not 0.0 <= correlation <= 1.0:
        raise InputError(f"correlation must lie in [0, 1], got {correlation!r}")
    parent = rng.choice([-1.0, 1.0], size=N)
    own = rng.choice([-1.0, 1.0], size=(K, N))
    copies = rng.random((K, N)) < correlation
    return np.where(copies, parent, own)


def clustered_patterns(
    n_clusters: int, per_cluster: int, N: int, rng: np.random.Generator, member_flip: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """Prototypes with noisy members: each member flips each prototype bit with probability
    member_flip. Members of one cluster are distractors that look like each other.
    Returns (patterns K x N, cluster label per pattern)."""
    _check_sizes(n_clusters * per_cluster, N)
    if not 0.0 <= member_flip <= 0.5:
        raise InputError(f"member_flip must lie in [0, 0.5], got {member_flip!r}")
    prototypes = rng.choice([-1.0, 1.0], size=(n_clusters, N))
    labels = np.repeat(np.arange(n_clusters), per_cluster)
    flips = rng.random((labels.size, N)) < member_flip
    return np.where(flips, -prototypes[labels], prototypes[labels]), labels


def flip_cue(pattern: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """The pattern with exactly round(fraction * N) entries negated (per row for a batch)."""
    if not 0.0 <= fraction <= 1.0:
        raise InputError(f"flip fraction must lie in [0, 1], got {fraction!r}")
    return _corrupt(pattern, fraction, rng, lambda x, idx: -x[idx])


def mask_cue(pattern: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """The pattern with exactly round(fraction * N) entries set to 0 (unknown)."""
    if not 0.0 <= fraction <= 1.0:
        raise InputError(f"mask fraction must lie in [0, 1], got {fraction!r}")
    return _corrupt(pattern, fraction, rng, lambda x, idx: 0.0)


def _corrupt(pattern, fraction, rng, new_values):
    cue = np.array(pattern, dtype=float, copy=True)
    rows = cue.reshape(-1, cue.shape[-1])
    n_changed = int(round(fraction * rows.shape[1]))
    for row in rows:
        idx = rng.choice(rows.shape[1], size=n_changed, replace=False)
        row[idx] = new_values(row, idx)
    return cue


def normalise_patterns(patterns: np.ndarray) -> np.ndarray:
    """Real-valued patterns scaled so that mean(xi[mu]**2) = 1 (docs/model.md); +-1 patterns are unchanged."""
    power = np.mean(patterns**2, axis=1, keepdims=True)
    if np.any(power == 0):
        row = int(np.flatnonzero(power[:, 0] == 0)[0])
        raise InputError(f"pattern {row} is all zeros and cannot be normalised")
    return patterns / np.sqrt(power)


def validate_patterns(patterns, source: str = "patterns") -> np.ndarray:
    """A finite float64 K x N array with K >= 1 and N >= 2, normalised; otherwise an InputError."""
    try:
        xi = np.asarray(patterns, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{source}: not a numeric array ({exc})") from None
    if xi.ndim != 2:
        raise InputError(f"{source}: expected a K x N matrix (2-D), got shape {xi.shape}")
    _check_sizes(*xi.shape, source=source)
    if not np.all(np.isfinite(xi)):
        raise InputError(f"{source}: contains NaN or inf")
    return normalise_patterns(xi)


def validate_cue(cue, n_neurons: int, source: str = "cue") -> np.ndarray:
    """A finite float64 cue of length N, or a B x N batch of cues."""
    try:
        c = np.asarray(cue, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{source}: not a numeric array ({exc})") from None
    if c.ndim not in (1, 2) or c.shape[-1] != n_neurons:
        raise InputError(f"{source}: expected length N = {n_neurons} (or B x {n_neurons}), got shape {c.shape}")
    if c.size == 0:
        raise InputError(f"{source}: is empty")
    if not np.all(np.isfinite(c)):
        raise InputError(f"{source}: contains NaN or inf")
    return c


def load_array(path: str | Path, what: str) -> np.ndarray:
    """np.load with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} file {str(path)!r} does not exist")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises several kinds for unreadable files
        raise InputError(f"{what} file {str(path)!r} is not a readable .npy array ({type(exc).__name__}: {exc})") from None


def _check_sizes(K: int, N: int, source: str = "patterns") -> None:
    if K < 1:
        raise InputError(f"{source}: need at least one pattern (K >= 1), got K = {K}")
    if N < 2:
        raise InputError(f"{source}: need at least two neurons (N >= 2), got N = {N}")
