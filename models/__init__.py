"""Equations, parameters, patterns, the abstract NumPy model and the baselines. Nothing here runs Brian2."""
