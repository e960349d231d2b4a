"""Prometheus metrics of the reports service: counts by kind, never by reporter."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REPORTS_STORED = Counter(
    "bin_reports_stored_total",
    "Reports stored, by category and whether a zone claimed the place.",
    ["category", "routed"],
)
SUBMISSIONS_REFUSED = Counter(
    "bin_reports_submissions_refused_total",
    "Submissions or follow-ups refused, by reason.",
    ["reason"],
)
RECEIPT_CHECK_SECONDS = Histogram(
    "bin_reports_receipt_check_duration_seconds",
    "Time of one Argon2 receipt hash or check.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
REPORTS_PURGED = Counter(
    "bin_reports_purged_total", "Closed reports deleted after their retention."
)
ZONES_LEARNT = Counter(
    "bin_reports_zones_learnt_total", "Zone snapshots stored from the registry."
)


def record_stored(*, category: str, routed: bool) -> None:
    """Counts one stored report."""
    REPORTS_STORED.labels(category, "zone" if routed else "triage").inc()


def record_refused(*, reason: str) -> None:
    """Counts one refused submission or follow-up."""
    SUBMISSIONS_REFUSED.labels(reason).inc()


def record_receipt_check(*, seconds: float) -> None:
    """Records the time of one Argon2 operation."""
    RECEIPT_CHECK_SECONDS.observe(seconds)


def record_purged(*, count: int) -> None:
    """Counts purged reports."""
    REPORTS_PURGED.inc(count)


def record_zone_learnt() -> None:
    """Counts one stored zone snapshot."""
    ZONES_LEARNT.inc()
