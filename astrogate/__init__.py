"""astrogate: astrocyte-gated associative memory (a reconstruction of Vivet & Arenas, 2026)."""

__version__ = "0.1.0"
