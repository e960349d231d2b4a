"""Settings of the registry service, read once at start-up from the environment."""

from __future__ import annotations

from functools import lru_cache

from shared.settings import ServiceSettings


class RegistrySettings(ServiceSettings):
    """Everything the registry service can be configured with."""

    service_name: str = "registry"
    http_port: int = 8001


@lru_cache(maxsize=1)
def get_settings() -> RegistrySettings:
    """The service's settings, read on first use."""
    return RegistrySettings()
