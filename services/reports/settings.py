"""Settings of the reports service, read once at start-up from the environment."""

from __future__ import annotations

from functools import lru_cache

from shared.settings import DEV_SECRET_PREFIX, ServiceSettings


class ReportsSettings(ServiceSettings):
    """Everything the reports service can be configured with."""

    service_name: str = "reports"
    http_port: int = 8003
    # Signs the proof-of-work challenges; at least 16 bytes.
    challenge_secret: str = DEV_SECRET_PREFIX + "reports-challenge-key-0123456789"
    pow_difficulty: int = 18
    nojs_min_age_s: float = 20.0
    # Argon2id cost of one receipt check (RFC 9106 low-memory profile by default).
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 64 * 1024
    argon2_parallelism: int = 1
    # Global token buckets (per API process): capacity, then refill per second.
    submit_solved_capacity: float = 60
    submit_solved_per_s: float = 1.0
    submit_waited_capacity: float = 10
    submit_waited_per_s: float = 0.1
    followup_capacity: float = 20
    followup_per_s: float = 0.5
    wrong_code_capacity: float = 30
    wrong_code_per_s: float = 0.05
    max_photos: int = 3
    max_photo_bytes: int = 5 * 1024 * 1024
    # A request carries at most the photos (base64 adds a third) and some text.
    max_request_bytes: int = 24 * 1024 * 1024
    zones_topic: str = "registry.zones.v1"
    zones_refresh_s: float = 10.0
    retention_days: float = 365.0
    purge_interval_s: float = 3600.0
    relay_sweep_s: float = 1.0

    def secret_values(self) -> dict[str, str]:
        """The secrets that must be replaced outside development."""
        return {**super().secret_values(), "challenge_secret": self.challenge_secret}


@lru_cache(maxsize=1)
def get_settings() -> ReportsSettings:
    """The service's settings, read on first use."""
    return ReportsSettings()
