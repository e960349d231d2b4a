"""Plain aiokafka readers: views rebuilt from the start of a topic on every start.

The API's view of zones and BINs, the senders' view of alert states and the status
board all replay their topics from the beginning when the process starts, so a
restart or a redelivery can never count anything twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.messaging import domain, store
from services.messaging.settings import MessagingSettings
from shared.envelope import EnvelopeError, Received, decode
from shared.events import (
    AlertAccepted,
    BinSnapshot,
    DeliveriesPending,
    DeliveryStatus,
    ZoneSnapshot,
)

log = logging.getLogger("bin.messaging.consumers")

Apply = Callable[[Received], Awaitable[None] | None]


async def replay_and_follow(
    settings: MessagingSettings,
    *,
    topics: list[str],
    apply: Apply,
    stop: asyncio.Event,
    caught_up: asyncio.Event,
    on_idle: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Read topics from their beginning, set `caught_up` at the start-time end."""
    consumer = AIOKafkaConsumer(
        **settings.kafka_client_options(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=2000,
    )
    await consumer.start()
    try:
        partitions = []
        for topic in topics:
            numbers = consumer.partitions_for_topic(topic)
            while not numbers:
                await consumer._client.force_metadata_update()
                numbers = consumer.partitions_for_topic(topic) or set()
                if not numbers:
                    await asyncio.sleep(0.5)
            partitions += [TopicPartition(topic, n) for n in sorted(numbers)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp, end in ends.items() if end > 0}
        if not remaining:
            caught_up.set()
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=2000)
            for tp, records in batches.items():
                for record in records:
                    await _apply_one(record, apply=apply)
                if tp in remaining and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
            # Compacted topics can end on an offset that is never returned.
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
            if not remaining and not caught_up.is_set():
                caught_up.set()
            if on_idle is not None:
                await on_idle()
    except Exception:
        # The view stops here; say so, or a reader waits for it forever.
        log.exception("GAVE UP following topics", extra={"topic": ",".join(topics)})
        raise
    finally:
        await consumer.stop()


async def _apply_one(record: object, *, apply: Apply) -> None:
    try:
        received = decode(key=record.key, value=record.value, headers=record.headers)
    except EnvelopeError as error:
        # The owning consumer group dead-letters these; a view only skips them.
        log.warning(
            "skipping undecodable record",
            extra={
                "topic": record.topic,
                "offset": record.offset,
                "reason": str(error),
            },
        )
        return
    result = apply(received)
    if result is not None:
        await result


@dataclass
class RegistryView:
    """What the API knows of zones and BINs, learnt from the registry's topics."""

    zone_municipalities: dict[str, frozenset[str]] = field(default_factory=dict)
    zone_province: dict[str, str] = field(default_factory=dict)
    bins: dict[str, domain.BinInfo] = field(default_factory=dict)
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)

    def apply(self, received: Received) -> None:
        """Fold one zone or BIN record into the view."""
        event = received.event
        if isinstance(event, ZoneSnapshot):
            self.zone_municipalities[event.zone] = frozenset(
                m.nis for m in event.municipalities
            )
            self.zone_province[event.zone] = event.province_nis
        elif isinstance(event, BinSnapshot):
            self.bins[event.bin_id] = domain.BinInfo(
                bin_id=event.bin_id,
                zone=event.zone,
                active=event.status == "active",
                municipalities=domain.municipalities_of(event.territory),
            )
        elif (
            event is None
            and received.key
            and received.envelope.type == (BinSnapshot.EVENT_TYPE)
        ):
            self.bins.pop(received.key, None)

    def zone_bins(self, zone: str) -> list[str]:
        """The BINs of a zone."""
        return [info.bin_id for info in self.bins.values() if info.zone == zone]

    def province_zones(self, province_nis: str) -> list[str]:
        """The zones of a province, by its NIS code."""
        return sorted(z for z, p in self.zone_province.items() if p == province_nis)


@dataclass
class AlertStates:
    """The senders' view of alerts: latest texts and cancellations."""

    states: dict[str, domain.AlertState] = field(default_factory=dict)
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)

    def apply(self, received: Received) -> None:
        """Fold one accepted alert, update or cancel into the view."""
        event = received.event
        if isinstance(event, AlertAccepted):
            domain.apply_alert_action(
                self.states,
                alert_id=event.alert_id,
                action=event.action,
                references=event.references,
                texts=dict(event.texts),
            )


@dataclass
class StatusBoards:
    """Every alert's delivery board, rebuilt from the status topic on start."""

    db: object
    boards: dict[str, domain.AlertBoard] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)

    def apply(self, received: Received) -> None:
        """Fold one delivery status, or one BIN's pending deliveries, into a board."""
        event = received.event
        if not isinstance(event, DeliveryStatus | DeliveriesPending):
            return
        board = self.boards.get(event.alert_id)
        if board is None:
            board = self.boards[event.alert_id] = domain.AlertBoard(
                alert_id=event.alert_id, zone=event.zone, accepted_at=event.accepted_at
            )
        if isinstance(event, DeliveriesPending):
            changed = [
                board.apply(member_id=m, channel=channel, status="pending", at=event.at)
                for channel, members in event.members.items()
                for m in members
            ]
        else:
            changed = [
                board.apply(
                    member_id=event.member_id,
                    channel=event.channel,
                    status=event.status,
                    at=event.at,
                    reason=event.reason,
                )
            ]
        if any(changed):
            self.dirty.add(event.alert_id)

    async def flush(self) -> None:
        """Write the summaries of the alerts that changed."""
        if not self.dirty:
            return
        changed, self.dirty = self.dirty, set()
        summaries = [self.boards[alert_id].summary() for alert_id in changed]
        try:
            await store.save_status_summaries(self.db, summaries=summaries)
        except Exception:
            self.dirty |= changed
            raise
