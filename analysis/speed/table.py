"""The speed table (speed.csv): its columns, its rows, reading it back, and the exponents fitted to it."""

from __future__ import annotations

import csv
from pathlib import Path

from astrogate.analysis.metrics import log_log_slope
from astrogate.errors import InputError

CSV_COLUMNS = ("simulator", "N", "K", "seconds_per_step", "seconds_per_simulated_second", "ratio_to_limit",
               "build_seconds", "compile_seconds", "peak_rss_mb", "gpu_memory_mb", "synaptic_mb", "threads",
               "weight_dtype", "trials_per_second", "fraction_of_gemm_peak", "status", "note")


def _row(simulator, N, K, **values) -> dict:
    row = {column: "" for column in CSV_COLUMNS}
    row.update(simulator=simulator, N=N, K=K, **values)
    return row


def measured(rows) -> list[dict]:
    return [r for r in rows if r["seconds_per_step"] != ""]


def fit_exponents(rows, min_nk: int = 10**6) -> dict:
    """Per simulator, the slope of log(time per step) against log(N K): over every measured size, and
    over the sizes with N K >= min_nk, where the O(N K) work outweighs the fixed cost of a step."""
    out = {}
    for sim in dict.fromkeys(r["simulator"] for r in measured(rows)):
        points = [(r["N"] * r["K"], r["seconds_per_step"]) for r in measured(rows) if r["simulator"] == sim]
        fits = {}
        for label, pts in (("all_sizes", points), (f"nk_at_least_{min_nk:g}", [p for p in points if p[0] >= min_nk])):
            fit = log_log_slope(pts)
            if fit:
                fits[label] = fit
        if fits:
            out[sim] = fits
    return out


def fit_naam_exponents(rows) -> dict:
    """NAAM's time per step against N at each fixed K (N^2 K: expected 2) and against K at each fixed N
    (expected 1 where the K N^2 contraction outweighs the O(N^2) elementwise work of a step)."""
    naam = [r for r in measured(rows) if r["simulator"] == "naam"]
    out = {"in_N": {}, "in_K": {}}
    for fixed, free, key in (("K", "N", "in_N"), ("N", "K", "in_K")):
        for value in sorted({r[fixed] for r in naam}):
            fit = log_log_slope([(r[free], r["seconds_per_step"]) for r in naam if r[fixed] == value])
            if fit:
                out[key][f"{fixed}={value}"] = fit
    return out


INT_COLUMNS = ("N", "K", "threads")
TEXT_COLUMNS = ("simulator", "weight_dtype", "status", "note")


def read_csv(path: Path) -> list[dict]:
    """speed.csv back as rows like the benchmark's own (numbers as numbers, "" where empty); columns that an
    older table lacks (gpu_memory_mb) are empty."""
    import io

    from astrogate.files import read_text

    with io.StringIO(read_text(path, "speed table"), newline="") as f:
        reader = csv.DictReader(f)
        try:
            missing = {"simulator", "N", "K", "seconds_per_step"} - set(reader.fieldnames or ())
            if missing:
                raise InputError(f"{path}: not a speed table (no {', '.join(sorted(missing))} column)")
            rows = []
            for raw in reader:
                try:
                    rows.append(_checked_row(raw))
                except (TypeError, ValueError, OverflowError) as exc:
                    raise InputError(f"{path}:{reader.line_num}: not a row of a speed table ({exc})") from None
        except csv.Error as exc:
            raise InputError(f"{path}:{reader.line_num}: not a speed table ({exc})") from None
    if not rows:
        raise InputError(f"{path}: a speed table with no rows")
    return rows


def _checked_row(raw: dict) -> dict:
    """One row of speed.csv, its numbers finite and >= 0 and its sizes whole numbers from 1 to MAX_COUNT."""
    import math

    from astrogate.models.checks import MAX_COUNT

    if not isinstance(raw.get("simulator"), str) or None in raw:
        raise ValueError("a row with more or fewer fields than the header")
    row = _row(raw["simulator"], int(raw["N"]), int(raw["K"]))
    for column in CSV_COLUMNS[3:]:
        value = raw.get(column, "") or ""
        if value != "" and column not in TEXT_COLUMNS:
            number = float(value)
            if not math.isfinite(number) or number < 0:
                raise ValueError(f"{column} = {value[:40]!r} is not a finite number >= 0")
            value = int(number) if column in INT_COLUMNS else number
        row[column] = value
    for column in ("N", "K"):
        if not 1 <= row[column] <= MAX_COUNT:
            raise ValueError(f"{column} = {row[column]} is not a size from 1 to {MAX_COUNT}")
    if row["seconds_per_step"] == 0:
        raise ValueError("seconds_per_step = 0")
    return row
