"""Settings of the analytics service, read once at start-up from the environment."""

from __future__ import annotations

from functools import lru_cache

from shared.settings import ServiceSettings


class AnalyticsSettings(ServiceSettings):
    """Everything the analytics service can be configured with."""

    service_name: str = "analytics"
    http_port: int = 8004


@lru_cache(maxsize=1)
def get_settings() -> AnalyticsSettings:
    """The service's settings, read on first use."""
    return AnalyticsSettings()
