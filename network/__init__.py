"""Brian2 networks of the model: the memory object (memory.py), devices, sessions that build and re-run it."""
