"""What the HTTP process knows, read from Kafka into memory: analytics has no database.

The coverage figures come from the worker's compacted output topics, read from
the beginning by a consumer without a group (each HTTP process keeps its own
copy); reports, alerts and delivery statuses are small enough to be aggregated
here from their topics, and so are the BINs and memberships behind the per-BIN
member counts (never the contacts topic). Nothing here reads the worker's tables.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.analytics import domain, telemetry
from services.analytics.settings import AnalyticsSettings
from shared import events
from shared.envelope import EnvelopeError, Received, decode

log = logging.getLogger("bin.analytics.store")

FIGURE_TOPICS = (
    events.ReportSubmitted.TOPIC,
    events.ReportStatusChanged.TOPIC,
    events.AlertAccepted.TOPIC,
    events.DeliveryStatus.TOPIC,
)
REGISTRY_TOPICS = (events.BinSnapshot.TOPIC, events.MembershipSnapshot.TOPIC)
SUBSCRIBER_BACKLOG = 1000
READ_SLICE = 200


@dataclass
class Views:
    """The latest coverage records, report and delivery figures, and live followers."""

    zones: dict[str, dict[str, Any]] = field(default_factory=dict)
    areas: dict[str, dict[str, Any]] = field(default_factory=dict)
    reports: domain.ReportFigures = field(default_factory=domain.ReportFigures)
    deliveries: domain.DeliveryFigures = field(default_factory=domain.DeliveryFigures)
    registry: domain.CoverageModel = field(default_factory=domain.CoverageModel)
    followers: set[asyncio.Queue[tuple[str, dict[str, Any]]]] = field(
        default_factory=set
    )
    # Readiness: the coverage topics were read up to their end at start-up. The
    # registry's history (for per-BIN counts) can be far longer and is waited for
    # by those answers alone.
    caught_up: bool = False
    registry_caught_up: bool = False

    def apply(self, received: Received, *, topic: str) -> None:
        """Takes one decoded record into the views and tells the followers."""
        event = received.event
        key = received.key or ""
        if topic == events.ZoneCoverage.TOPIC:
            self._replace(self.zones, key, event, kind="zone")
        elif topic == events.AreaCoverage.TOPIC:
            self._replace(self.areas, key, event, kind="area")
        elif topic == events.BinSnapshot.TOPIC:
            self.registry.apply_bin(bin_id=key, snapshot=event)  # type: ignore[arg-type]
            self.registry.take_dirty()
        elif topic == events.MembershipSnapshot.TOPIC:
            self.registry.apply_member(
                member_id=key,
                snapshot=event,  # type: ignore[arg-type]
            )
            self.registry.take_dirty()
        elif isinstance(event, events.ReportSubmitted):
            self.reports.apply_submitted(event)
        elif isinstance(event, events.ReportStatusChanged):
            self.reports.apply_status(event)
        elif isinstance(event, events.AlertAccepted):
            self.deliveries.apply_alert(event)
        elif isinstance(event, events.DeliveryStatus):
            self.deliveries.apply_status(event)
        elif isinstance(event, events.DeliveriesPending):
            self.deliveries.apply_pending(event)

    def _replace(
        self,
        records: dict[str, dict[str, Any]],
        key: str,
        event: events.Event | None,
        *,
        kind: str,
    ) -> None:
        if event is None:
            records.pop(key, None)
            self._tell(kind, {"key": key, "removed": True})
            return
        record = event.model_dump(mode="json")
        records[key] = record
        self._tell(kind, record)

    def _tell(self, kind: str, record: dict[str, Any]) -> None:
        for queue in list(self.followers):
            try:
                queue.put_nowait((kind, record))
            except asyncio.QueueFull:
                # A follower that does not read is dropped rather than slowing others.
                self.followers.discard(queue)

    def follow(self) -> asyncio.Queue[tuple[str, dict[str, Any]]]:
        """A queue that receives every coverage change from now on."""
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(
            maxsize=SUBSCRIBER_BACKLOG
        )
        self.followers.add(queue)
        telemetry.SSE_CLIENTS.set(len(self.followers))
        return queue

    def unfollow(self, queue: asyncio.Queue[tuple[str, dict[str, Any]]]) -> None:
        """Stops sending changes to a queue."""
        self.followers.discard(queue)
        telemetry.SSE_CLIENTS.set(len(self.followers))


async def follow_kafka_topics(
    settings: AnalyticsSettings, *, views: Views, stop: asyncio.Event
) -> None:
    """Reads the analytics input topics from their start into `views` until stopped."""
    # Records are dispatched by the catalogue's topic names.
    logical = {
        settings.coverage_topic: events.ZoneCoverage.TOPIC,
        settings.area_topic: events.AreaCoverage.TOPIC,
    }
    coverage_topics = (settings.coverage_topic, settings.area_topic)
    caught_up_topics = (*coverage_topics, *REGISTRY_TOPICS)
    consumer = AIOKafkaConsumer(
        **settings.kafka_client_options(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    # Without a group every partition is assigned here, read from the earliest offset.
    consumer.subscribe(topics=[*coverage_topics, *REGISTRY_TOPICS, *FIGURE_TOPICS])
    ends: dict[TopicPartition, int] | None = None
    try:
        while not stop.is_set():
            # Small slices, with a pause between them: reading the registry's
            # history at start-up must not keep HTTP requests waiting.
            batches = await consumer.getmany(timeout_ms=200, max_records=READ_SLICE)
            for records in batches.values():
                for record in records:
                    topic = logical.get(record.topic, record.topic)
                    _take(views, topic, record.key, record.value, record.headers)
                await asyncio.sleep(0)
            if views.caught_up and views.registry_caught_up:
                continue
            assigned = consumer.assignment()
            watched = [tp for tp in assigned if tp.topic in caught_up_topics]
            if ends is None and {tp.topic for tp in watched} == set(caught_up_topics):
                ends = await consumer.end_offsets(watched)
            if ends is None:
                continue
            coverage = {
                tp: end for tp, end in ends.items() if tp.topic in coverage_topics
            }
            if not views.caught_up and await _reached(consumer, coverage):
                views.caught_up = True
                log.info(
                    "coverage topics read up to their end",
                    extra={"count": len(views.zones)},
                )
            registry = {
                tp: end for tp, end in ends.items() if tp.topic in REGISTRY_TOPICS
            }
            if not views.registry_caught_up and await _reached(consumer, registry):
                views.registry_caught_up = True
                log.info(
                    "registry topics read up to their end",
                    extra={"count": len(views.registry.members)},
                )
    finally:
        await consumer.stop()


async def _reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


def _take(
    views: Views,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: Any,
) -> None:
    try:
        received = decode(key=key, value=value, headers=headers)
    except EnvelopeError as error:
        # The worker dead-letters bad input; a bad record here is skipped, not fatal.
        log.warning(
            "skipping unreadable record", extra={"topic": topic, "reason": str(error)}
        )
        return
    telemetry.record_api_record(topic=topic)
    views.apply(received, topic=topic)
