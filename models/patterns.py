"""Stored patterns and cues: generation, corruption, loading and validation."""

from __future__ import annotations

import errno
import math
import os
import warnings
from pathlib import Path

import numpy as np

from astrogate.errors import InputError
from astrogate.files import check_input_file
from astrogate.machine import gib, require_memory
from astrogate.models.checks import MAX_COUNT, fraction, pattern_bytes, whole_number


def random_patterns(K: int, N: int, rng: np.random.Generator, correlation: float = 0.0) -> np.ndarray:
    """K x N patterns of +-1 by the parent model: each bit copies a shared parent bit with
    probability `correlation`, otherwise it is an independent fair coin. Pairwise overlaps
    are then correlation**2 on average."""
    K, N = _check_sizes(K, N)
    correlation = fraction(correlation, "correlation")
    require_memory(pattern_bytes(K, N), f"generating K = {K} patterns of N = {N} neurons")
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
    K, N = _check_sizes(n_clusters * per_cluster, N)
    require_memory(pattern_bytes(K, N), f"generating K = {K} patterns of N = {N} neurons")
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
    """Real-valued patterns scaled so that mean(xi[mu]**2) = 1 (docs/model.md); +-1 patterns are unchanged.
    Each row is first divided by its largest |entry|, so that squares neither overflow (1e300) nor
    underflow (1e-200) to a false "all zeros"."""
    peak = np.max(np.abs(patterns), axis=1, keepdims=True)
    if np.any(peak == 0):
        row = int(np.flatnonzero(peak[:, 0] == 0)[0])
        raise InputError(f"pattern {row} is all zeros and cannot be normalised")
    scaled = patterns / peak
    return scaled / np.sqrt(np.mean(scaled**2, axis=1, keepdims=True))


def real_array(values, source: str) -> np.ndarray:
    """values as a float64 array if they are real numbers (booleans, integers, floats); an InputError naming
    the dtype otherwise: complex parts, dates, strings, records and objects are not patterns."""
    if isinstance(values, np.ma.MaskedArray) and np.ma.is_masked(values):
        raise InputError(f"{source}: a masked array with masked entries; fill them first (np.ma.filled)")
    # a plain ndarray as it is; subclasses (np.matrix, whose rows stay 2-D) and sequences converted
    array = values if type(values) is np.ndarray else None
    if array is None:
        try:
            array = np.asarray(values)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{source}: not a numeric array ({exc})") from None
    kind = array.dtype.kind
    if kind == "c":
        raise InputError(f"{source}: complex numbers ({array.dtype}); expected real numbers")
    if kind == "V" and array.dtype.names:
        raise InputError(f"{source}: a structured array (fields {', '.join(array.dtype.names)}); expected a "
                         f"plain numeric array")
    if kind not in "biuf":
        names = {"M": "dates", "m": "time differences", "U": "strings", "S": "byte strings", "O": "Python objects",
                 "V": "raw bytes"}
        raise InputError(f"{source}: not a numeric array: {names.get(kind, 'not numbers')} ({array.dtype}); "
                         f"expected real numbers")
    return array.astype(float, copy=False)


def finite_nonempty(array: np.ndarray, source: str) -> np.ndarray:
    """The array itself if it has entries and all are finite; an InputError naming `source` otherwise."""
    if array.size == 0:
        raise InputError(f"{source}: is empty (shape {array.shape})")
    if not np.all(np.isfinite(array)):
        raise InputError(f"{source}: contains NaN or inf")
    return array


def binary_as_signs(values, array: np.ndarray, source: str) -> np.ndarray:
    """Booleans, or entries that are all 0 or 1 (both present), as -1 and +1 (2 x - 1), with a warning: taken
    as real values they could never match a state of signs exactly (the model's states are +-1)."""
    is_bool = np.asarray(values).dtype.kind == "b"
    zero_one = np.any(array == 0) and np.any(array == 1) and np.all((array == 0) | (array == 1))
    if not (is_bool or zero_one):
        return array
    warnings.warn(f"{source}: {'booleans' if is_bool else 'entries of 0 and 1 only'} are read as -1 and +1 "
                  f"(2 x - 1), the signs the model stores; pass +-1 entries (or real values) to silence this",
                  UserWarning, stacklevel=3)
    return 2.0 * array - 1.0


def validate_patterns(patterns, source: str = "patterns") -> np.ndarray:
    """A finite float64 K x N array with K >= 1 and N >= 2, normalised; otherwise an InputError. Booleans or
    0/1 entries are converted to -1/+1 with a warning (binary_as_signs)."""
    xi = binary_as_signs(patterns, real_array(patterns, source), source)
    if xi.ndim != 2:
        raise InputError(f"{source}: expected a K x N matrix (2-D), got shape {xi.shape}")
    _check_sizes(*xi.shape, source=source)
    if not np.all(np.isfinite(xi)):
        raise InputError(f"{source}: contains NaN or inf")
    return normalise_patterns(xi)


def validate_cue(cue, n_neurons: int, source: str = "cue") -> np.ndarray:
    """A finite float64 cue of length N, or a B x N batch of cues; booleans or 0/1 entries converted to -1/+1
    with a warning, as for patterns."""
    c = binary_as_signs(cue, real_array(cue, source), source)
    if c.ndim not in (1, 2) or c.shape[-1] != n_neurons:
        raise InputError(f"{source}: expected length N = {n_neurons} (or B x {n_neurons}), got shape {c.shape}")
    return finite_nonempty(c, source)


NPY_MAGIC = b"\x93NUMPY"
# float64 copies of a K x N pattern array held at once while it is checked and normalised (validate_patterns:
# the float array, |xi|, the scaled array, its squares)
PATTERN_COPIES = 4


def load_array(path: str | Path, what: str, float_copies: int = 2, zero_rows: str | None = None) -> np.ndarray:
    """np.load of a .npy file with errors that name the file and the real cause. Before any data is read the
    header is checked against the file: a header that claims more data than the file holds is refused, and
    so is an array whose loading (plus `float_copies` float64 copies of it, as the caller will make) needs
    more memory than is available. zero_rows (the name of a row, "pattern"): refuse at once a file whose
    first row is all zeros because the file stores no data there (a sparse file's hole), which the caller
    would refuse after reading it all."""
    path = check_input_file(path, f"{what} file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(NPY_MAGIC))
            if head != NPY_MAGIC:
                kind = "a .npz archive, not a .npy array" if head.startswith(b"PK") else \
                    "not a .npy array (no NumPy header: a text file?)" if _is_text(head) else \
                    "not a .npy array (no NumPy header)"
                raise InputError(f"{what} file {str(path)!r} is not a readable .npy file: {kind}")
            fh.seek(0)
            version = np.lib.format.read_magic(fh)
            shape, fortran_order, dtype = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                           else np.lib.format.read_array_header_2_0)(fh)
            if dtype.hasobject:
                raise InputError(f"{what} file {str(path)!r} contains pickled (object) data, which is never loaded; "
                                 f"save a numeric array")
            _check_header(path, what, fh.tell(), shape, fortran_order, dtype, float_copies, zero_rows, fh.fileno())
        return np.load(path, allow_pickle=False)
    except InputError:
        raise
    except Exception as exc:  # numpy raises several kinds for damaged files
        raise InputError(f"{what} file {str(path)!r} is not a readable .npy array ({type(exc).__name__}: {exc})") from None


def _check_header(path: Path, what: str, offset: int, shape: tuple, fortran_order: bool, dtype: np.dtype,
                  float_copies: int, zero_rows: str | None, fd: int) -> None:
    """The checks of load_array made from the header alone (see there)."""
    count = math.prod(shape)
    data_bytes = count * dtype.itemsize
    stored = os.fstat(fd).st_size - offset
    described = f"shape {shape} of {dtype}"
    if stored < data_bytes:
        raise InputError(f"{what} file {str(path)!r}: its header describes {described} ({gib(data_bytes)} of data) "
                         f"but the file holds {max(stored, 0)} bytes after it: a truncated or damaged file")
    require_memory(data_bytes + float_copies * 8 * count, f"loading the {what} file {str(path)!r} ({described})")
    # real numbers only: other dtypes are refused for what they are (validate_patterns), not as zeros
    real = dtype.kind in "biuf"
    if zero_rows and real and len(shape) == 2 and not fortran_order and count and _first_row_is_a_hole(
            fd, offset, shape[1] * dtype.itemsize):
        raise InputError(f"{what} file {str(path)!r}: {zero_rows} 0 is all zeros (the file stores no data "
                         f"there: a sparse file of {gib(data_bytes)} of zeros?) and cannot be normalised")


# bytes of the first row that _first_row_is_a_hole reads (where the file stores some): beyond it, it gives up
ZERO_ROW_READ_LIMIT = 1 << 16


def _first_row_is_a_hole(fd: int, start: int, row_bytes: int) -> bool:
    """Whether bytes [start, start + row_bytes) of the file lie (at least in part) in a hole of a sparse file
    and read as zeros throughout, known from SEEK_DATA / SEEK_HOLE and at most ZERO_ROW_READ_LIMIT stored bytes
    read; False where that cannot be told, or where the row is stored in full (it is read and checked then)."""
    if not hasattr(os, "SEEK_DATA"):
        return False
    end, position, read, holes = start + row_bytes, start, 0, False
    try:
        while position < end:
            try:
                data = os.lseek(fd, position, os.SEEK_DATA)
            except OSError as exc:
                return exc.errno == errno.ENXIO  # no data after position: the rest is a hole
            if data >= end:
                return True
            holes |= data > position
            hole = min(os.lseek(fd, data, os.SEEK_HOLE), end)
            read += hole - data
            if read > ZERO_ROW_READ_LIMIT or any(os.pread(fd, hole - data, data)):
                return False
            position = hole
        return holes
    except OSError:  # a file system that cannot say
        return False

def _is_text(head: bytes) -> bool:
    return all(32 <= b < 127 or b in b"\t\r\n" for b in head)


def _check_sizes(K, N, source: str = "patterns") -> tuple[int, int]:
    K, N = whole_number(K, "K", -MAX_COUNT), whole_number(N, "N", -MAX_COUNT)
    if K < 1:
        raise InputError(f"{source}: need at least one pattern (K >= 1), got K = {K}")
    if N < 2:
        raise InputError(f"{source}: need at least two neurons (N >= 2), got N = {N}")
    return K, N
