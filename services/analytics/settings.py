"""Settings of the analytics service, read once at start-up from the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from shared import events
from shared.settings import ROOT, ServiceSettings


class AnalyticsSettings(ServiceSettings):
    """Everything the analytics service can be configured with."""

    service_name: str = "analytics"
    http_port: int = 8004
    worker_metrics_port: int = 6604
    faust_app_id: str = "bin-analytics"
    faust_data_root: Path = ROOT / ".run" / "faust"
    # How often the worker publishes the figures of the zones that changed: one
    # record per zone per tick however many registry events arrived.
    publish_interval_s: float = 0.1
    # How often the worker commits offsets (dead letters wait for it).
    commit_interval_s: float = 0.5
    # Stage 1 forwards what arrived within this time (at most this many) as one record.
    forward_within_s: float = 0.01
    forward_batch_max: int = 1000
    # Public answers show counts below this as "<N" for areas smaller than a zone.
    small_count_threshold: int = 5
    # Where the worker publishes and the HTTP process reads the figures: the
    # catalogue's topics; tests give each worker topics of its own.
    coverage_topic: str = events.ZoneCoverage.TOPIC
    area_topic: str = events.AreaCoverage.TOPIC
    # The province the dashboard opens on (10000 = Antwerpen).
    dashboard_province: str = "10000"

    def faust_datadir(self) -> Path:
        """Where the Faust worker keeps its local state."""
        return self.faust_data_root / self.faust_app_id


@lru_cache(maxsize=1)
def get_settings() -> AnalyticsSettings:
    """The service's settings, read on first use."""
    return AnalyticsSettings()
