"""Writing results: errors name the path; nothing is lost to a half-written file (api/files.py)."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from astrogate.errors import InputError
from astrogate.files import write_output, write_text


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


def write_json(path: str | Path, data: dict, what: str = "JSON output") -> Path:
    text = json.dumps(to_jsonable(data), indent=None, separators=(",", ":"))
    return write_text(path, text, what)


def write_table(path: str | Path, table, what: str = "CSV output") -> Path:
    """A pandas DataFrame as CSV."""
    return write_output(path, what, lambda fh: table.to_csv(fh, index=False))


def write_netcdf(path: str | Path, dataset, what: str = "netCDF output") -> Path:
    """An xarray Dataset as netCDF3 (SciPy engine), serialised in memory and written as any output."""
    data = dataset.to_netcdf(engine="scipy")
    return write_output(path, what, lambda fh: fh.write(bytes(data)), binary=True)


def figure_formats() -> dict[str, str]:
    from matplotlib.backend_bases import FigureCanvasBase

    return FigureCanvasBase.get_supported_filetypes()


def figure_path(path: str | Path, what: str = "plot") -> Path:
    """The path of a figure, its format named by its extension (checked before anything is drawn)."""
    path = Path(path)
    formats = figure_formats()
    if path.suffix.lstrip(".").lower() not in formats:
        named = f"'{path.suffix}' is not a figure format" if path.suffix else "no extension names its format"
        raise InputError(f"{what} {str(path)!r}: {named}; use one of {', '.join('.' + f for f in sorted(formats))}")
    return path


def save_figure(fig, path: str | Path, what: str = "plot", **savefig_options) -> Path:
    """fig.savefig through write_output (a read-only folder or a full disk is a one-line error); closes fig."""
    import matplotlib.pyplot as plt

    path = figure_path(path, what)
    try:
        return write_output(path, what, lambda fh: fig.savefig(_Named(fh, str(path)), format=path.suffix[1:].lower(),
                                                               **savefig_options), binary=True)
    finally:
        plt.close(fig)


class _Named:
    """A file object named after the output it fills (not its temporary file): what savefig's callers see."""

    def __init__(self, fh, name: str):
        self._fh, self.name = fh, name

    def __getattr__(self, attribute):
        return getattr(self._fh, attribute)


def prepare_output(path: str | Path, what: str = "output") -> Path:
    """Check an output path before the work that fills it: a figure's format, not a folder, writable."""
    from astrogate.files import check_writable

    path = Path(path)
    if what == "plot":
        figure_path(path, what)
    return check_writable(path, what)


def write_csv(path: str | Path, rows: list[dict], columns=None, float_format: str | None = None) -> Path:
    """Rows of dicts as a CSV table at `path` (the path first, as write_json's; columns: `columns`, or the first
    row's keys); floats formatted with `float_format` (for example ".6g") where given, else as Python writes them."""
    if not isinstance(path, (str, Path)):
        raise TypeError(f"write_csv(path, rows, ...): the path comes first, got {type(path).__name__}")
    columns = list(columns if columns is not None else rows[0])

    def write(fh):
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (format(v, float_format) if float_format and isinstance(v, float) else v)
                             for k, v in row.items()})

    return write_output(path, "CSV output", write)
