"""The command line run in the test's own process, for the tests of its refusals."""

from __future__ import annotations

from astrogate.cli.main import main


def run(argv, capsys):
    """(exit code, stdout, stderr) of `astrogate ARGV` (paths and numbers as their text)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err
