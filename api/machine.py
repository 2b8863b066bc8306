"""This machine's resources: its memory, and the refusal of a run estimated not to fit in it.

A module of the package root (imported by every layer): the memory a run needs is estimated from its sizes
where the run is set up (models, network, analysis), and compared here with what the kernel reports.
"""

from __future__ import annotations

import os

from astrogate.errors import InputError


def machine_memory() -> tuple[int, int]:
    """(available, total) bytes of memory on this machine; available is the kernel's MemAvailable."""
    try:
        with open("/proc/meminfo") as fh:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in fh if line.count(":") == 1}
        return info.get("MemAvailable", info["MemTotal"]), info["MemTotal"]
    except (OSError, KeyError, ValueError, IndexError):
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (OSError, ValueError):
            total = 2**63
        return total, total


def gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.3g} GiB"


def require_memory(n_bytes: float, what: str) -> None:
    """Refuse, before allocating, a run estimated to need more memory than this machine has available."""
    available, total = machine_memory()
    if n_bytes > available:
        raise InputError(f"{what} needs about {gib(n_bytes)} of memory (estimated before allocating), more than "
                         f"the {gib(available)} available on this machine ({gib(total)} in all): choose smaller sizes")
