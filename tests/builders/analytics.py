"""Builders of the registry, report and messaging events the analytics service reads,
and a helper that lets a fresh coverage worker start where the registry is now.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from shared import events
from shared.settings import ServiceSettings

NOW = datetime(2026, 2, 9, 10, 0, tzinfo=UTC)


def zone(
    code: str = "ipz10",
    *,
    units: list[str] | None = None,
    province_nis: str = "10000",
    province_name: str = "Antwerpen",
    name: str | None = None,
    version: int = 1,
) -> events.ZoneSnapshot:
    """A zone snapshot with four units by default."""
    return events.ZoneSnapshot(
        zone=code,
        name=name or f"PZ {code}",
        province_nis=province_nis,
        province_name=province_name,
        municipalities=[],
        units=units if units is not None else [f"{code}-u{i}" for i in range(4)],
        version=version,
    )


def bin_(
    bin_id: str = "bin-1",
    *,
    zone: str = "ipz10",
    territory: list[str] | None = None,
    status: str = "active",
    kind: str = "residential",
    version: int = 1,
) -> events.BinSnapshot:
    """A BIN snapshot, active and residential by default."""
    return events.BinSnapshot(
        bin_id=bin_id,
        zone=zone,
        name=f"BIN {bin_id}",
        kind=kind,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        territory=territory or [],
        version=version,
        updated_at=NOW,
    )


def member(
    member_id: str = "m-1",
    *,
    bin_id: str = "bin-1",
    zone: str = "ipz10",
    status: str = "active",
    version: int = 1,
) -> events.MembershipSnapshot:
    """A membership snapshot, active by default."""
    return events.MembershipSnapshot(
        member_id=member_id,
        bin_id=bin_id,
        zone=zone,
        role="member",
        status=status,  # type: ignore[arg-type]
        language="nl",
        channels=["sms"],
        version=version,
        updated_at=NOW,
    )


def report(
    report_id: str = "r-1",
    *,
    zone: str = "ipz10",
    municipality_nis: str = "11040",
    category: str = "plantation",
    hour: datetime = NOW,
) -> events.ReportSubmitted:
    """An anonymous report."""
    return events.ReportSubmitted(
        report_id=report_id,
        zone=zone,
        province_nis="10000",
        municipality_nis=municipality_nis,
        category=category,  # type: ignore[arg-type]
        submitted_hour=hour,
    )


def report_status(
    report_id: str = "r-1",
    *,
    status: str = "closed",
    outcome: str | None = "found",
    zone: str = "ipz10",
) -> events.ReportStatusChanged:
    """A triage status change."""
    return events.ReportStatusChanged(
        report_id=report_id,
        zone=zone,
        category="plantation",
        status=status,
        outcome=outcome,
        changed_hour=NOW,  # type: ignore[arg-type]
    )


def alert(alert_id: str = "a-1", *, zone: str = "ipz10", action: str = "alert"):
    """An accepted alert."""
    return events.AlertAccepted(
        alert_id=alert_id,
        zone=zone,
        action=action,  # type: ignore[arg-type]
        category="burglary",
        urgency="Immediate",
        severity="Minor",
        texts={"nl": events.AlertText(headline="h", body="b")},
        channels=["sms"],
        target=events.AlertTarget(kind="zone"),
        expires_at=NOW + timedelta(hours=4),
        accepted_at=NOW,
    )


def delivery_status(
    alert_id: str = "a-1",
    *,
    member_id: str = "m-1",
    channel: str = "sms",
    status: str = "handed_over",
    after_s: float = 2.0,
    zone: str = "ipz10",
) -> events.DeliveryStatus:
    """A delivery status, handed over `after_s` seconds after the alert by default."""
    return events.DeliveryStatus(
        alert_id=alert_id,
        member_id=member_id,
        zone=zone,
        channel=channel,
        status=status,  # type: ignore[arg-type]
        attempt=1,
        accepted_at=NOW,
        at=NOW + timedelta(seconds=after_s),
    )


def deliveries_pending(
    alert_id: str = "a-1", *, members: dict[str, list[str]], zone: str = "ipz10"
) -> events.DeliveriesPending:
    """One BIN's deliveries as the fan-out reports them, pending."""
    return events.DeliveriesPending(
        alert_id=alert_id,
        zone=zone,
        bin_id="bin-1",
        members=members,  # type: ignore[arg-type]
        accepted_at=NOW,
        at=NOW,
    )


async def skip_registry_history(settings: ServiceSettings, *, group: str) -> None:
    """Commits the registry topics' end offsets for the worker's consumer group.

    The worker then starts where the registry is now instead of reading its whole
    history (which other runs on a shared broker keep growing): when every zone,
    BIN and member a test or benchmark looks at comes later, its figures are
    complete.
    """
    names = [
        events.ZoneSnapshot.TOPIC,
        events.BinSnapshot.TOPIC,
        events.MembershipSnapshot.TOPIC,
    ]
    consumer = AIOKafkaConsumer(
        *names,
        **settings.kafka_client_options(),
        group_id=None,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(name, number)
            for name in names
            for number in consumer.partitions_for_topic(name) or ()
        ]
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    committer = AIOKafkaConsumer(
        **settings.kafka_client_options(), group_id=group, enable_auto_commit=False
    )
    await committer.start()
    try:
        committer.assign(partitions)
        await committer.commit(
            {tp: OffsetAndMetadata(end, "") for tp, end in ends.items()}
        )
    finally:
        await committer.stop()
