"""The one catalogue of Kafka topics: names, keys, partitions, clean-up and wiring.

Everything that creates, documents or deploys a topic reads it from here: the local
topic set-up, the AsyncAPI document, the Strimzi `KafkaTopic` manifests and the
contract tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SERVICES = ("registry", "messaging", "reports", "analytics")
CHANNELS = ("sms", "email", "voice", "app")

DAY_MS = 24 * 3600 * 1000

# Erased contact details must leave the log within a bounded time: a segment rolls
# after 10 minutes, the cleaner must compact it within 15 minutes after that, and the
# tombstone itself is dropped one hour later. Worst case about 1 h 25 min.
CONTACTS_CONFIGS = {
    "segment.ms": str(10 * 60 * 1000),
    "max.compaction.lag.ms": str(15 * 60 * 1000),
    "min.cleanable.dirty.ratio": "0.01",
    "delete.retention.ms": str(60 * 60 * 1000),
}


@dataclass(frozen=True)
class Topic:
    """One Kafka topic as the product uses it."""

    name: str
    key: str
    value: str
    producer: str
    consumers: tuple[str, ...]
    partitions: int
    cleanup_policy: str
    description: str
    configs: dict[str, str] = field(default_factory=dict)
    internal: bool = False
    # Other event models the topic carries beside `value`.
    also: tuple[str, ...] = ()

    @property
    def owner(self) -> str:
        """The service that owns the topic: the first part of its name."""
        return self.name.split(".", 1)[0]

    @property
    def dlq(self) -> str:
        """The dead-letter topic of this topic."""
        return f"{self.name}.dlq"

    def all_configs(self) -> dict[str, str]:
        """The topic-level configs to create it with, clean-up policy included."""
        return {"cleanup.policy": self.cleanup_policy, **self.configs}


def _delivery_topic(channel: str) -> Topic:
    return Topic(
        name=f"messaging.deliveries.{channel}.v1",
        key="member id",
        value="Delivery",
        producer="messaging",
        consumers=("messaging",),
        partitions=4,
        cleanup_policy="delete",
        configs={"retention.ms": str(7 * DAY_MS)},
        description=f"One message to one member on the {channel} channel, "
        "with its idempotency key (alert id, member id, channel).",
    )


TOPICS: tuple[Topic, ...] = (
    Topic(
        name="registry.zones.v1",
        key="zone code",
        value="ZoneSnapshot",
        producer="registry",
        consumers=("messaging", "reports", "analytics", "registry"),
        partitions=1,
        cleanup_policy="compact",
        description="A police zone: name, province, municipalities and the "
        "territory units (statistical sectors) that make up its area.",
    ),
    Topic(
        name="registry.bins.v1",
        key="BIN id",
        value="BinSnapshot",
        producer="registry",
        consumers=("messaging", "analytics", "registry"),
        partitions=4,
        cleanup_policy="compact",
        description="A BIN's current state (zone, kind, status, territory units); "
        "a tombstone when it is removed.",
    ),
    Topic(
        name="registry.memberships.v1",
        key="member id",
        value="MembershipSnapshot",
        producer="registry",
        consumers=("messaging", "analytics", "registry"),
        partitions=4,
        cleanup_policy="compact",
        description="Who is in which BIN, role, preferred channels and language, "
        "status; no contact details.",
    ),
    Topic(
        name="registry.contacts.v1",
        key="member id",
        value="ContactsSnapshot",
        producer="registry",
        consumers=("messaging",),
        partitions=4,
        cleanup_policy="compact",
        configs=CONTACTS_CONFIGS,
        description="The member's addresses per channel, encrypted; only messaging "
        "may read it; a tombstone on erasure.",
    ),
    Topic(
        name="registry.directory-listings.v1",
        key="listing id",
        value="DirectoryListing",
        producer="registry",
        consumers=("registry",),
        partitions=1,
        cleanup_policy="compact",
        configs=CONTACTS_CONFIGS,
        description="A BIN actor listed in the directory (coordinator, police contact, "
        "prevention officer) with only the contact details they agreed to list, "
        "encrypted; read by the registry's directory projection; a tombstone when "
        "the actor leaves the directory.",
    ),
    Topic(
        name="messaging.alerts.v1",
        key="zone code",
        value="AlertAccepted",
        producer="messaging",
        consumers=("messaging", "analytics"),
        partitions=4,
        cleanup_policy="delete",
        configs={"retention.ms": str(30 * DAY_MS)},
        description="An alert accepted from a police zone (new, update or cancel).",
    ),
    Topic(
        name="messaging.alert-bins.v1",
        key="BIN id",
        value="AlertForBin",
        producer="messaging",
        consumers=("messaging",),
        partitions=4,
        cleanup_policy="delete",
        configs={"retention.ms": str(7 * DAY_MS)},
        internal=True,
        description="Internal: one alert split per target BIN (fan-out stage 1).",
    ),
    *(_delivery_topic(channel) for channel in CHANNELS),
    Topic(
        name="messaging.deliveries.email-low.v1",
        key="member id",
        value="Delivery",
        producer="messaging",
        consumers=("messaging",),
        partitions=4,
        cleanup_policy="delete",
        configs={"retention.ms": str(7 * DAY_MS)},
        description="E-mail deliveries of low urgency (coordinators' mail): a lane "
        "of their own, so that a large mail never queues before an urgent alert.",
    ),
    Topic(
        name="messaging.delivery-status.v1",
        key="alert id",
        value="DeliveryStatus",
        also=("DeliveriesPending",),
        producer="messaging",
        consumers=("messaging", "analytics"),
        partitions=4,
        cleanup_policy="delete",
        configs={"retention.ms": str(30 * DAY_MS)},
        description="Handed over, failed or given up, with attempt count; and the "
        "deliveries the fan-out wrote, pending, one record per BIN (or per few "
        "thousand deliveries).",
    ),
    Topic(
        name="reports.submitted.v1",
        key="zone code",
        value="ReportSubmitted",
        producer="reports",
        consumers=("analytics",),
        partitions=2,
        cleanup_policy="delete",
        configs={"retention.ms": str(365 * DAY_MS)},
        description="An anonymous report, without anything that identifies the "
        "reporter: category, zone, municipality, coarse time.",
    ),
    Topic(
        name="reports.status.v1",
        key="report id",
        value="ReportStatusChanged",
        producer="reports",
        consumers=("analytics",),
        partitions=2,
        cleanup_policy="compact",
        description="Triage status changes of a report, with the outcome.",
    ),
    Topic(
        name="analytics.coverage.v1",
        key="zone code",
        value="ZoneCoverage",
        producer="analytics",
        consumers=("analytics",),
        partitions=2,
        cleanup_policy="compact",
        description="Live coverage of one zone: BINs, members, units covered of "
        "total, ratio, fully covered.",
    ),
    Topic(
        name="analytics.coverage-province.v1",
        key="province code",
        value="AreaCoverage",
        producer="analytics",
        consumers=("analytics",),
        partitions=1,
        cleanup_policy="compact",
        description="The same figures summed per province, and `BE` for the country.",
    ),
)

BY_NAME = {topic.name: topic for topic in TOPICS}


def topic(name: str) -> Topic:
    """The catalogue entry of a topic; KeyError for a name not in the catalogue."""
    return BY_NAME[name]


def dead_letter_topics() -> tuple[Topic, ...]:
    """One dead-letter topic per consumed topic, keyed as its source."""
    return tuple(
        Topic(
            name=source.dlq,
            key=source.key,
            value="the unprocessable record as it came",
            producer=",".join(source.consumers),
            consumers=(),
            partitions=1,
            cleanup_policy="delete",
            configs={"retention.ms": str(30 * DAY_MS)},
            description=f"Records of {source.name} that could not be parsed or "
            "validated, with the reason in the headers.",
        )
        for source in TOPICS
        if source.consumers
    )


def all_topics() -> tuple[Topic, ...]:
    """Every topic to create: the catalogue and its dead-letter topics."""
    return TOPICS + dead_letter_topics()


def published_by(service: str) -> tuple[Topic, ...]:
    """The topics a service writes."""
    return tuple(t for t in TOPICS if t.producer == service)


def consumed_by(service: str) -> tuple[Topic, ...]:
    """The topics a service reads."""
    return tuple(t for t in TOPICS if service in t.consumers)
