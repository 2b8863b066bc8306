"""Shared test settings."""

import os

from hypothesis import HealthCheck, settings

# CI machines are shared and slow: no deadlines, fewer examples than a developer's profile
settings.register_profile("ci", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")


# -- Brian2: every test marked `brian2` starts and ends on the runtime device with default preferences,
# no debug logs in the temp folder and the Cython cache in the user cache folder (network/devices.py)
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def brian2_clean_state(request):
    if request.node.get_closest_marker("brian2") is None:
        yield
        return
    from astrogate.network.devices import reset_runtime

    reset_runtime()
    yield
    reset_runtime()


# -- figures: tests check what a figure shows (its axes, lines, points and labels), not that a file exists
@pytest.fixture
def saved_figures(monkeypatch):
    """Every matplotlib Figure saved during the test, as {file name: Figure}, still drawable after close."""
    from matplotlib.figure import Figure

    saved = {}
    original = Figure.savefig

    def savefig(self, fname, *args, **kwargs):
        saved[str(getattr(fname, "name", None) or fname).rsplit("/", 1)[-1]] = self  # a Path, or a file named so
        return original(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return saved


def recall_figure_matches(fig, record, columns=1, column=0) -> None:
    """The three panels of analysis/plots.py for one retrieval: every traced pattern's overlap and gain line
    equals the record's trace, the target is the labelled thick line, and L is drawn where it is traced."""
    import numpy as np

    axes = np.asarray(fig.axes).reshape(3, columns)[:, column]
    overlaps, gains, energy = axes
    assert overlaps.get_ylabel() == "overlap $m_\\mu$" and gains.get_ylabel() == "gain $g_\\mu$"
    assert energy.get_xlabel().startswith("time (ms")
    assert len(overlaps.lines) == len(gains.lines) == len(record["trace_patterns"])
    t = np.asarray(record["t"])
    for k, mu in enumerate(record["trace_patterns"]):
        np.testing.assert_array_equal(overlaps.lines[k].get_xdata(), t)
        np.testing.assert_allclose(overlaps.lines[k].get_ydata(), np.asarray(record["overlap_trace"])[:, k])
        np.testing.assert_allclose(gains.lines[k].get_ydata(), np.asarray(record["gain_trace"])[:, k])
        assert ("target" in overlaps.lines[k].get_label()) == (mu == record["target"])
    if len(record["energy"]) == len(t):
        np.testing.assert_allclose(energy.lines[0].get_ydata(), record["energy"])
    else:
        assert not energy.lines
