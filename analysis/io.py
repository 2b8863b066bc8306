"""Writing results: errors name the path; nothing is lost to a half-written file."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from astrogate.errors import InputError


def to_jsonable(obj):
    """NumPy arrays and scalars as lists and floats (float64 repr round-trips exactly)."""
    if isinstance(obj, Mapping):  # dicts and result objects such as RecallResult
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None if np.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, Path):
        return str(obj)
    return obj


def prepare_output(path: str | Path, what: str = "output") -> Path:
    """Create the parent folder; an InputError naming the path if that is impossible."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the folder for {what} {str(path)!r}: {exc.strerror}") from None
    if path.is_dir():
        raise InputError(f"{what} {str(path)!r} is a folder, expected a file path")
    return path


def write_csv(rows: list[dict], path: str | Path, columns=None, float_format: str | None = None) -> Path:
    """Rows of dicts as a CSV table (columns: `columns`, or the first row's keys); floats formatted with
    `float_format` (for example ".6g") where given, else as Python writes them."""
    path = prepare_output(path, "CSV output")
    columns = list(columns if columns is not None else rows[0])
    try:
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: (format(v, float_format) if float_format and isinstance(v, float) else v)
                                 for k, v in row.items()})
    except OSError as exc:
        raise InputError(f"cannot write CSV output {str(path)!r}: {exc.strerror}") from None
    return path


def write_json(path: str | Path, data: dict) -> Path:
    """Atomic write: a temporary file in the same folder, then a rename."""
    path = prepare_output(path, "JSON output")
    text = json.dumps(to_jsonable(data), indent=None, separators=(",", ":"))
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"cannot write JSON output {str(path)!r}: {exc.strerror}") from None
    return path
