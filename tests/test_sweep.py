"""Parameter sweeps: spec checks, Dask execution, resume, failures, worker loss, the commands."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
import xarray as xr

from astrogate.analysis.engine import point_path
from astrogate.analysis.study import enumerate_points, point_id
from astrogate.analysis.sweep import load_sweep, run_point, run_sweep
from astrogate.analysis.spec import parse_study as parse_spec
from astrogate.errors import InputError
from astrogate.cli.main import main

# the wrapped point functions below travel to the worker processes by value, not by module name
cloudpickle.register_pickle_by_value(sys.modules[__name__])

SMALL = """\
[sweep]
name = "small"

[model]
duration = 60.0
tol = 1e-4

[fixed]
N = 30
trials = 4
flip = 0.2

[axes]
load = { values = [0.1, 1.0] }
beta = { values = [0.0, 600.0] }
seed = { values = [0, 1] }
"""


def small_spec(text: str = SMALL, path: str = "small.toml"):
    return parse_spec(text, path)


def logged_point(values, model, build_root, log, kill_marker=None):
    """run_point, noting each execution in `log`; kills its own worker once if kill_marker exists."""
    with open(log, "a") as fh:
        fh.write(point_id(values, model) + "\n")
    if kill_marker is not None:
        try:
            os.rename(kill_marker, kill_marker + ".taken")  # exactly one execution wins the marker
        except FileNotFoundError:
            pass
        else:
            os._exit(1)
    return run_point(values, model, build_root)


def executions(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                           local_directory=str(tmp_path_factory.mktemp("dask")))
    with Client(cluster) as client:
        yield client
    cluster.close()


# -- the spec -----------------------------------------------------------------------------

def test_spec_grids_zips_and_defaults():
    spec = small_spec(SMALL.replace('seed = { values = [0, 1] }', """\
tau_ratio = { start = 1, stop = 100, num = 3, log = true }

[[zip]]
name = "cue"
flip = { values = [0.1, 0.2] }
mask = { start = 0.0, stop = 0.1, num = 2 }
""").replace("flip = 0.2\n", ""))
    assert [axis.name for axis in spec.axes] == ["load", "beta", "tau_ratio", "cue"]
    assert spec.shape == (2, 2, 3, 2)
    assert np.allclose(spec.axes[2].values["tau_ratio"], [1.0, 10.0, 100.0])
    assert spec.axes[3].values == {"flip": (0.1, 0.2), "mask": (0.0, 0.1)}
    assert spec.fixed["correlation"] == 0.0 and spec.fixed["seed"] == 0  # problem defaults filled in
    points = enumerate_points(spec)
    assert len(points) == spec.n_points == len({p.id for p in points})
    assert points[-1].values["flip"] == 0.2 and points[-1].values["mask"] == 0.1


def test_point_ids_depend_on_everything_that_changes_a_result():
    ids = [p.id for p in enumerate_points(small_spec())]
    assert ids == [p.id for p in enumerate_points(small_spec())]
    assert set(ids).isdisjoint(p.id for p in enumerate_points(small_spec(SMALL.replace("trials = 4", "trials = 5"))))
    assert set(ids).isdisjoint(p.id for p in enumerate_points(small_spec(SMALL.replace("60.0", "61.0"))))


@pytest.mark.parametrize("old, new, line, message", [
    ("flip = 0.2", "flop = 0.2", 11, "unknown field 'flop'"),
    ("beta = { values = [0.0, 600.0] }", "beta = { values = [] }", 15, "beta: empty grid"),
    ("beta = { values = [0.0, 600.0] }", "beta = { start = 1, stop = 2, num = 0 }", 15, "beta: empty grid"),
    ("trials = 4", 'trials = "four"', 10, "trials: expected a whole number"),
    ("N = 30", "N = 30.5", 9, "N: expected a whole number"),
    ("beta = { values = [0.0, 600.0] }", "beta = { values = [0.0, true] }", 15, "beta: expected a finite number"),
    ("beta = { values = [0.0, 600.0] }", "beta = [0.0, 600.0]", 15, "write the grid as"),
    ("beta = { values = [0.0, 600.0] }", "beta = { values = [-1.0] }", 15, "beta must be >= 0"),
    ("flip = 0.2", "flip = 1.5", 11, "flip must lie in [0, 1]"),
    ("tol = 1e-4", "tol = 1e-4\ndevice = 'cpp_standalone'", 7, "applies to backend = \"brian2\" only"),
    ("duration = 60.0", "duration = 60.0\nbackend = 'nest'", 6, "unknown backend 'nest'"),
    ("[sweep]", "[swep]", 1, "unknown section [swep]"),
    ("[sweep]", "# a comment\nN = 30\n[sweep]", 2, "'N' is outside any table"),
    ("N = 30", "N = 30\nK = 4", 15, "give 'K' or 'load', not both"),
    ("trials = 4", "trials = 4\nbeta = 1.0", 11, "'beta' is both fixed and swept"),
    ("tol = 1e-4", "tol = 1e-4 x", 6, "invalid TOML"),
])
def test_malformed_spec_is_rejected_with_its_line(old, new, line, message):
    assert old in SMALL
    with pytest.raises(InputError) as error:
        parse_spec(SMALL.replace(old, new), "runs/configs/bad.toml")
    assert str(error.value).startswith(f"runs/configs/bad.toml:{line}: "), str(error.value)
    assert message in str(error.value)


def test_zipped_fields_must_have_equal_lengths():
    text = SMALL + '\n[[zip]]\nname = "scales"\ntau_u = { values = [5, 10] }\ntau_g = { values = [10, 20, 40] }\n'
    with pytest.raises(InputError, match=r"bad.toml:19: zipped fields must have the same number of values"):
        parse_spec(text, "bad.toml")


def test_brian2_backend_keys_are_accepted():
    text = SMALL.replace("tol = 1e-4", 'tol = 1e-4\nbackend = "brian2"\ndevice = "cpp_standalone"\nneuron = "lif"')
    spec = parse_spec(text, "b.toml")
    assert spec.model["backend"] == "brian2" and spec.model["neuron"] == "lif" and spec.model["target"] == "cython"


# -- one point ----------------------------------------------------------------------------

def test_point_metrics_make_sense_and_repeat_exactly():
    values = enumerate_points(small_spec())[0].values  # load 0.1: 3 patterns, retrieval is easy
    model = small_spec().model
    first, second = run_point(values, model), run_point(values, model)
    assert first["status"] == "ok"
    np.testing.assert_equal(first["metrics"], second["metrics"])
    metrics = first["metrics"]
    assert metrics["nearest_accuracy"] == 1.0 and 0.9 < metrics["final_overlap"] <= 1.0
    assert 0.0 <= metrics["exact_match"] <= 1.0 and 0.0 <= metrics["converged"] <= 1.0


def test_a_raising_point_is_recorded_with_its_message():
    values = dict(enumerate_points(small_spec())[0].values, load=0.01)  # 0.01 * 30 rounds to K = 0
    record = run_point(values, small_spec().model)
    assert record["status"] == "failed" and record["metrics"] is None
    assert "InputError: patterns: need at least one pattern (K >= 1), got K = 0" == record["error"]


@pytest.mark.brian2
def test_brian2_points_equal_abstract_points():
    """The Brian2 backend on the runtime device: one network step is one abstract Euler step."""
    text = SMALL.replace("tol = 1e-4", 'tol = 0.0\nbackend = "brian2"\ndevice = "runtime"\ntarget = "numpy"')
    spec = parse_spec(text, "b.toml")
    abstract_spec = parse_spec(SMALL.replace("tol = 1e-4", 'tol = 0.0\nsettings = "reference"'), "a.toml")
    point = enumerate_points(spec)[0]
    record = run_point(point.values, spec.model)
    assert record["status"] == "ok", record.get("traceback")
    expected = run_point(point.values, abstract_spec.model)["metrics"]
    for metric in ("nearest_accuracy", "exact_match", "final_overlap", "max_gain"):
        np.testing.assert_allclose(record["metrics"][metric], expected[metric], rtol=1e-9, err_msg=metric)


@pytest.mark.brian2
@pytest.mark.compile
def test_brian2_standalone_points_share_one_build_per_process(tmp_path):
    from astrogate.analysis.sweep import brian2_session

    text = SMALL.replace("tol = 1e-4", 'tol = 0.0\nbackend = "brian2"\ndevice = "cpp_standalone"')
    spec = parse_spec(text, "b.toml")
    points = [p for p in enumerate_points(spec) if p.values["load"] == enumerate_points(spec)[0].values["load"]]
    assert len(points) >= 2  # same K x N, other beta or seed: no recompilation
    for point in points:
        assert run_point(point.values, spec.model, str(tmp_path))["status"] == "ok"
    session = brian2_session(spec.model, str(tmp_path))
    assert session._runs == len(points)  # one run per point: its trials as one network of copies
    assert len(list(tmp_path.rglob("build-*/main"))) == 1


# -- sweeps on a cluster ------------------------------------------------------------------

@pytest.mark.timeout(180)
def test_cluster_sweep_matches_serial_runs(client, tmp_path):
    spec = small_spec()
    outcome = run_sweep(spec, tmp_path / "out", client, progress=False)
    assert outcome.complete and outcome.ran == spec.n_points == 8 and outcome.failed == 0
    dataset = xr.open_dataset(tmp_path / "out" / "results.nc", engine="scipy").load()
    assert dataset["nearest_accuracy"].dims == ("load", "beta", "seed")
    for point in enumerate_points(spec):
        serial = run_point(point.values, spec.model)["metrics"]
        for metric in spec.metrics:
            got = float(dataset[metric].values[point.index])
            np.testing.assert_allclose(got, serial[metric], rtol=1e-9, equal_nan=True, err_msg=metric)
    table = __import__("pandas").read_csv(tmp_path / "out" / "results.csv")
    assert len(table) == 8 and set(table["status"]) == {"ok"}


@pytest.mark.timeout(240)
def test_interrupted_then_resumed_runs_no_point_twice(client, tmp_path):
    spec = small_spec()
    log1, log2 = tmp_path / "run1.log", tmp_path / "run2.log"
    out = tmp_path / "resumed"
    first = run_sweep(spec, out, client, point_function=functools.partial(logged_point, log=str(log1)),
                      max_points=3, progress=False)
    assert not first.complete and first.ran == 3
    written = {p.id: point_path(out, p.id).stat().st_mtime_ns for p in enumerate_points(spec)
               if point_path(out, p.id).exists()}
    assert len(written) == 3
    assert not (out / "results.nc").exists()
    with pytest.raises(InputError, match="--resume"):
        run_sweep(spec, out, client, progress=False)
    second = run_sweep(spec, out, client, point_function=functools.partial(logged_point, log=str(log2)),
                       resume=True, progress=False)
    assert second.complete and second.skipped == 3 and second.ran == 5
    again = executions(log2)
    assert set(again).isdisjoint(written) and len(again) == len(set(again)) == 5
    assert all(point_path(out, pid).stat().st_mtime_ns == mtime for pid, mtime in written.items())

    straight = run_sweep(spec, tmp_path / "straight", client, progress=False)
    assert straight.complete
    resumed_ds = xr.open_dataset(out / "results.nc", engine="scipy").load()
    straight_ds = xr.open_dataset(tmp_path / "straight" / "results.nc", engine="scipy").load()
    xr.testing.assert_identical(resumed_ds, straight_ds)


@pytest.mark.timeout(240)
def test_ctrl_c_on_the_command_then_resume(client, tmp_path):
    """A real interruption: SIGINT to `astrogate sweep` half-way, then --resume on another cluster."""
    text = SMALL.replace("seed = { values = [0, 1] }", "seed = { values = [0, 1, 2, 3] }").replace("60.0", "200.0")
    spec_path, out = tmp_path / "spec.toml", tmp_path / "out"
    spec_path.write_text(text)
    spec = parse_spec(text, spec_path)
    command = subprocess.Popen([sys.executable, "-m", "astrogate", "sweep", str(spec_path), "--workers", "1",
                                "--out", str(out), "--no-progress"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(list((out / "points").glob("*.json"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    command.send_signal(signal.SIGINT)
    _, stderr = command.communicate(timeout=60)
    assert command.returncode == 130, stderr
    assert "continue with --resume" in stderr
    written = {path.stem: path.stat().st_mtime_ns for path in (out / "points").glob("*.json")}
    assert 3 <= len(written) < spec.n_points, "the sweep was not interrupted half-way"

    log = tmp_path / "resume.log"
    resumed = run_sweep(spec, out, client, resume=True, progress=False,
                        point_function=functools.partial(logged_point, log=str(log)))
    assert resumed.complete and resumed.skipped == len(written) and resumed.ran == spec.n_points - len(written)
    assert set(executions(log)).isdisjoint(written) and len(executions(log)) == resumed.ran
    assert all(point_path(out, pid).stat().st_mtime_ns == mtime for pid, mtime in written.items())
    run_sweep(spec, tmp_path / "straight", client, progress=False)
    xr.testing.assert_identical(xr.open_dataset(out / "results.nc", engine="scipy").load(),
                                xr.open_dataset(tmp_path / "straight" / "results.nc", engine="scipy").load())


@pytest.mark.timeout(240)
def test_killed_worker_its_points_rerun_elsewhere(client, tmp_path):
    spec = small_spec()
    log, marker = tmp_path / "exec.log", tmp_path / "kill-once"
    marker.touch()
    outcome = run_sweep(spec, tmp_path / "out", client, progress=False,
                        point_function=functools.partial(logged_point, log=str(log), kill_marker=str(marker)))
    assert not marker.exists() and Path(str(marker) + ".taken").exists()  # a worker did die
    assert outcome.complete and outcome.failed == 0 and outcome.ran == spec.n_points
    ran = executions(log)
    assert set(ran) == {p.id for p in enumerate_points(spec)}
    assert len(ran) > spec.n_points  # the killed point (at least) ran again
    client.wait_for_workers(2, timeout=60)  # the nanny brought the worker back


@pytest.mark.timeout(180)
def point_without_patterns(values, model, build_root, load):
    """run_point, where the points at `load` get load = 0.01, which leaves N = 30 neurons no pattern (a spec
    asking for that directly is refused before anything runs: this is a point failing as it runs)."""
    return run_point({**values, "load": 0.01} if values["load"] == load else values, model, build_root)


def test_failed_point_is_recorded_and_the_sweep_goes_on(client, tmp_path):
    spec = small_spec()
    outcome = run_sweep(spec, tmp_path / "out", client, progress=False,
                        point_function=functools.partial(point_without_patterns, load=0.1))
    assert outcome.complete and outcome.failed == 4 and outcome.ran == 8
    _, dataset, table = load_sweep(tmp_path / "out")
    failed = dataset.sel(load=0.1)
    assert set(failed["status"].values.ravel()) == {"failed"}
    assert np.all(np.isnan(failed["nearest_accuracy"].values))
    assert all("need at least one pattern" in e for e in failed["error"].values.ravel())
    assert set(dataset.sel(load=1.0)["status"].values.ravel()) == {"ok"}
    record = json.loads(point_path(tmp_path / "out", table[table.status == "failed"].point.iloc[0]).read_text())
    assert record["error"].startswith("InputError: patterns: need at least one pattern") and "traceback" in record


# -- the commands -------------------------------------------------------------------------

@pytest.mark.timeout(180)
def test_sweep_and_plot_commands_on_a_scheduler_address(client, tmp_path, capsys, saved_figures):
    spec_path = tmp_path / "small.toml"
    spec_path.write_text(SMALL)
    out = tmp_path / "out"
    address = client.scheduler.address
    assert main(["sweep", str(spec_path), "--scheduler", address, "--out", str(out), "--no-progress"]) == 0
    assert "8 points run" in capsys.readouterr().out
    assert main(["sweep", str(spec_path), "--scheduler", address, "--out", str(out), "--resume",
                 "--no-progress"]) == 0
    assert "0 points run, 8 already finished" in capsys.readouterr().out
    assert main(["plot", str(out)]) == 0
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert "heatmap_nearest_accuracy_load_beta.png" in figures and "lines_nearest_accuracy_load_beta.png" in figures
    # the heatmap's cells and the lines' points are the dataset's values (means over the other axes)
    dataset = load_sweep(out)[1]
    values = dataset["nearest_accuracy"].mean(dim=[d for d in dataset.dims if d not in ("load", "beta")])
    heatmap = saved_figures["heatmap_nearest_accuracy_load_beta.png"].axes[0]
    np.testing.assert_allclose(heatmap.images[0].get_array(), values.transpose("beta", "load").values)
    assert (heatmap.get_xlabel(), heatmap.get_ylabel()) == ("load K/N", "$\\beta$")
    lines = [line for line in saved_figures["lines_nearest_accuracy_load_beta.png"].axes[0].lines
             if line.get_marker() == "o"]
    assert len(lines) == values.sizes["beta"]
    for i, line in enumerate(lines):
        np.testing.assert_allclose(line.get_ydata(), values.isel(beta=i).values)


def test_plot_of_a_partial_sweep(tmp_path):
    spec = small_spec()
    out = tmp_path / "partial"
    (out / "points").mkdir(parents=True)
    (out / "spec.toml").write_text(SMALL)
    point = enumerate_points(spec)[0]
    record = run_point(point.values, spec.model)
    (point_path(out, point.id)).write_text(json.dumps({"id": point.id, **record}))
    assert main(["plot", str(out), "--metric", "nearest_accuracy", "--x", "beta", "--y", "load"]) == 0
    assert (out / "figures" / "heatmap_nearest_accuracy_beta_load.png").stat().st_size > 0


def test_sweeps_run_the_fast_settings_unless_the_spec_says_otherwise():
    from astrogate.analysis.sweep import abstract_settings
    from astrogate.models.abstract import FAST_SETTINGS, REFERENCE_SETTINGS

    assert abstract_settings(small_spec().model) == FAST_SETTINGS
    reference = small_spec(SMALL.replace("tol = 1e-4", 'tol = 1e-4\nsettings = "reference"'))
    assert abstract_settings(reference.model) == REFERENCE_SETTINGS
    changed = small_spec(SMALL.replace("tol = 1e-4", 'tol = 1e-4\nstop = "fixed_point"\ndtype = "float64"'))
    assert abstract_settings(changed.model) == REFERENCE_SETTINGS.__class__(
        method=FAST_SETTINGS.method, stop="fixed_point", dtype="float64")
    point = enumerate_points(small_spec())[5]
    fast, slow = run_point(point.values, small_spec().model), run_point(point.values, reference.model)
    for metric in ("nearest_accuracy", "exact_match"):
        assert fast["metrics"][metric] == slow["metrics"][metric], metric


@pytest.mark.parametrize("line, message", [
    ('settings = "quick"', "unknown settings 'quick'"),
    ('method = "rk4"', "unknown method 'rk4'"),
    ('stop = "soon"', "unknown stop 'soon'"),
    ('method = "adaptive"', "method 'adaptive' takes stop='fixed_point', dtype='float64' and no dt: add settings"),
    ('backend = "brian2"\ndtype = "float32"', "'dtype' applies to backend = \"abstract\" only"),
])
def test_bad_run_settings_in_a_spec_name_the_line(line, message):
    with pytest.raises(InputError, match=re.escape(message)):
        small_spec(SMALL.replace("tol = 1e-4", "tol = 1e-4\n" + line))


def test_malformed_spec_command_exits_2_naming_the_line(tmp_path, capsys):
    spec_path = tmp_path / "bad.toml"
    spec_path.write_text(SMALL.replace("flip = 0.2", "flop = 0.2"))
    assert main(["sweep", str(spec_path), "--out", str(tmp_path / "never")]) == 2
    assert f"{spec_path}:11: unknown field 'flop'" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sweep_on_a_separately_started_scheduler(tmp_path, capsys):
    """`dask scheduler` and `dask worker` started as their own processes on the loopback interface."""
    dask = shutil.which("dask", path=str(Path(sys.executable).parent))
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--no-dashboard"], stderr=subprocess.DEVNULL, start_new_session=True)
    worker = subprocess.Popen([dask, "worker", address, "--nworkers", "2", "--nthreads", "1",
                               "--no-dashboard", "--local-directory", str(tmp_path / "dask")],
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        from distributed import Client

        with Client(address, timeout="30s") as probe:
            probe.wait_for_workers(2, timeout=60)
        spec_path = tmp_path / "small.toml"
        spec_path.write_text(SMALL)
        assert main(["sweep", str(spec_path), "--scheduler", address, "--out", str(tmp_path / "out"),
                     "--no-progress"]) == 0
        assert f"on {address}" in capsys.readouterr().out
        assert (tmp_path / "out" / "results.nc").exists()
    finally:
        for process in (worker, scheduler):
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def test_plot_of_zipped_and_single_axes_before_any_point_finished(tmp_path):
    zipped = SMALL.replace("seed = { values = [0, 1] }", '\n[[zip]]\nname = "scales"\n'
                           "tau_u = { values = [5.0, 10.0] }\ntau_g = { values = [10.0, 20.0] }")
    single = SMALL.replace("beta = { values = [0.0, 600.0] }\n", "").replace("seed = { values = [0, 1] }\n", "")
    for name, text in (("zipped", zipped), ("single", single)):
        out = tmp_path / name
        out.mkdir()
        (out / "spec.toml").write_text(text)
        assert main(["plot", str(out), "--metric", "nearest_accuracy"]) == 0
    assert {p.name for p in (tmp_path / "zipped" / "figures").iterdir()} == {
        "heatmap_nearest_accuracy_load_beta.png", "lines_nearest_accuracy_load_beta.png"}
    assert main(["plot", str(tmp_path / "zipped"), "--metric", "nearest_accuracy", "--x", "scales", "--y", "load"]) == 0
    assert (tmp_path / "zipped" / "figures" / "heatmap_nearest_accuracy_scales_load.png").exists()
    assert [p.name for p in (tmp_path / "single" / "figures").iterdir()] == ["lines_nearest_accuracy_load.png"]


BRIAN2_POINT_IN_A_THREAD = """
import sys, threading
from astrogate.analysis.sweep import run_point
from astrogate.analysis.study import enumerate_points
from astrogate.analysis.spec import parse_study as parse_spec
spec = parse_spec(sys.stdin.read(), "b.toml")
point = enumerate_points(spec)[0]
records = []
worker = threading.Thread(target=lambda: records.append(run_point(point.values, spec.model)))
worker.start(); worker.join()
assert "brian2" in sys.modules
print(records[0]["status"], records[0].get("error"))
"""


@pytest.mark.brian2
def test_brian2_points_run_in_a_worker_thread():
    """A Dask worker runs its tasks in a thread, where Brian2's import-time signal.signal call would raise
    (every Brian2 point of a cluster sweep failed): a fresh process imports Brian2 first in a thread."""
    import subprocess
    import sys

    text = SMALL.replace("tol = 1e-4", 'tol = 0.0\nbackend = "brian2"\ndevice = "runtime"\ntarget = "numpy"')
    text = text.replace("duration = 60.0", "duration = 5.0")
    done = subprocess.run([sys.executable, "-c", BRIAN2_POINT_IN_A_THREAD], input=text, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["ok", "None"], done.stdout + done.stderr[-2000:]
