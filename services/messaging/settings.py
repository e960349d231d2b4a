"""Settings of the messaging service, read once at start-up from the environment."""

from __future__ import annotations

from functools import lru_cache

from shared.settings import ServiceSettings


class MessagingSettings(ServiceSettings):
    """Everything the messaging service can be configured with."""

    service_name: str = "messaging"
    http_port: int = 8002


@lru_cache(maxsize=1)
def get_settings() -> MessagingSettings:
    """The service's settings, read on first use."""
    return MessagingSettings()
