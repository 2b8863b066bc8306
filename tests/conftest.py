"""Shared test settings."""

import os

from hypothesis import HealthCheck, settings

# CI machines are shared and slow: no deadlines, fewer examples than a developer's profile
settings.register_profile("ci", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")
