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
