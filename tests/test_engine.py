"""The study engine and its one writer (analysis/engine.py, analysis/folder.py, analysis/spec.py): outputs checked
before a run, one run per folder, results moved into place together, lost workers, damaged and linked files,
every value of a spec checked first, and the folders and files of earlier versions."""

from __future__ import annotations

import errno
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from cli_helpers import run
from astrogate.analysis.engine import execute, point_path, prepare_folder, run_task
from astrogate.analysis.folder import LOCK_FILE, STAGING, RunFolder
from astrogate.analysis.spec import parse_study, study_from_tables
from astrogate.analysis.study import enumerate_points
from astrogate.analysis.sweep import run_sweep
from astrogate.cli.main import main
from astrogate.errors import InputError

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # point functions below travel by value

SPEC = """\
[study]
name = "tiny"

[model]
duration = 40.0
tol = 1e-4

[fixed]
N = 24
trials = 3

[axes]
load = { values = [0.2, 1.0] }
seed = { values = [0, 1, 2] }
"""

BENCH = """\
[study]
evaluation = "benchmark"

[fixed]
seed = 3
N = 32
instances = 1
cues = 4

[axes]
pattern_set = { values = ["iid", "corr:0.5"] }
corruption = { values = ["flip:0.1"] }
load = { values = [0.25, 1.0] }

[models.cue]
kind = "cue"

[models.hopfield]
kind = "hopfield"

[models.modern]
kind = "modern"
tune = { beta_over_N = [4.0, 64.0] }

[tuning]
cells = [{ pattern_set = "corr:0.5", load = 1.0, corruption = "flip:0.1" }]
cues = 4
"""




def refused(argv, capsys, *fragments) -> str:
    code, out, err = run(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in out + err, (code, out, err)
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                           local_directory=str(tmp_path_factory.mktemp("dask")))
    with Client(cluster) as client:
        yield client
    cluster.close()


def dataset(out: Path):
    return xr.open_dataset(Path(out) / "results.nc", engine="scipy").load()


# -- (1) every output location checked before the run; a late failure in one line ----------------------------

READ_ONLY_DRIVER = """
import json, sys
from astrogate.cli.main import main
ro, spec, bench = sys.argv[1:4]
cases = [["recall", "--K", "20", "--N", "40", "--json", f"{ro}/out.json"],
         ["recall", "--K", "20", "--N", "40", "--plot", f"{ro}/out.png"],
         ["compare", "--K", "5", "--N", "20", "--json", f"{ro}/c.json"],
         ["demo", "--no-brian2", "--out", f"{ro}/demo"],
         ["attention", "--out", f"{ro}/att"],
         ["bench", "retrieval", "--config", bench, "--out", f"{ro}/bench", "--no-progress"],
         ["bench", "mqar", "--quick", "--out", f"{ro}/mqar", "--no-progress"],
         ["bench", "speed", "--quick", "--out", f"{ro}/speed"],
         ["sweep", spec, "--out", f"{ro}/sweep", "--no-progress"]]
import contextlib, io
results = []
for argv in cases:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    results.append([argv[0], code, out.getvalue(), err.getvalue()])
print(json.dumps(results))
"""


def test_outputs_on_a_read_only_file_system_are_refused_before_the_run(tmp_path):
    """Every command that writes, its outputs on a read-only tmpfs (mounted in a user namespace): exit 2, one
    line saying read-only, nothing run (no output on stdout), no traceback."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare to mount a read-only file system")
    ro = tmp_path / "ro"
    ro.mkdir()
    (tmp_path / "spec.toml").write_text(SPEC)
    (tmp_path / "bench.toml").write_text(BENCH)
    (tmp_path / "driver.py").write_text(READ_ONLY_DRIVER)
    script = (f"mount -t tmpfs -o ro none {ro} && exec {sys.executable} {tmp_path / 'driver.py'} {ro} "
              f"{tmp_path / 'spec.toml'} {tmp_path / 'bench.toml'}")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=600)
    if done.returncode != 0 and "mount" in done.stderr and not done.stdout:
        pytest.skip(f"no read-only mount possible here: {done.stderr.strip()[:200]}")
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(results) == 9
    for command, code, out, err in results:
        assert code == 2, (command, code, out, err)
        assert err.count("\n") == 1 and "Traceback" not in err, (command, err)
        assert "read-only file system" in err.lower(), (command, err)
        assert out == "", (command, out)  # refused before anything ran or printed


def test_an_output_under_a_file_is_refused_before_the_run(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    refused(["recall", "--K", "20", "--N", "40", "--json", tmp_path / "file" / "sub" / "out.json"], capsys,
            "is not a folder")
    refused(["sweep", "study_load_taug", "--out", tmp_path / "file" / "out"], capsys, "cannot create output folder")


def test_a_late_write_failure_is_one_line_even_when_the_clean_up_fails_too(tmp_path, capsys, monkeypatch):
    """The file system turns read-only after the check (the rename and the removal of the temporary file both
    fail): the error is the rename's, in one line, not the clean-up's OSError."""
    import astrogate.files as files

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(files.os, "replace", read_only)
    monkeypatch.setattr(Path, "unlink", read_only)
    line = refused(["recall", "--K", "20", "--N", "40", "--duration", "20", "--json", tmp_path / "out.json"], capsys)
    assert line.endswith("Read-only file system") and "out.json" in line


# -- (2) one run per output folder ---------------------------------------------------------------------------

def test_a_second_run_into_a_held_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    (tmp_path / "a.toml").write_text(SPEC)
    (tmp_path / "b.toml").write_text(SPEC.replace("trials = 3", "trials = 4"))
    with RunFolder.open(out):  # a run holds it
        line = refused(["sweep", tmp_path / "b.toml", "--out", out], capsys, "is in use by another astrogate run")
        assert f"pid {os.getpid()}" in line
        with pytest.raises(InputError, match="is in use"):
            RunFolder.open(out)
    assert not (out / "points").exists() and not (out / LOCK_FILE).exists()


@pytest.mark.slow
def test_two_sweeps_started_together_into_one_folder(tmp_path):
    """Two `astrogate sweep` of different specs and one --out, started together: one runs, the other is refused
    in one line; the folder holds the points of one spec only."""
    out = tmp_path / "out"
    specs = []
    for name, trials in (("a", 3), ("b", 4)):
        specs.append(tmp_path / f"{name}.toml")
        specs[-1].write_text(SPEC.replace("trials = 3", f"trials = {trials}"))
    procs = [subprocess.Popen([sys.executable, "-m", "astrogate", "sweep", str(spec), "--out", str(out), "--workers",
                               "1", "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for spec in specs]
    done = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    codes = sorted(d[2] for d in done)
    assert codes == [0, 2], done
    loser = next(d for d in done if d[2] == 2)
    assert loser[1].count("\n") == 1 and ("is in use by another astrogate run" in loser[1]
                                          or "holds the results of a run" in loser[1]), loser[1]
    winner = specs[[d[2] for d in done].index(0)]
    ids = {p.id for p in enumerate_points(parse_study(winner.read_text(), winner))}
    assert {p.stem for p in (out / "points").glob("*.json")} == ids
    assert (out / "spec.toml").read_text() == winner.read_text()


def test_the_lock_of_a_dead_run_is_taken_over(tmp_path, client):
    """A lock file left by a killed run (its pid gone, no flock held) does not block the next run; nor does a
    link where the lock file belongs (replaced, its target untouched)."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_FILE).write_text(json.dumps({"pid": int(dead.stdout), "host": "here", "started": "then"}))
    study = parse_study(SPEC, "tiny.toml")
    assert run_sweep(study, out, client, progress=False).complete
    outside = tmp_path / "outside.txt"
    outside.write_text("not astrogate's")
    other = tmp_path / "other"
    other.mkdir()
    (other / LOCK_FILE).symlink_to(outside)
    with RunFolder.open(other):
        assert not (other / LOCK_FILE).is_symlink()
    assert outside.read_text() == "not astrogate's"


# -- (3) results that belong together; another run's results refused --------------------------------------------

def test_a_folder_holding_results_is_refused_unless_resumed_or_forced(tmp_path, capsys):
    (tmp_path / "b.toml").write_text(BENCH)
    out = tmp_path / "bench"
    assert run(["bench", "retrieval", "--config", tmp_path / "b.toml", "--out", out, "--no-progress"], capsys)[0] == 0
    first = pd.read_csv(out / "results.csv")
    first_ids = {p.stem for p in (out / "points").glob("*.json")}
    before = (out / "summary.json").stat().st_mtime_ns
    refused(["bench", "retrieval", "--config", tmp_path / "b.toml", "--out", out], capsys,
            "holds the results of a run (study 'b', evaluation 'benchmark'): pass --resume", "--force")
    assert (out / "summary.json").stat().st_mtime_ns == before  # untouched
    (tmp_path / "other.toml").write_text(BENCH.replace("seed = 3", "seed = 4"))
    refused(["bench", "retrieval", "--config", tmp_path / "other.toml", "--out", out, "--resume"], capsys,
            "is not the study the run in")
    code, printed, _ = run(["bench", "retrieval", "--config", tmp_path / "b.toml", "--out", out, "--resume",
                            "--no-progress"], capsys)
    assert code == 0 and "4 cells" in printed
    code, _, _ = run(["bench", "retrieval", "--config", tmp_path / "other.toml", "--out", out, "--force",
                      "--no-progress"], capsys)
    assert code == 0
    assert json.loads((out / "summary.json").read_text())["seed"] == 4
    ids = {p.stem for p in (out / "points").glob("*.json")}
    assert len(ids) == len(first) // 3 and ids.isdisjoint(first_ids)  # the replaced run's points are gone


def test_a_benchmark_killed_while_it_writes_leaves_no_mix_and_no_stray_temporary_file(tmp_path):
    """`bench retrieval --force` over a finished run, killed (SIGKILL) part-way: the folder never holds
    an output of the earlier run beside one of the new, nor a .tmp file beside the results; --resume then
    finishes it with the results of an uninterrupted run."""
    (tmp_path / "b.toml").write_text(BENCH)
    out = tmp_path / "bench"
    command = [sys.executable, "-m", "astrogate", "bench", "retrieval", "--config", str(tmp_path / "b.toml"),
               "--out", str(out), "--no-progress"]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    reference = pd.read_csv(out / "results.csv").drop(columns="seconds")
    outputs = ("results.csv", "results.nc", "results.md", "summary.json", "tuning.json")
    for delay in (4.0,):  # a moment inside the run (set more to try others: each costs a run and a resume)
        started = time.time()
        process = subprocess.Popen([*command, "--force"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        ages = {name: (out / name).stat().st_mtime >= started for name in outputs if (out / name).exists()}
        # the earlier run's outputs go when --force takes the folder, the new ones come together at the end
        assert len(set(ages.values())) <= 1, ages
        stray = [p for p in out.rglob("*") if p.name.endswith(".tmp") and STAGING not in p.parts]
        assert not stray, stray
        done = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert not (out / STAGING).exists()
        pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv").drop(columns="seconds"), reference)


# -- (4) a lost worker ------------------------------------------------------------------------------------------

def killing_point(values, settings, build_root, marker):
    """The benchmark's point, except that the first execution to take `marker` kills its own worker."""
    try:
        os.rename(marker, marker + ".taken")
    except FileNotFoundError:
        return run_task("benchmark", values, settings, {"build_root": build_root})
    os._exit(1)


def test_a_lost_worker_of_a_benchmark_keeps_the_finished_cells_and_reruns_its_own(tmp_path, client):
    study = parse_study(BENCH.replace("\n[tuning]", "\n[unused]").split("\n[unused]")[0]
                        .replace('tune = { beta_over_N = [4.0, 64.0] }', "beta_over_N = 16.0"), "b.toml")
    marker = tmp_path / "kill-once"
    marker.touch()
    with prepare_folder(study, tmp_path / "killed") as folder:
        outcome = execute(study, folder, client, progress=False,
                          point_function=functools.partial(killing_point, marker=str(marker)))
    assert not marker.exists() and Path(str(marker) + ".taken").exists()  # a worker did die
    assert outcome.complete and outcome.failed == 0 and outcome.ran == len(enumerate_points(study))
    with prepare_folder(study, tmp_path / "straight") as folder:
        execute(study, folder, client, progress=False)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "killed" / "results.csv").drop(columns="seconds"),
                                  pd.read_csv(tmp_path / "straight" / "results.csv").drop(columns="seconds"))
    client.wait_for_workers(2, timeout=60)


# -- (5) damaged and linked files in astrogate's own folders ----------------------------------------------------

DAMAGES = {
    "trailing 0xff": lambda text: text.encode() + b"\xff",
    "a list": lambda text: b"[1,2]",
    "a metric 'high'": lambda text: text.replace('"exact_match":', '"exact_match":"high","was":').encode(),
    "a metric 1e400": lambda text: text.replace('"exact_match":', '"exact_match":1e400,"was":').encode(),
    "no status": lambda text: text.replace('"status":"ok",', "").encode(),
    "100,000 nested [": lambda text: b"[" * 100_000,
}


def test_damaged_point_files_count_as_not_finished(tmp_path, client, capsys):
    study = parse_study(SPEC, "tiny.toml")
    out = tmp_path / "out"
    run_sweep(study, out, client, progress=False)
    intact = dataset(out)
    points = enumerate_points(study)
    for point, damage in zip(points, DAMAGES.values()):
        path = point_path(out, point.id)
        path.write_bytes(damage(path.read_text()))
    code, printed, err = run(["plot", out, "--metric", "nearest_accuracy"], capsys)
    assert code == 0, err
    assert f"note: {len(DAMAGES)} damaged point files skipped" in printed
    resumed = run_sweep(study, out, client, resume=True, progress=False)
    assert resumed.complete and resumed.ran == len(DAMAGES) and resumed.skipped == len(points) - len(DAMAGES)
    xr.testing.assert_identical(dataset(out), intact)


def test_links_in_a_study_folder_are_replaced_not_followed(tmp_path, client):
    """A link at a point file's path, at spec.toml and at the points folder: --resume writes astrogate's files in
    the folder itself, and the files the links pointed at are untouched."""
    study = parse_study(SPEC, "tiny.toml")
    out = tmp_path / "out"
    first = run_sweep(study, out, client, progress=False, max_points=2)
    assert not first.complete
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.json").write_text("precious")
    (outside / "spec.txt").write_text("precious spec")
    pending = [p for p in enumerate_points(study) if not point_path(out, p.id).exists()]
    point_path(out, pending[0].id).symlink_to(outside / "victim.json")
    (out / "spec.toml").unlink()
    (out / "spec.toml").symlink_to(outside / "spec.txt")
    assert run_sweep(study, out, client, resume=True, progress=False).complete
    assert (outside / "victim.json").read_text() == "precious" and (outside / "spec.txt").read_text() == "precious spec"
    assert not point_path(out, pending[0].id).is_symlink() and not (out / "spec.toml").is_symlink()
    assert json.loads(point_path(out, pending[0].id).read_text())["status"] == "ok"
    # a linked points folder: replaced by a folder of its own (the other folder keeps its files)
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "points").symlink_to(outside)
    assert run_sweep(study, linked, client, progress=False).complete
    assert not (linked / "points").is_symlink() and sorted(p.name for p in outside.iterdir()) == ["spec.txt",
                                                                                                   "victim.json"]


# -- (7) every value of a spec or config checked before any work --------------------------------------------------

SWEEP_VALUES = [
    (("load = { values = [0.2, 1.0] }", "load = { values = [1e307] }"), ":12: at load = 1e+307", "more than"),
    (("trials = 3", "trials = 1" + "0" * 399), ":10: trials must be at most 1099511627776", "400 digits"),
    (("load = { values = [0.2, 1.0] }", "load = { values = [0.2] }\nN = { start = 1e308, stop = -1e308, num = 3 }"),
     ":14: N: the range from 1e+308 to -1e+308 overflows", ""),
    (("seed = { values = [0, 1, 2] }", "seed = { start = 0, stop = 1.7e308, num = 3 }"), ":14: seed must be at most",
     "4294967295"),
    (("seed = { values = [0, 1, 2] }", "seed = { values = [4294967296] }"), ":14: seed must be at most 4294967295", ""),
    (("tol = 1e-4", 'tol = 1e-4\nbackend = "brian2"\nneuron = "izhikevich"'), ":8: unknown Brian2 neuron 'izhikevich'",
     ""),
    (("tol = 1e-4", 'tol = 1e-4\nbackend = "brian2"\ndevice = "runtime"\ntarget = "fortran"'),
     ":9: unknown Brian2 target 'fortran'", ""),
    (("tol = 1e-4", "tol = 1e-4\nx = " + "[" * 5000 + "]" * 5000), ":1: invalid TOML: values nested too deep", ""),
    (("[study]", "[" + ".".join(["a"] * 5000) + "]\n[study]"), ":1: unknown section [a]", ""),
    # of my own: a float where a whole number is expected, beyond the largest float
    (("trials = 3", "trials = 1e400"), ":10: trials: expected a whole number, got inf", ""),
]


@pytest.mark.parametrize("change, fragment, more", SWEEP_VALUES)
def test_every_value_of_a_sweep_spec_is_checked_before_any_work(tmp_path, capsys, change, fragment, more):
    assert change[0] in SPEC
    path = tmp_path / "s.toml"
    path.write_text(SPEC.replace(*change))
    line = refused(["sweep", path, "--out", tmp_path / "out"], capsys, fragment, more)
    assert len(line) < 400 and not (tmp_path / "out").exists()


BENCH_VALUES = [
    (("[models.cue]\n", "[models.cue]\nmax_N = inf\n"), ":16: [models.cue] max_N must be a whole number"),
    (("instances = 1", "instances = -1"), ":7: instances must be at least 1"),
    (("cues = 4\n\n[axes]", "cues = -4\n\n[axes]"), ":8: cues must be at least 1"),
    (("cues = 4\n\n[axes]", "cues = 4\ngallery_cues = -2\n\n[axes]"), ":9: gallery_cues must be at least 1"),
    (('pattern_set = { values = ["iid", "corr:0.5"] }', 'pattern_set = { values = ["iid", 7] }'),
     ":11: pattern_set: expected a string, got 7"),
    (("load = { values = [0.25, 1.0] }", "load = { values = [1e308] }"), ":13: load = 1e+308 at N = 32 is K = inf"),
    (('cells = [{ pattern_set = "corr:0.5"', 'cells = [{ pattern_set = 5'), ":26: tuning cell: pattern_set and "
                                                                            "corruption are names"),
    (('load = 1.0, corruption = "flip:0.1" }]', 'load = 1e308, corruption = "flip:0.1" }]'),
     ":26: load = 1e+308 at N = 32 is K = inf"),
    # of my own: an image corruption on generated patterns, found before the tuning cells run
    (('load = 1.0, corruption = "flip:0.1" }]', 'load = 1.0, corruption = "occlude:0.5" }]'),
     "applies to image pattern sets only"),
]


@pytest.mark.parametrize("change, fragment", BENCH_VALUES)
def test_every_value_of_a_benchmark_config_is_checked_before_any_work(tmp_path, capsys, change, fragment):
    assert change[0] in BENCH
    path = tmp_path / "b.toml"
    path.write_text(BENCH.replace(*change))
    refused(["bench", "retrieval", "--config", path, "--out", tmp_path / "out"], capsys, fragment)
    assert not (tmp_path / "out").exists()


SPEED_CSV_HEADER = "simulator,N,K,seconds_per_step,status\n"


@pytest.mark.parametrize("csv_text, summary, fragment", [
    (SPEED_CSV_HEADER + "numpy,1000,100,nan,measured\n", None, "seconds_per_step = 'nan' is not a finite number"),
    (SPEED_CSV_HEADER + "numpy,1000,100,1e400,measured\n", None, "is not a finite number"),
    (SPEED_CSV_HEADER + "numpy,1000,100,-1,measured\n", None, "is not a finite number >= 0"),
    (SPEED_CSV_HEADER + "numpy,0,100,1e-3,measured\n", None, "N = 0 is not a size"),
    (SPEED_CSV_HEADER + "numpy,1000,100,high,measured\n", None, "could not convert string to float"),
    (SPEED_CSV_HEADER + "numpy,1000,100,1e-3,measured,extra\n", None, "more or fewer fields"),
    (SPEED_CSV_HEADER + "numpy,1000,100,1e-3,measured\n", '{"batched": {"x": "fast"}}', "not those of a speed"),
    (SPEED_CSV_HEADER + "numpy,1000,100,1e-3,measured\n", "[" * 100_000, "not a speed summary"),
    (SPEED_CSV_HEADER + "numpy,1000,100,1e-3,measured\n", '{"retrieval": {"rows": [1, 2]}}', "not those of a speed"),
    # of my own: a field longer than the csv module reads
    (SPEED_CSV_HEADER + "numpy,1000,100,1e-3," + "x" * 200_000 + "\n", None, "not a speed table"),
])
def test_bench_speed_replot_refuses_hostile_files(tmp_path, capsys, csv_text, summary, fragment):
    (tmp_path / "speed.csv").write_text(csv_text)
    if summary is not None:
        (tmp_path / "speed.json").write_text(summary)
    refused(["bench", "speed", "--replot", tmp_path], capsys, fragment)
    assert not (tmp_path / "speed.png").exists()


# -- folders and files of earlier versions ----------------------------------------------------------------------

OLD_SWEEP = SPEC.replace("[study]", "[sweep]")


def test_a_sweep_folder_of_the_earlier_version_resumes(tmp_path, client):
    """The first version's folder: spec.toml with [sweep], point files with a "model" key, sweep.nc; resumed,
    its finished points are kept and the dataset is written as results.nc (sweep.nc removed)."""
    from astrogate.analysis.sweep import run_point

    study = parse_study(OLD_SWEEP, "old.toml")
    out = tmp_path / "old"
    (out / "points").mkdir(parents=True)
    (out / "spec.toml").write_text(OLD_SWEEP)
    (out / "sweep.nc").write_bytes(b"an earlier dataset")
    kept = enumerate_points(study)[:2]
    for point in kept:
        record = {"id": point.id, "index": list(point.index), "values": point.values, "model": study.settings,
                  **run_point(point.values, study.settings)}
        point_path(out, point.id).write_text(json.dumps(record))
    resumed = run_sweep(study, out, client, resume=True, progress=False)
    assert resumed.complete and resumed.skipped == 2 and resumed.ran == study.n_points - 2
    assert (out / "results.nc").exists() and not (out / "sweep.nc").exists()
    straight = run_sweep(study, tmp_path / "straight", client, progress=False)
    assert straight.complete
    xr.testing.assert_identical(dataset(out).drop_attrs(), dataset(tmp_path / "straight").drop_attrs())


def test_a_benchmark_folder_of_the_earlier_version_is_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "b.toml").write_text(BENCH)
    out = tmp_path / "old"
    out.mkdir()
    for name in ("results.csv", "summary.json", "tuning.json", "results.md"):
        (out / name).write_text("an earlier run")
    refused(["bench", "retrieval", "--config", tmp_path / "b.toml", "--out", out, "--resume"], capsys,
            "holds results of an earlier version without point files", "--force")
    refused(["bench", "retrieval", "--config", tmp_path / "b.toml", "--out", out], capsys,
            "holds the results of a run (files of an earlier version)")
    assert (out / "summary.json").read_text() == "an earlier run"


def test_configs_of_the_earlier_form_load_as_the_same_study_or_name_the_key(tmp_path):
    old = textwrap.dedent("""\
        [benchmark]
        seed = 3
        N = 32
        instances = 1
        cues = 4
        loads = [0.25, 1.0]
        pattern_sets = ["iid", "corr:0.5"]
        corruptions = ["flip:0.1"]
        """) + BENCH[BENCH.index("[models.cue]"):]
    from astrogate.analysis.study import definition_hash

    assert definition_hash(parse_study(old, "b.toml")) == definition_hash(parse_study(BENCH, "b.toml"))
    assert definition_hash(parse_study(OLD_SWEEP, "s.toml")) == definition_hash(parse_study(SPEC, "s.toml"))
    with pytest.raises(InputError, match=r"^b\.toml:6: unknown key 'speed' in \[benchmark\]; known: seed"):
        parse_study(old.replace("cues = 4", "cues = 4\nspeed = 3"), "b.toml")
    with pytest.raises(InputError, match=r"^b\.toml:1: \[benchmark\] is the earlier form .* \[fixed\] the present"):
        parse_study(old + "[fixed]\nN = 3\n", "b.toml")
    with pytest.raises(InputError, match=r"^s\.toml:1: \[sweep\] and \[study\] are the same table"):
        parse_study(OLD_SWEEP + '[study]\nname = "x"\n', "s.toml")
    with pytest.raises(InputError, match=r"^b\.toml:6: loads must be a list"):
        parse_study(old.replace("loads = [0.25, 1.0]", "loads = 0.5"), "b.toml")


# -- explore(): kept in a folder, resumed, and a warning when every point fails ---------------------------------

def squares(point):
    if point["x"] < 0:
        raise ValueError("negative x")
    return {"square": point["x"] ** 2}


def test_explore_saves_resumes_and_warns_when_every_point_fails(tmp_path, client):
    import astrogate as ag

    out = tmp_path / "explore"
    ds = ag.explore(squares, {"x": [1.0, 2.0, 3.0]}, client=client, progress=False, out=out)
    np.testing.assert_array_equal(ds["square"].values, [1.0, 4.0, 9.0])
    assert len(list((out / "points").glob("*.json"))) == 3
    again = ag.explore(squares, {"x": [1.0, 2.0, 3.0]}, client=client, progress=False, out=out, resume=True)
    xr.testing.assert_identical(again, ds)
    with pytest.raises(InputError, match="holds the results of a run"):
        ag.explore(squares, {"x": [1.0, 2.0, 3.0]}, client=client, progress=False, out=out)
    with pytest.warns(RuntimeWarning, match=r"every point failed \(2 of 2\); 2 with "
                                            r"ValueError: negative x"):
        failed = ag.explore(squares, {"x": [-1.0, -2.0]}, client=client, progress=False)
    assert list(failed["status"].values) == ["failed", "failed"]


def test_a_study_from_python_tables_is_checked_like_a_file():
    with pytest.raises(InputError, match=r"^<spec>:1: unknown field 'flop'"):
        study_from_tables({"study": {}, "fixed": {"N": 10, "K": 2, "flop": 1}})


def test_every_shipped_spec_loads_and_names_its_evaluation():
    from astrogate.analysis.spec import load_study
    from astrogate.analysis.study import EVALUATIONS
    from importlib.resources import files

    names = sorted(entry.name for entry in files("astrogate.configs").iterdir() if entry.name.endswith(".toml"))
    assert len(names) >= 11
    evaluations = {load_study(name.removesuffix(".toml")).evaluation for name in names}
    assert evaluations == set(EVALUATIONS) - {"explore"}  # every evaluation but the Python-only one ships a spec


def _worker_environment():
    import os

    return {name: os.environ.get(name) for name in ("MALLOC_TRIM_THRESHOLD_", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}


def test_local_workers_keep_glibc_mmap_threshold_and_one_blas_thread():
    """The local cluster's workers run one BLAS thread each and without Dask's MALLOC_TRIM_THRESHOLD_ (which fixes
    glibc's mmap threshold: NumPy temporaries mapped anew every step, the gated model's points 3 times slower)."""
    from distributed import Client, LocalCluster

    from astrogate.analysis.engine import close_client, make_client

    # a cluster of Dask's defaults first: its nanny leaves its malloc setting in this process's environment
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0") as cluster, Client(cluster) as first:
        assert first.submit(_worker_environment, pure=False).result()["MALLOC_TRIM_THRESHOLD_"] == "65536"
    client = make_client(workers=1)
    try:
        environment = client.submit(_worker_environment, pure=False).result()
    finally:
        close_client(client, own_cluster=True)
    assert environment == {"MALLOC_TRIM_THRESHOLD_": None, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def _child_sigterm_disposition() -> str:
    return subprocess.run([sys.executable, "-c", "import signal; print(signal.getsignal(signal.SIGTERM).name)"],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_local_workers_outlive_the_jobs_stop_signals_and_their_programs_do_not():
    """A batch system's SIGTERM reaches every process of the job: the workers leave it to the main process, which
    closes them (a worker that died of it first was reported lost by the scheduler). A program a worker starts
    (a compiled simulation) still ends on it."""
    from astrogate.analysis.engine import close_client, make_client

    client = make_client(workers=1)
    try:
        pid = client.submit(os.getpid, pure=False).result()
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            os.kill(pid, signum)
        time.sleep(0.5)
        assert client.submit(os.getpid, pure=False).result() == pid  # the same worker, alive
        assert client.submit(_child_sigterm_disposition, pure=False).result() == "SIG_DFL"
    finally:
        close_client(client, own_cluster=True)
