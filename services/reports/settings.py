"""Settings of the reports service, read once at start-up from the environment."""

from __future__ import annotations

from functools import lru_cache

from shared.settings import ServiceSettings


class ReportsSettings(ServiceSettings):
    """Everything the reports service can be configured with."""

    service_name: str = "reports"
    http_port: int = 8003


@lru_cache(maxsize=1)
def get_settings() -> ReportsSettings:
    """The service's settings, read on first use."""
    return ReportsSettings()
