"""Brian2 networks of the model: the memory object (memory.py), devices, sessions that build and re-run it."""

from astrogate.models.units import import_brian2

import_brian2()  # first, so that every network module's Brian2 import also works in a worker thread (Dask)
