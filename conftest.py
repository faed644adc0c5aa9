"""Repository-wide pytest configuration. The stimrig plugin itself is loaded via its entry point
(``pytest11``), so an installed stimrig works the same from any directory."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Fuzzing stays bounded on CI's 2 cores; STIMRIG_HYPOTHESIS=thorough for a longer local run.
settings.register_profile("default", deadline=None, max_examples=100,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", deadline=None, max_examples=2000,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("STIMRIG_HYPOTHESIS", "default"))

pytest_plugins = ["pytester"]
