"""The `astrogate` command line: a thin layer over the public Python API (one module per subcommand)."""
