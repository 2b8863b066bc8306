"""The speed benchmark's text report, and --replot: the report and the figure again from a written table."""

from __future__ import annotations

from pathlib import Path

from astrogate.analysis.speed.config import TRIAL_MS
from astrogate.analysis.speed.plots import plot_speed
from astrogate.analysis.speed.table import fit_exponents, fit_naam_exponents, read_csv
from astrogate.analysis.speed.targets import targets, targets_report
from astrogate.errors import InputError

def replot(out_dir: str | Path) -> dict:
    """Re-draw OUT/speed.png from OUT/speed.csv, without measuring; the exponents are fitted again from the
    table (as the run fitted them), the batched figures taken from OUT/speed.json where it exists. Returns
    the result as run_speed_benchmark does (report() prints it), with the targets computed from the table."""
    out = Path(out_dir)
    table = out / "speed.csv"
    if not table.is_file():
        raise InputError(f"--replot: no {table}")
    rows = read_csv(table)
    result = {"rows": rows, "exponents": fit_exponents(rows), "naam_exponents": fit_naam_exponents(rows),
              "targets": targets(rows), "batched": {}}
    summary = out / "speed.json"
    if summary.is_file():
        import json

        from astrogate.files import read_text

        try:
            saved = json.loads(read_text(summary, "speed summary"))
            result["batched"] = saved.get("batched", {})
            if saved.get("retrieval"):
                result["retrieval"] = saved["retrieval"]
        except (json.JSONDecodeError, AttributeError, RecursionError) as exc:
            raise InputError(f"{summary}: not a speed summary ({type(exc).__name__})") from None
    try:  # the whole report drawn from what was read, before the figure: a hostile summary is refused here
        text = report(result)
    except (TypeError, KeyError, ValueError, AttributeError, IndexError, OverflowError, ZeroDivisionError) as exc:
        raise InputError(f"{out}: speed.csv and speed.json are not those of a speed benchmark of this version "
                         f"({type(exc).__name__}: {str(exc)[:80]})") from None
    plot_speed(rows, out / "speed.png", result["exponents"], result["naam_exponents"])
    result["report"] = text
    return result


def report(result: dict) -> str:
    """The ratios to the limits, the batched model's throughput, the fitted exponents and the targets, as text."""
    lines = [f"{'simulator':<30}{'N':>8}{'K':>7}{'us/step':>12}{'x limit':>10}{'build s':>9}{'compile s':>10}"
             f"{'peak MB':>9}{'GPU MB':>8}  status"]
    for r in result["rows"]:
        def fmt(key, scale=1.0, spec=".1f"):
            return format(r[key] * scale, spec) if r.get(key, "") != "" else "-"
        lines.append(f"{r['simulator']:<30}{r['N']:>8}{r['K']:>7}{fmt('seconds_per_step', 1e6):>12}"
                     f"{fmt('ratio_to_limit', 1, '.2f'):>10}{fmt('build_seconds'):>9}{fmt('compile_seconds'):>10}"
                     f"{fmt('peak_rss_mb', 1, '.0f'):>9}{fmt('gpu_memory_mb', 1, '.0f'):>8}  {r['status']}")
    for size, b in result.get("batched", {}).items():
        lines.append(f"batched abstract model {size}: {b['trials_per_second']:.3g} trials/s "
                     f"({TRIAL_MS:g} ms each), {b['step_flops_per_second'] / 1e9:.2f} GFLOP/s = "
                     f"{b['step_flops_per_second'] / b['peak_gemm_flops_per_second']:.2f} of the machine's GEMM "
                     f"peak ({b['peak_gemm_flops_per_second'] / 1e9:.2f} GFLOP/s), "
                     f"{b['gemm_seconds'] / b['batch_seconds_per_step']:.2f} of its own two GEMMs")
    for sim, fits in result["exponents"].items():
        parts = ", ".join(f"{k}: {v['exponent']:.2f} ({v['points']} sizes)" for k, v in fits.items())
        lines.append(f"exponent of time per step in N K, {sim}: {parts}")
    naam = result.get("naam_exponents", {})
    for key, name, expected in (("in_N", "N", "2"), ("in_K", "K", "1 once the K N^2 products dominate")):
        if naam.get(key):
            parts = ", ".join(f"at {k}: {v['exponent']:.2f} ({v['points']} sizes)" for k, v in naam[key].items())
            lines.append(f"exponent of NAAM's time per step in {name} (expected {expected}): {parts}")
    if result.get("targets"):
        lines += targets_report(result["targets"])
    if result.get("retrieval"):
        from astrogate.analysis.speed.retrieval import retrieval_report

        lines += retrieval_report(result["retrieval"])
    return "\n".join(lines)
