"""Settings of the registry service, read once at start-up from the environment."""

from __future__ import annotations

from functools import lru_cache

from shared.settings import DEV_SECRET_PREFIX, ServiceSettings


class RegistrySettings(ServiceSettings):
    """Everything the registry service can be configured with."""

    service_name: str = "registry"
    http_port: int = 8001
    # Keys the blind index of e-mail addresses and phones (duplicate detection).
    blind_index_secret: str = DEV_SECRET_PREFIX + "blind-index-key-0123456789abcdef"
    privacy_notice_version: str = "2026-01"
    member_token_hours: int = 24 * 30
    relay_sweep_seconds: float = 30.0
    # Where members reach the registry from outside: the base of the unsubscribe links
    # messaging puts in every mail (`{registry_public_url}/v1/unsubscribe/{token}`).
    registry_public_url: str = "http://127.0.0.1:8001"
    # The consumer group of the directory projection (role `directory`).
    directory_group_id: str = "registry-directory"

    def secret_values(self) -> dict[str, str]:
        """The secrets that must be replaced outside development."""
        return {**super().secret_values(), "blind_index_secret": self.blind_index_secret}


@lru_cache(maxsize=1)
def get_settings() -> RegistrySettings:
    """The service's settings, read on first use."""
    return RegistrySettings()
