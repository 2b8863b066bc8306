"""Retrieval problems: stored patterns, the patterns the cues come from (targets) and the corrupted cues.

Every caller makes its problems here: `generated_set` for patterns by the parent model (one cue for
`astrogate recall`, a batch for a sweep point), `corrupt` for the cues of any pattern set (the retrieval
benchmark's families, analysis/benchmark.py `make_problem`, included). The random draws are made in one
fixed order (patterns, targets, then each corruption in turn), so a seed gives the same problem wherever
it is made.
"""

from __future__ import annotations

import numpy as np

from astrogate.errors import InputError
from astrogate.models.patterns import flip_cue, mask_cue, random_patterns

CORRUPTIONS = ("flip", "mask", "occlude")


def corrupt(clean: np.ndarray, corruptions, rng: np.random.Generator, image_shape: tuple[int, int] | None = None):
    """Cues from clean patterns (B x N, or N), by each (kind, fraction) of `corruptions` in turn:
    'flip' negates exactly round(fraction N) entries, 'mask' sets as many to 0 (unknown), 'occlude' (images of
    `image_shape`) sets the bottom fraction of the rows to 0. A fraction 0 draws nothing."""
    cues = np.array(clean, dtype=float, copy=True)
    for kind, fraction in corruptions:
        if kind not in CORRUPTIONS:
            raise InputError(f"unknown corruption {kind!r}: use one of {', '.join(CORRUPTIONS)}")
        if kind == "flip":
            cues = flip_cue(cues, fraction, rng)
        elif fraction == 0:
            continue
        elif kind == "mask":
            cues = mask_cue(cues, fraction, rng)
        else:
            if image_shape is None:
                raise InputError("corruption 'occlude' applies to image pattern sets only")
            height, width = image_shape
            images = cues.reshape(-1, height, width)
            images[:, height - int(round(fraction * height)):, :] = 0.0
            cues = images.reshape(cues.shape)
    return cues


def generated_set(K: int, N: int, rng: np.random.Generator, correlation: float = 0.0, n_cues: int | None = None,
                  flip: float = 0.2, mask: float = 0.0, targets=None):
    """Patterns by the parent model (K x N, pairwise correlation `correlation`), targets (drawn uniformly, with
    replacement, unless given) and cues made from them by flipping a fraction `flip` of the bits, then masking
    a fraction `mask`. n_cues None: one target (an int) and one cue (N); else arrays of n_cues."""
    patterns = random_patterns(K, N, rng, correlation)
    if targets is None:
        targets = rng.integers(K) if n_cues is None else rng.integers(K, size=n_cues)
    targets_array = np.atleast_1d(np.asarray(targets))
    if not np.issubdtype(targets_array.dtype, np.integer) or np.any((targets_array < 0) | (targets_array >= K)):
        raise InputError(f"target {targets!r} is not a pattern index (0 <= target < K = {K})")
    cues = corrupt(patterns[targets], [("flip", flip), ("mask", mask)], rng)
    return patterns, targets, cues
