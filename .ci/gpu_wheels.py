"""Fill .whl/ with what a GPU session (.ci/gpu-session, docs/gpu_session.md) installs on the GPU machine.

Run with the project's venv python (`make gpu-wheels`). The GPU machine has no network; its python3
already holds the packages of .ci/device-packages.txt. This script walks the requirements of
astrogate[cuda,test] as installed in this venv (Requires-Dist, markers evaluated for Linux x86-64,
Python 3.12), keeps those the GPU machine lacks, and downloads each as a wheel for Python 3.12 on
manylinux x86-64 at the version this venv has (pure-Python wheels where the package is pure). It then
builds the astrogate wheel itself (no editable install there: `pip install --target`), checks that the
Brian2 template (network/templates/*.cpp) is in it, and adds the Debian packages `make` and `time` as
fallbacks in .whl/deb/ (unpacked there only if the machine lacks them). One version of each, the total
size printed; it fails above --max-mib (the whole working tree that travels is limited to 64 MiB).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64"]
EXTRAS = ("cuda", "test")
DEBS = ("make", "time")  # build and peak-memory tools; brian2's standalone builds run `make`


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def device_packages(path: Path) -> set[str]:
    return {norm(line.strip()) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")}


def closure(root: str, extras: tuple[str, ...]) -> dict[str, str]:
    """name -> installed version of every distribution that `root[extras]` needs here (root excluded)."""
    env = default_environment()
    env.update(python_version="3.12", platform_system="Linux", sys_platform="linux", platform_machine="x86_64",
               os_name="posix", implementation_name="cpython", platform_python_implementation="CPython")
    seen: dict[str, str] = {}
    visited: set[tuple[str, frozenset]] = set()
    todo = [(root, set(extras))]
    while todo:
        name, wanted = todo.pop()
        if (norm(name), frozenset(wanted)) in visited:
            continue
        visited.add((norm(name), frozenset(wanted)))
        dist = metadata.distribution(name)
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None and not any(req.marker.evaluate({**env, "extra": e}) for e in (wanted or {""})):
                continue
            key = norm(req.name)
            try:
                version = metadata.version(req.name)
            except metadata.PackageNotFoundError:
                raise SystemExit(f"gpu-wheels: {req.name} (needed by {name}) is not installed in this venv: "
                                 "run `make venv` first") from None
            seen[key] = version
            todo.append((req.name, set(req.extras)))
    return seen


def run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        out = "\n".join(line for line in (proc.stdout + proc.stderr).splitlines()
                        if not line.startswith("WARNING: Location"))
        raise SystemExit(f"gpu-wheels: failed: {' '.join(cmd)}\n{out[-3000:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", default=str(ROOT / ".whl"))
    parser.add_argument("--max-mib", type=float, default=50.0)
    parser.add_argument("--no-debs", action="store_true", help="skip the make and time Debian packages")
    args = parser.parse_args()
    dest = Path(args.dest)
    on_device = device_packages(ROOT / ".ci" / "device-packages.txt")
    needed = closure("astrogate", EXTRAS)
    missing = {name: version for name, version in sorted(needed.items()) if name not in on_device}
    print(f"astrogate[{','.join(EXTRAS)}] needs {len(needed)} distributions; the GPU machine lacks "
          f"{len(missing)}: {', '.join(f'{n}=={v}' for n, v in missing.items())}")

    # one version of each: start from an empty folder
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    if missing:
        run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
             "3.12", "--implementation", "cp", *[f"--platform={p}" for p in PLATFORMS], "-d", str(dest),
             *[f"{n}=={v}" for n, v in missing.items()]])
    # the project itself, as a regular wheel (installed with --target there, no editable install)
    build_dir = ROOT / "build"
    shutil.rmtree(build_dir, ignore_errors=True)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dest), str(ROOT)])
    shutil.rmtree(build_dir, ignore_errors=True)
    wheels = sorted(dest.glob("*.whl"))
    ours = [w for w in wheels if w.name.startswith("astrogate-")]
    if len(ours) != 1:
        raise SystemExit(f"gpu-wheels: expected one astrogate wheel, found {[w.name for w in ours]}")
    names = zipfile.ZipFile(ours[0]).namelist()
    for required in ("astrogate/__main__.py", "astrogate/network/cuda.py", "astrogate/analysis/speed/__init__.py"):
        if required not in names:
            raise SystemExit(f"gpu-wheels: {required} is missing from {ours[0].name}")
    templates = sorted(Path(n).name for n in names if n.startswith("astrogate/network/templates/") and n.endswith(".cpp"))
    expected = sorted(p.name for p in (ROOT / "network" / "templates").glob("*.cpp"))
    if templates != expected:
        raise SystemExit(f"gpu-wheels: templates in the wheel {templates} != network/templates {expected}")

    # every name once
    projects: dict[str, list[str]] = {}
    for w in wheels:
        projects.setdefault(norm(w.name.split("-")[0]), []).append(w.name)
    twice = {k: v for k, v in projects.items() if len(v) > 1}
    if twice:
        raise SystemExit(f"gpu-wheels: more than one version of {twice}")
    got = set(projects) - {"astrogate"}
    if got != set(missing):
        raise SystemExit(f"gpu-wheels: downloaded {sorted(got)} but needed {sorted(missing)}")

    if not args.no_debs:
        deb_dir = dest / "deb"
        deb_dir.mkdir()
        proc = subprocess.run(["apt-get", "download", *DEBS], cwd=deb_dir, capture_output=True, text=True)
        if proc.returncode != 0 or len(list(deb_dir.glob("*.deb"))) != len(DEBS):
            print(f"gpu-wheels: warning: could not fetch the Debian packages {', '.join(DEBS)} "
                  "(the GPU session then relies on the machine's own make)", file=sys.stderr)

    files = sorted(p for p in dest.rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in files)
    for p in files:
        print(f"  {p.stat().st_size / 2**20:7.2f} MiB  {p.relative_to(dest)}")
    print(f"{len(files)} files, {total / 2**20:.1f} MiB in {dest}")
    if total > args.max_mib * 2**20:
        raise SystemExit(f"gpu-wheels: {total / 2**20:.1f} MiB is over the {args.max_mib:g} MiB allowed "
                         "(the working tree that travels to the GPU machine is limited to 64 MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
