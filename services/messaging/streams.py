"""The fan-out worker (Faust): alerts to BINs to one delivery per member and channel.

Stage 1 reads `messaging.alerts.v1` (keyed by zone) beside a table of each zone's
BINs, re-keyed by zone through an internal topic, and writes one `AlertForBin` per
target BIN to `messaging.alert-bins.v1`. Stage 2 reads that topic (keyed by BIN)
beside a table of each BIN's members, re-keyed by BIN through another internal topic
with the same partition count, and writes the deliveries of a whole BIN in one go.
The tables live in changelog topics and are rebuilt from them after a restart.

The fan-out never opens contact details: the registry's sealed blob travels as the
delivery's `address` and only the sender opens it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka import AIOKafkaProducer

from services.messaging import domain, telemetry
from services.messaging.settings import MessagingSettings
from shared.envelope import Received, encode, utcnow
from shared.events import (
    AlertAccepted,
    AlertForBin,
    AlertText,
    BinSnapshot,
    ContactsSnapshot,
    DeliveriesPending,
    Delivery,
    MembershipSnapshot,
    Sealed,
)
from shared.kafka import new_producer
from shared.streams import (
    create_faust_app,
    dead_letter,
    decode_or_dead_letter,
    rewind_uncommitted,
)

log = logging.getLogger("bin.messaging.fanout")
SOURCE = "messaging.fanout"


def _raw(app: faust.App, *names: str, **options: Any) -> faust.TopicT:
    # shared.streams.raw_topic takes one name; one agent here reads two topics.
    return app.topic(
        *names,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        **options,
    )


def _internal(app: faust.App, name: str, partitions: int) -> faust.TopicT:
    return app.topic(
        f"{app.conf.id}-{name}",
        key_type=str,
        key_serializer="raw",
        value_serializer="json",
        partitions=partitions,
        internal=True,
    )


def build_app(settings: MessagingSettings) -> faust.App:
    """The fan-out Faust app with its tables and agents."""
    app = create_faust_app(
        app_id=settings.faust_app_id,
        settings=settings,
        web_port=settings.faust_web_port,
        datadir=settings.faust_datadir / settings.faust_app_id,
        broker_session_timeout=settings.fanout_session_timeout_s,
        broker_heartbeat_interval=settings.fanout_session_timeout_s / 5,
    )
    partitions = settings.fanout_partitions
    members_in = _raw(
        app,
        settings.registry_topic(MembershipSnapshot.TOPIC),
        settings.registry_topic(ContactsSnapshot.TOPIC),
    )
    bins_in = _raw(app, settings.registry_topic(BinSnapshot.TOPIC))
    alerts_in = _raw(app, settings.topic(AlertAccepted.TOPIC))
    alert_bins = _raw(app, settings.topic(AlertForBin.TOPIC))
    members_by_bin = _internal(app, "members-by-bin", partitions)
    bins_by_zone = _internal(app, "bins-by-zone", partitions)

    rewind_uncommitted(
        app,
        topics=[
            name
            for topic in (members_in, bins_in, alerts_in, alert_bins)
            for name in topic.topics
        ]
        + [members_by_bin.get_topic_name(), bins_by_zone.get_topic_name()],
    )
    member_state = app.Table("member-state", default=None, partitions=partitions)
    bin_zone = app.Table("bin-zone", default=None, partitions=partitions)
    zone_bins = app.Table("zone-bins", default=None, partitions=partitions)
    bin_members = app.Table("bin-members", default=None, partitions=partitions)
    # BIN id -> member id -> entry: a mirror of bin_members, rebuilt whenever the
    # table recovers, so that stage 2 decodes no table value per member and alert.
    index: dict[str, dict[str, MemberEntry]] = defaultdict(dict)
    producer_box: list[AIOKafkaProducer] = []
    # Both stages meet their first record together after a restart; one starts it.
    producer_lock = asyncio.Lock()

    @bin_members.on_recover
    async def rebuild_index() -> None:
        index.clear()
        for key, value in list(bin_members.items()):
            bin_id, _, member_id = key.partition("/")
            entry = MemberEntry.of(value)
            if entry is not None:
                index[bin_id][member_id] = entry
        log.info("bin members index rebuilt", extra={"count": len(bin_members)})

    async def producer() -> AIOKafkaProducer:
        async with producer_lock:
            if not producer_box:
                started = new_producer(
                    settings, linger_ms=10, max_batch_size=1024 * 1024
                )
                await started.start()
                producer_box.append(started)
        return producer_box[0]

    @app.agent(members_in, name="members")
    async def members(stream: faust.StreamT) -> None:
        """Joins memberships and contacts per member and re-keys them by BIN."""
        # LIMITATION: one record at a time, because a table write belongs to the
        # partition of the event being processed and a batch has many; rebuilding
        # from large registry topics therefore takes minutes.
        async for event in stream.events():
            received = await decode_or_dead_letter(
                app, event, consumer="fanout-members"
            )
            if received is None or not received.key:
                continue
            for bin_id, change in member_changes(received):
                await members_by_bin.send(key=bin_id, value=change)

    def member_changes(received: Received) -> list[tuple[str, dict[str, Any]]]:
        """Fold one registry record into the member's state; the BINs' changes."""
        member_id = received.key or ""
        state = dict(member_state.get(member_id) or {})
        old_bin = state.get("bin")
        body = received.event
        if isinstance(body, MembershipSnapshot):
            if body.version < state.get("version", -1):
                return []
            state.update(
                bin=body.bin_id,
                role=body.role,
                status=body.status,
                language=body.language,
                channels=list(body.channels),
                version=body.version,
            )
        elif isinstance(body, ContactsSnapshot):
            state["contacts"] = body.contacts.model_dump()
        elif received.envelope.type == ContactsSnapshot.EVENT_TYPE:
            state.pop("contacts", None)
        elif received.envelope.type == MembershipSnapshot.EVENT_TYPE:
            state["status"] = "erased"
        # Each change of a member gets the next number, so that the BIN table can
        # tell a replayed older change from the one it holds (see below).
        state["seq"] = state.get("seq", 0) + 1
        member_state[member_id] = state
        changes = []
        if old_bin and old_bin != state.get("bin"):
            drop = {"member": member_id, "bin": old_bin, "drop": True}
            changes.append((old_bin, {**drop, "seq": state["seq"]}))
        if state.get("bin"):
            changes.append((state["bin"], {"member": member_id, **state}))
        return changes

    @app.agent(members_by_bin, name="bin-members")
    async def bin_member_changes(stream: faust.StreamT) -> None:
        """Keeps each BIN's active members: role, language, channels and contacts.

        A restarted worker reads this topic again from its last committed offset,
        over a table already recovered to the latest state. The older changes it
        meets there (a member not yet with contacts, say) are skipped: applied,
        they would take members out of the BIN until the replay caught up, and
        stage 2 would write no delivery for them meanwhile.
        """
        async for change in stream:
            bin_id, member_id = change["bin"], change["member"]
            key = f"{bin_id}/{member_id}"
            held = bin_members.get(key)
            seq = change.get("seq")
            if domain.is_replayed_change(seq=seq, held_seq=(held or {}).get("seq")):
                continue
            if change.get("drop") or change.get("status") != "active":
                # Only the number stays, no personal data: enough to keep a
                # replayed older change from bringing the member back.
                if seq is not None:
                    bin_members[key] = {"seq": seq}
                elif held is not None:
                    del bin_members[key]
                index[bin_id].pop(member_id, None)
                continue
            value = {
                "role": change.get("role", "member"),
                "language": change["language"],
                "channels": change["channels"],
                "contacts": change.get("contacts"),
                "seq": seq,
            }
            bin_members[key] = value
            entry = MemberEntry.of(value)
            if entry is None:
                index[bin_id].pop(member_id, None)
            else:
                index[bin_id][member_id] = entry

    @app.agent(bins_in, name="bins")
    async def bins(stream: faust.StreamT) -> None:
        """Re-keys BINs by zone, dropping a BIN from the zone it left."""
        async for event in stream.events():
            received = await decode_or_dead_letter(app, event, consumer="fanout-bins")
            if received is None or not received.key:
                continue
            bin_id, body = received.key, received.event
            old_zone = bin_zone.get(bin_id)
            zone = body.zone if isinstance(body, BinSnapshot) else None
            if old_zone and old_zone != zone:
                await bins_by_zone.send(
                    key=old_zone, value={"bin": bin_id, "zone": old_zone, "drop": True}
                )
            if isinstance(body, BinSnapshot):
                bin_zone[bin_id] = body.zone
                await bins_by_zone.send(
                    key=body.zone,
                    value={
                        "bin": bin_id,
                        "zone": body.zone,
                        "active": body.status == "active",
                        "municipalities": sorted(
                            domain.municipalities_of(body.territory)
                        ),
                    },
                )
            elif old_zone is not None:
                del bin_zone[bin_id]

    @app.agent(bins_by_zone, name="zone-bins")
    async def zone_bin_changes(stream: faust.StreamT) -> None:
        """Keeps each zone's BINs: whether active and which municipalities."""
        async for change in stream:
            zone = change["zone"]
            current = dict(zone_bins.get(zone) or {})
            if change.get("drop"):
                current.pop(change["bin"], None)
            else:
                current[change["bin"]] = {
                    "active": change["active"],
                    "municipalities": change["municipalities"],
                }
            zone_bins[zone] = current

    @app.agent(alerts_in, name="split-alerts")
    async def split_alerts(stream: faust.StreamT) -> None:
        """Stage 1: one AlertForBin per BIN an accepted alert targets."""
        async for event in stream.events():
            received = await decode_or_dead_letter(app, event, consumer="fanout-split")
            if received is None:
                continue
            alert = received.event
            if not isinstance(alert, AlertAccepted):
                await dead_letter(
                    app, event, reason="not an accepted alert", consumer="fanout-split"
                )
                continue
            if alert.action != "alert":
                continue
            known = zone_bins.get(alert.zone) or {}
            targets = domain.resolve_bins(
                kind=alert.target.kind,
                values=alert.target.values,
                bins=[
                    domain.BinInfo(
                        bin_id=bin_id,
                        zone=alert.zone,
                        active=info["active"],
                        municipalities=frozenset(info["municipalities"]),
                    )
                    for bin_id, info in known.items()
                ],
            )
            out = await producer()
            sends = []
            for bin_id in targets:
                record = AlertForBin(
                    alert_id=alert.alert_id,
                    bin_id=bin_id,
                    zone=alert.zone,
                    action=alert.action,
                    category=alert.category,
                    urgency=alert.urgency,
                    texts=alert.texts,
                    channels=alert.channels,
                    roles=alert.roles,
                    expires_at=alert.expires_at,
                    accepted_at=alert.accepted_at,
                    mail=alert.mail,
                )
                body, headers = encode(
                    record,
                    source=SOURCE,
                    subject=bin_id,
                    event_id=f"{alert.alert_id}/{bin_id}",
                )
                sends.append(
                    await out.send(
                        settings.topic(AlertForBin.TOPIC),
                        value=body,
                        key=bin_id.encode(),
                        headers=headers,
                    )
                )
            await asyncio.gather(*sends)
            log.info(
                "alert split per BIN",
                extra={
                    "alert_id": alert.alert_id,
                    "zone": alert.zone,
                    "count": len(targets),
                },
            )

    @app.agent(alert_bins, name="fan-out-bin")
    async def fan_out_bin(stream: faust.StreamT) -> None:
        """Stage 2: the deliveries of a batch of BINs, written and confirmed together.

        The batch's offsets are acknowledged only after the broker confirmed every
        delivery of it, so a worker that dies mid-batch redoes the whole batch; the
        senders skip the idempotency keys they already handed over.
        """
        # LIMITATION: a low-urgency mail to a large BIN is written in one go, so an
        # urgent alert behind it on the same partition waits for it here (a fraction
        # of a second for 6,000 members, see scripts/bench_mail_priority.py), because
        # stage 2 keeps one ordered stream per partition rather than two lanes.
        batches = stream.take_events(settings.fanout_batch_bins, within=0.02)
        async for events in batches:
            out = await producer()
            sends: list[asyncio.Future[Any]] = []
            counts: dict[str, int] = defaultdict(int)
            for event in events:
                received = await decode_or_dead_letter(
                    app, event, consumer="fanout-bin"
                )
                if received is None:
                    continue
                record = received.event
                if not isinstance(record, AlertForBin):
                    await dead_letter(
                        app,
                        event,
                        reason="not an alert for a BIN",
                        consumer="fanout-bin",
                    )
                    continue
                with telemetry.batch_span("fan-out BIN", received.headers) as trace:
                    counts[record.alert_id] += await queue_deliveries(
                        out,
                        settings=settings,
                        record=record,
                        members=index.get(record.bin_id, {}),
                        sends=sends,
                        trace=trace,
                    )
            await asyncio.gather(*sends)
            for alert_id, count in counts.items():
                log.info(
                    "deliveries written",
                    extra={"alert_id": alert_id, "count": count, "bins": len(events)},
                )

    @app.page("/v1/fanout/bins/{bin_id}/")
    async def bin_view(self: Any, request: Any, bin_id: str) -> Any:
        """How many active members the worker knows in one BIN (probes and tests)."""
        return self.json({"bin_id": bin_id, "members": len(index.get(bin_id, {}))})

    @app.page("/v1/fanout/zones/{zone}/")
    async def zone_view(self: Any, request: Any, zone: str) -> Any:
        """Which BINs and how many active members the worker knows in one zone."""
        known = sorted(zone_bins.get(zone) or {})
        members = sum(len(index.get(bin_id, ())) for bin_id in known)
        return self.json({"zone": zone, "bins": known, "members": members})

    return app


@dataclass(frozen=True)
class MemberEntry:
    """What stage 2 needs of one active member with contacts."""

    language: str
    channels: tuple[str, ...]
    contacts: Sealed
    role: str = "member"

    @classmethod
    def of(cls, value: dict[str, Any]) -> MemberEntry | None:
        """The entry of a bin-members table value; None without contacts."""
        if not value.get("contacts"):
            return None
        return cls(
            language=value["language"],
            channels=tuple(value["channels"]),
            contacts=Sealed.model_validate(value["contacts"]),
            # LIMITATION: table values written before roles were kept have none and
            # count as members until the member's next change, because the tables
            # are only rebuilt from their changelogs; a worker upgraded in place
            # needs a new FAUST_APP_ID (a replay of the registry) to address by role.
            role=value.get("role", "member"),
        )


# Member ids per pending record: a few tens of kilobytes, far below a record's limit.
PENDING_PER_RECORD = 2000


async def queue_deliveries(
    producer: AIOKafkaProducer,
    *,
    settings: MessagingSettings,
    record: AlertForBin,
    members: dict[str, MemberEntry],
    sends: list[asyncio.Future[Any]],
    trace: list[tuple[str, bytes]],
) -> int:
    """Queue one BIN's deliveries and the records that say they are pending.

    Returns how many deliveries; the futures of the sends go to `sends`, and the
    caller waits for them.
    """
    planned: dict[str, list[str]] = defaultdict(list)
    deliveries: list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]] = []
    texts: dict[str, AlertText] = dict(record.texts)
    low_urgency = domain.is_low_urgency(record.urgency)
    for member_id in sorted(members):
        entry = members[member_id]
        if not domain.reaches_role(member_role=entry.role, roles=record.roles):
            continue
        plan = domain.plan_member(
            member_channels=entry.channels,
            member_language=entry.language,
            alert_channels=record.channels,
            alert_languages=texts,
        )
        if plan is None:
            continue
        member_key = member_id.encode()
        for channel in plan.channels:
            key = domain.delivery_key(
                alert_id=record.alert_id, member_id=member_id, channel=channel
            )
            delivery = Delivery(
                idempotency_key=key,
                alert_id=record.alert_id,
                member_id=member_id,
                bin_id=record.bin_id,
                zone=record.zone,
                channel=channel,
                fallbacks=list(plan.fallbacks[channel]),
                language=plan.language,
                category=record.category,
                urgency=record.urgency,
                text=texts[plan.language],
                address=entry.contacts,
                expires_at=record.expires_at,
                accepted_at=record.accepted_at,
                mail=record.mail,
            )
            body, headers = encode(
                delivery, source=SOURCE, subject=member_id, event_id=key
            )
            topic = settings.delivery_topic(channel, low_urgency=low_urgency)
            deliveries.append((topic, body, member_key, headers + trace))
            planned[channel].append(member_id)
    # The pending records go first, so that a status board hears of a delivery
    # before a sender reports on it (it would take either order).
    for part, pending in enumerate(pending_records(record, planned)):
        body, headers = encode(
            pending,
            source=SOURCE,
            subject=record.alert_id,
            event_id=f"{record.alert_id}/{record.bin_id}/pending/{part}",
        )
        sends.append(
            await producer.send(
                settings.topic(DeliveriesPending.TOPIC),
                value=body,
                key=record.alert_id.encode(),
                headers=headers + trace,
            )
        )
    for topic, body, member_key, headers in deliveries:
        sends.append(
            await producer.send(topic, value=body, key=member_key, headers=headers)
        )
    for channel, ids in planned.items():
        telemetry.record_fanout(channel=channel, count=len(ids))
    return sum(len(ids) for ids in planned.values())


def pending_records(
    record: AlertForBin, planned: dict[str, list[str]]
) -> list[DeliveriesPending]:
    """The pending records of one BIN's deliveries, PENDING_PER_RECORD ids at most."""
    pairs = [(channel, m) for channel, ids in planned.items() for m in ids]
    now = utcnow()
    records = []
    for start in range(0, len(pairs), PENDING_PER_RECORD):
        members: dict[str, list[str]] = defaultdict(list)
        for channel, member_id in pairs[start : start + PENDING_PER_RECORD]:
            members[channel].append(member_id)
        records.append(
            DeliveriesPending(
                alert_id=record.alert_id,
                zone=record.zone,
                bin_id=record.bin_id,
                members=dict(members),  # type: ignore[arg-type]
                accepted_at=record.accepted_at,
                at=now,
            )
        )
    return records
