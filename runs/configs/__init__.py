"""The tracked configs (benchmarks and sweep studies), shipped as package data: `config_path(name)`."""

from importlib.resources import files
from pathlib import Path


def config_path(name: str) -> Path:
    """The shipped config file `name` (for example "bench_quick.toml")."""
    return Path(str(files(__name__) / name))
