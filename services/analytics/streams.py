"""The coverage worker: Faust agents, the registry table and the publishing timer.

Stage 1 reads `registry.zones.v1`, `registry.bins.v1` and `registry.memberships.v1`
(never the contacts topic), dead-letters what it cannot decode and forwards the
snapshots, a batch per record, to one internal single-partition topic. Stage 2
reads that topic alone, so that one agent sees every zone, BIN and member in
order: it keeps the latest snapshot per key in a Faust table (rebuilt from its
changelog after a restart) and the running sums in a `domain.CoverageModel`
rebuilt from that table. A timer publishes the figures of the zones that changed,
their provinces and the country, at most once per `publish_interval_s`, which
keeps latency low and the output bounded however fast members arrive.

Forwarding in batches matters for throughput: each record sent costs far more
than applying a snapshot, and a batch of a few milliseconds costs one.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import faust
from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor
from pydantic import ValidationError

from services.analytics import domain, telemetry
from services.analytics.settings import AnalyticsSettings
from shared import events
from shared.envelope import attribute_headers, encode
from shared.streams import (
    create_faust_app,
    decode_or_dead_letter,
    raw_topic,
    rewind_uncommitted,
)

log = logging.getLogger("bin.analytics.streams")

SOURCE = "analytics"
ZONES = events.ZoneSnapshot.TOPIC
BINS = events.BinSnapshot.TOPIC
MEMBERSHIPS = events.MembershipSnapshot.TOPIC
KIND_OF_TOPIC = {ZONES: "zone", BINS: "bin", MEMBERSHIPS: "member"}
MODEL_OF_KIND: dict[str, type[events.Event]] = {
    "zone": events.ZoneSnapshot,
    "bin": events.BinSnapshot,
    "member": events.MembershipSnapshot,
}
TOMBSTONE = b""
BATCH_KEY = b"batch"
# Faust's own bound on a table's unsent changelog records (ProducerBuffer).
CHANGELOG_BACKLOG_MAX = 100


def merged_topic_name(app_id: str) -> str:
    """The internal topic that carries every registry snapshot on one partition."""
    return f"{app_id}-registry-merged"


def apply_snapshot(
    model: domain.CoverageModel, *, kind: str, key: str, snapshot: events.Event | None
) -> bool:
    """Applies one snapshot (or tombstone) of any kind; True when it changed state."""
    if kind == "zone":
        return model.apply_zone(zone=key, snapshot=snapshot)  # type: ignore[arg-type]
    if kind == "bin":
        return model.apply_bin(bin_id=key, snapshot=snapshot)  # type: ignore[arg-type]
    return model.apply_member(
        member_id=key,
        snapshot=snapshot,  # type: ignore[arg-type]
    )


def parse_forwarded(kind: str, value: bytes | str | None) -> events.Event | None:
    """The snapshot carried by a forwarded record, None for a tombstone."""
    if not value:
        return None
    return MODEL_OF_KIND[kind].model_validate_json(value)


Forwarded = tuple[str, str, str | None]


def encode_batch(items: list[Forwarded]) -> bytes:
    """One internal record carrying (kind, key, snapshot JSON or None) triples."""
    return json.dumps(items, separators=(",", ":")).encode()


def decode_forwarded(key: bytes | None, value: bytes | None) -> list[Forwarded]:
    """The triples of an internal record: a batch, or one `<kind>:<id>` snapshot.

    Single-snapshot records are what workers before batching wrote; reading them
    keeps an upgrade from losing what was forwarded but not yet applied.
    """
    if key == BATCH_KEY:
        items = json.loads(value or b"[]")
        return [(str(kind), str(ident), body) for kind, ident, body in items]
    kind, _, ident = (key or b"").decode().partition(":")
    return [(kind, ident, value.decode() if value else None)]


def coverage_records(
    model: domain.CoverageModel, *, zones: set[str], now: datetime
) -> tuple[list[events.ZoneCoverage], list[str], list[events.AreaCoverage]]:
    """The zone records, removed zones and area records to publish for changed zones."""
    zone_records: list[events.ZoneCoverage] = []
    removed: list[str] = []
    provinces: set[str] = set()
    for zone in sorted(zones):
        figures = model.figures(zone)
        if figures is None:
            removed.append(zone)
            continue
        zone_records.append(domain.zone_event(figures, now=now))
        provinces.add(figures.province_nis)
    every = model.all_figures()
    if removed:
        # A removed zone's province is no longer known: refresh them all.
        provinces = {figures.province_nis for figures in every}
    by_province: dict[str, list[domain.ZoneFigures]] = {}
    for figures in every:
        by_province.setdefault(figures.province_nis, []).append(figures)
    areas = [
        domain.area_event(
            area=nis,
            name=by_province[nis][0].province_name if nis in by_province else nis,
            zones=by_province.get(nis, []),
            now=now,
        )
        for nis in sorted(provinces)
    ]
    if zones:
        areas.append(
            domain.area_event(
                area=domain.COUNTRY, name=domain.COUNTRY_NAME, zones=every, now=now
            )
        )
    return zone_records, removed, areas


def create_worker_app(
    settings: AnalyticsSettings, *, clock: Callable[[], datetime] | None = None
) -> faust.App:
    """The Faust app of the coverage worker, its agents, table and timer."""
    now = clock or (lambda: datetime.now(UTC))
    app = create_faust_app(
        app_id=settings.faust_app_id,
        settings=settings,
        web_port=settings.worker_metrics_port,
        datadir=settings.faust_datadir(),
        # Dead letters an agent sends wait for the commit of their record's offset.
        broker_commit_interval=settings.commit_interval_s,
    )
    sources = raw_topic(app, ZONES, BINS, MEMBERSHIPS)
    merged = raw_topic(
        app, merged_topic_name(settings.faust_app_id), partitions=1, internal=True
    )
    rewind_uncommitted(app, topics=[*sources.topics, *merged.topics])
    coverage_topic = raw_topic(app, settings.coverage_topic)
    area_topic = raw_topic(app, settings.area_topic)
    table = app.Table(
        "registry-latest",
        default=None,
        partitions=1,
        # Keys and values are text (the snapshot's JSON): the table's changelog
        # codec is derived from these types and only round-trips text reliably.
        key_type=str,
        value_type=str,
    )
    model = domain.CoverageModel()
    state = {"recovered": False}

    @table.on_recover
    async def rebuild_model() -> None:
        """Rebuilds the running sums from the table after its recovery."""
        model.__init__()  # type: ignore[misc]
        for key, value in list(table.items()):
            kind, _, ident = key.partition(":")
            snapshot = parse_forwarded(kind, value.encode())
            apply_snapshot(model, kind=kind, key=ident, snapshot=snapshot)
        # Republish everything: a crash may have come between a change and its record.
        model.mark_all_dirty()
        state["recovered"] = True
        log.info("coverage model rebuilt", extra={"count": len(table)})

    @app.agent(sources, concurrency=1)
    async def forward_registry(stream: faust.StreamT) -> None:
        """Stage 1: decodes registry snapshots and forwards them to one partition."""
        async for batch in stream.take_events(
            settings.forward_batch_max, within=settings.forward_within_s
        ):
            items: list[Forwarded] = []
            for event in batch:
                received = await decode_or_dead_letter(app, event, consumer="analytics")
                if received is None or received.key is None:
                    continue
                kind = KIND_OF_TOPIC[event.message.topic]
                # The body was just validated: it is forwarded as it came.
                body = None if received.event is None else event.message.value.decode()
                items.append((kind, received.key, body))
            if items:
                # `force` sends now instead of when the offset is committed: the
                # events are acknowledged only after this send, and every commit
                # flushes the producer first, so a crash can repeat a batch (which
                # changes nothing) but not lose one.
                await merged.send(key=BATCH_KEY, value=encode_batch(items), force=True)

    @app.agent(merged, concurrency=1)
    async def keep_coverage(stream: faust.StreamT) -> None:
        """Stage 2: applies each snapshot to the table and the running sums."""
        async for event in stream.events():
            try:
                items = decode_forwarded(event.message.key, event.message.value)
            except (ValueError, TypeError):
                # Stage 1 wrote it: only a foreign writer on the topic gets here.
                log.warning(
                    "skipping unreadable forwarded batch",
                    extra={"offset": event.message.offset},
                )
                continue
            for kind, ident, body in items:
                apply_forwarded(kind=kind, ident=ident, body=body)
            await drain_changelog()

    async def drain_changelog() -> None:
        """Waits until the table's unsent changelog records are few again.

        Faust bounds that backlog after each event, and a batch is one event: left
        alone, a backlog of thousands is lost when the worker stops, after the
        offsets that caused it were committed.
        """
        buffer = app.producer.buffer
        while buffer.size > CHANGELOG_BACKLOG_MAX:
            await buffer.flush_atmost(buffer.size - CHANGELOG_BACKLOG_MAX)

    def apply_forwarded(*, kind: str, ident: str, body: str | None) -> None:
        try:
            snapshot = parse_forwarded(kind, body)
        except (KeyError, ValidationError):
            log.warning(
                "skipping unreadable forwarded snapshot", extra={"reason": kind}
            )
            return
        applied = apply_snapshot(model, kind=kind, key=ident, snapshot=snapshot)
        telemetry.record_snapshot(kind=kind, applied=applied)
        if not applied:
            return
        key = f"{kind}:{ident}"
        if body is None:
            table.pop(key, None)
        else:
            table[key] = body

    @app.timer(interval=settings.publish_interval_s)
    async def publish_coverage() -> None:
        """Publishes the latest figures of the zones changed since the last tick."""
        if not state["recovered"] and not app.tables.recovery.completed.is_set():
            return
        state["recovered"] = True
        changed = model.take_dirty()
        if not changed:
            return
        started = time.perf_counter()
        zone_records, removed, areas = coverage_records(model, zones=changed, now=now())
        for record in zone_records:
            body, headers = encode(record, source=SOURCE, subject=record.zone)
            await coverage_topic.send(
                key=record.zone.encode(), value=body, headers=headers
            )
        for zone in removed:
            headers = attribute_headers(
                event_type=events.ZoneCoverage.EVENT_TYPE, source=SOURCE, subject=zone
            )
            await coverage_topic.send(key=zone.encode(), value=None, headers=headers)
        for area in areas:
            body, headers = encode(area, source=SOURCE, subject=area.area)
            await area_topic.send(key=area.area.encode(), value=body, headers=headers)
        telemetry.record_published(
            zones=len(zone_records) + len(removed),
            areas=len(areas),
            seconds=time.perf_counter() - started,
        )

    app.coverage_model = model  # type: ignore[attr-defined]
    return app


def run_worker(settings: AnalyticsSettings) -> None:
    """Runs the coverage worker until it is stopped by a signal."""
    # The worker sends a changelog record for every registry event and consumes
    # them all, and a span for each cost a sixth of its time. A coverage record
    # sums thousands of events, so no one trace could be its parent: the worker
    # alone goes without the Kafka spans that every other process keeps.
    AIOKafkaInstrumentor().uninstrument()
    app = create_worker_app(settings)
    worker = faust.Worker(
        app,
        loglevel=settings.log_level,
        quiet=True,
        redirect_stdouts=False,
        override_logging=False,
    )
    worker.execute_from_commandline()
