"""A wheel built from the checkout, installed into a fresh virtual environment, works outside the checkout
and writes nothing into site-packages. Minutes: it installs astrogate's requirements."""

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if "__pycache__" not in p.parts}


def test_wheel_install_runs_demo_and_quick_benchmark_from_elsewhere(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
                   check=True, cwd=tmp_path)
    (wheel,) = wheels.glob("astrogate-*.whl")
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True, cwd=tmp_path)
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    installed = files_under(site / "astrogate")
    assert "configs/bench_quick.toml" in installed and "network/templates/summed_variable.cpp" in installed
    before = files_under(site)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": ""}
    astrogate = str(env_dir / "bin" / "astrogate")

    def run(*args):
        done = subprocess.run([astrogate, *args], capture_output=True, text=True, cwd=work, env=env)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    assert "usage: astrogate" in run("--help")
    demo = run("demo", "--out", "demo")
    assert "retrieved pattern" in demo and (work / "demo" / "demo.png").is_file()
    assert "Brian2 network, cpp_standalone" in demo and "did not run" not in demo
    bench = run("bench", "retrieval", "--quick", "--out", "bench", "--no-progress")
    assert "cells in" in bench and (work / "bench" / "results.csv").is_file()
    module = subprocess.run([str(python), "-m", "astrogate", "--version"], capture_output=True, text=True,
                            cwd=work, env=env)
    assert module.stdout.strip() == run("--version").strip()
    assert files_under(site) == before, sorted(files_under(site) ^ before)[:10]


def test_a_non_editable_install_imports_from_the_repository_root(tmp_path):
    """`pip install .` (not editable), then Python started in the checkout's root: the installed package is
    imported, with its subpackages, not a folder of the checkout named astrogate (the package root is api/)."""
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(ROOT)], check=True, cwd=tmp_path)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": ""}
    code = ("import astrogate, astrogate.models.parameters as p; astrogate.Parameters; astrogate.AstroGateModel; "
            "print(astrogate.__file__); print(p.__file__)")
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    site = str(env_dir)
    package, parameters = done.stdout.split()
    assert package.startswith(site) and parameters.startswith(site), done.stdout
    assert not (ROOT / "astrogate").exists()  # nothing in the checkout can shadow the installed package
