"""Brian2 networks (being built on branch brian2net; this placeholder lets `pip install -e .` find the package)."""
