"""Channel senders: paced hand-over to providers, retries, fallback, status reports.

A sender records the idempotency keys it has finished in its database before it
commits its offsets, and the providers deduplicate on the same key, so a sender
that dies mid-alert neither skips nor repeats a member.

The e-mail sender reads two lanes: urgent deliveries, and low-urgency ones
(coordinators' mail) on a topic of their own. Both share the provider's pace, and
the low lane hands over a small chunk at a time, only while the urgent lane has
nothing to do, so that a mail to thousands never queues before an alert.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener

from services.messaging import domain, store, telemetry
from services.messaging import mail as mail_rules
from services.messaging.consumers import AlertStates, replay_and_follow
from services.messaging.providers import (
    MailAttachment,
    Outbound,
    Outcome,
    Provider,
    provider_for,
)
from services.messaging.settings import MessagingSettings
from shared import crypto, links
from shared.envelope import EnvelopeError, decode, encode
from shared.events import AlertAccepted, AlertText, Delivery, DeliveryStatus
from shared.kafka import new_producer, send_to_dead_letter
from shared.mongo import database, new_client

log = logging.getLogger("bin.messaging.sender")
SOURCE = "messaging.sender"


def status_event(
    delivery: Delivery,
    *,
    status: str,
    attempt: int = 0,
    reason: str | None = None,
    segments: int | None = None,
) -> DeliveryStatus:
    """The status report of one delivery."""
    return DeliveryStatus(
        alert_id=delivery.alert_id,
        member_id=delivery.member_id,
        zone=delivery.zone,
        channel=delivery.channel,
        status=status,  # type: ignore[arg-type]
        attempt=attempt,
        reason=reason,
        segments=segments,
        accepted_at=delivery.accepted_at,
        at=datetime.now(UTC),
    )


@dataclass
class UrgentLane:
    """Whether the urgent lane of a channel is idle: the low lane waits until it is."""

    idle: asyncio.Event

    @classmethod
    def new(cls) -> UrgentLane:
        """A lane that starts idle."""
        lane = cls(idle=asyncio.Event())
        lane.idle.set()
        return lane


@dataclass
class Prepared:
    """A delivery, the message made of it, and what to do if it fails for good."""

    delivery: Delivery
    message: Outbound
    contacts: dict[str, str]


class Sender:
    """Hands one channel's deliveries to its provider and reports every outcome."""

    def __init__(
        self,
        *,
        settings: MessagingSettings,
        channel: str,
        provider: Provider,
        producer: AIOKafkaProducer,
        db: object,
        alerts: AlertStates,
        keyring: crypto.KeyRing,
        pacer: domain.Pacer | None = None,
        yields_to: UrgentLane | None = None,
    ) -> None:
        self.settings, self.channel, self.provider = settings, channel, provider
        self.producer, self.db, self.alerts, self.keyring = (
            producer,
            db,
            alerts,
            keyring,
        )
        rate = settings.rate_per_s(channel)
        if pacer is None and rate > 0:
            pacer = domain.Pacer(rate, burst=max(1.0, rate / 10))
        self.pacer, self.yields_to = pacer, yields_to
        self.backoff = domain.Backoff(
            base_s=settings.retry_base_s, cap_s=settings.retry_cap_s
        )
        self.batch = settings.provider_batch_size
        if yields_to is not None:
            self.batch = max(1, min(self.batch, settings.low_urgency_chunk))
        if channel == "voice":
            self.batch = min(self.batch, settings.voice_max_concurrent_calls)
        self.in_flight = asyncio.Semaphore(
            max(1, settings.voice_max_concurrent_calls // self.batch)
            if channel == "voice"
            else 4
        )
        self.pending_sends: list[asyncio.Future[object]] = []
        self.status_topic = settings.topic(DeliveryStatus.TOPIC)
        self.rendered: dict[
            tuple[str, ...], tuple[str | None, str, int | None, str | None]
        ]
        self.rendered = {}
        self.sent: set[str] = set()
        self.attachments: dict[str, bytes] = {}

    async def _publish(self, topic: str, *, key: str, event: object) -> None:
        body, headers = encode(
            event,  # type: ignore[arg-type]
            source=SOURCE,
            subject=key,
        )
        self.pending_sends.append(
            await self.producer.send(
                topic, value=body, key=key.encode(), headers=headers
            )
        )

    async def report(self, delivery: Delivery, **fields: object) -> None:
        """Queue a status report for the delivery; flushed before the commit."""
        event = status_event(delivery, **fields)  # type: ignore[arg-type]
        telemetry.record_delivery(channel=delivery.channel, status=event.status)
        await self._publish(self.status_topic, key=delivery.alert_id, event=event)

    async def handle_batch(self, deliveries: list[Delivery]) -> None:
        """Send a batch: skip finished keys, send the rest, report, then record."""
        todo: dict[str, Delivery] = {}
        for delivery in deliveries:
            if delivery.idempotency_key not in self.sent:
                todo[delivery.idempotency_key] = delivery
        items = list(todo.values())
        chunks = [items[i : i + self.batch] for i in range(0, len(items), self.batch)]
        if self.yields_to is None:
            results = await asyncio.gather(*(self._send_chunk(c) for c in chunks))
        else:
            results = []
            for chunk in chunks:
                await self.yields_to.idle.wait()
                results.append(await self._send_chunk(chunk))
        finished = [key for keys in results for key in keys]
        # Statuses and fallbacks first: a key recorded as finished is skipped
        # after a restart, so whatever it was to publish must be out by then.
        sends, self.pending_sends = self.pending_sends, []
        await asyncio.gather(*sends)
        await store.record_sent_keys(
            self.db, channel=self.channel, keys=finished, at=datetime.now(UTC)
        )
        self.sent.update(finished)

    async def load_sent_keys(self) -> None:
        """Read the keys finished within the longest validity of an alert.

        FerretDB answers a query on many ids by scanning the whole collection,
        so the sender asks once, when it gets partitions, and then keeps the keys
        in memory; an older delivery has expired and is not sent anyway.
        """
        since = datetime.now(UTC) - timedelta(seconds=self.settings.sent_keys_window_s)
        self.sent = await store.load_sent_keys(
            self.db, channel=self.channel, since=since
        )
        log.info(
            "sent keys loaded", extra={"channel": self.channel, "count": len(self.sent)}
        )

    async def _prepare(self, delivery: Delivery) -> Prepared | None:
        """Build the message, or report why there is none; None when finished."""
        state = self.alerts.states.get(delivery.alert_id)
        if state is not None and state.cancelled:
            await self.report(delivery, status="cancelled", reason="alert cancelled")
            return None
        if delivery.expires_at <= datetime.now(UTC):
            await self.report(delivery, status="gave_up", reason="alert expired")
            return None
        text = delivery.text
        if state is not None and state.revision > 0:
            language = domain.choose_language(
                member_language=delivery.language, available=state.texts
            )
            text = state.texts[language]
        try:
            contacts = crypto.open_json(
                self.keyring, delivery.address, owner=delivery.member_id
            )
        except crypto.SealError as error:
            await self.report(delivery, status="failed", reason=str(error))
            return None
        address = contacts.get(self.channel) if isinstance(contacts, dict) else None
        if not address:
            await self._fail(delivery, contacts or {}, reason="no address for channel")
            return None
        subject, body, segments, encoding = self._render(
            text,
            category=delivery.category,
            urgency=delivery.urgency,
            language=delivery.language,
        )
        message = Outbound(
            key=delivery.idempotency_key,
            alert_id=delivery.alert_id,
            to=address,
            subject=subject,
            text=body,
            segments=segments,
            encoding=encoding,
        )
        if delivery.mail is not None:
            attachments = await self._attachments(delivery)
            if attachments is None:
                await self.report(delivery, status="failed", reason="attachment gone")
                return None
            message = self._as_mail(message, delivery, attachments)
        elif self.channel == "email":
            message = replace(message, list_unsubscribe=self._unsubscribe_link(delivery))
        return Prepared(delivery=delivery, message=message, contacts=contacts)

    def _as_mail(
        self,
        message: Outbound,
        delivery: Delivery,
        attachments: tuple[MailAttachment, ...],
    ) -> Outbound:
        """The message with its relay address, the unsubscribe link and its files."""
        link = self._unsubscribe_link(delivery)
        return Outbound(
            key=message.key,
            alert_id=message.alert_id,
            to=message.to,
            subject=message.subject,
            text=mail_rules.with_footer(
                message.text, language=delivery.language, link=link
            ),
            reply_to=delivery.mail.reply_to if delivery.mail else None,
            unsubscribe_url=link,
            attachments=attachments,
        )

    def _unsubscribe_link(self, delivery: Delivery) -> str:
        """The member's signed link that takes e-mail off their channels."""
        token = links.unsubscribe_token(
            secret=self.settings.jwt_secret,
            member_id=delivery.member_id,
            message_id=delivery.alert_id,
        )
        return mail_rules.unsubscribe_url(
            base_url=self.settings.registry_public_url, token=token
        )

    async def _attachments(
        self, delivery: Delivery
    ) -> tuple[MailAttachment, ...] | None:
        """A mail's attachments, read once from the database; None if one is gone."""
        found = []
        for ref in delivery.mail.attachments if delivery.mail else ():
            data = self.attachments.get(ref.attachment_id)
            if data is None:
                data = await store.load_attachment(
                    self.db,  # type: ignore[arg-type]
                    attachment_id=ref.attachment_id,
                )
                if data is None:
                    return None
                if len(self.attachments) >= 32:
                    self.attachments.clear()
                self.attachments[ref.attachment_id] = data
            found.append(
                MailAttachment(
                    attachment_id=ref.attachment_id,
                    filename=ref.filename,
                    content_type=ref.content_type,
                    data=data,
                )
            )
        return tuple(found)

    def _render(
        self, text: AlertText, *, category: str, urgency: str, language: str
    ) -> tuple[str | None, str, int | None, str | None]:
        """Subject, body, SMS segments and encoding; one alert renders alike for all."""
        key = (text.headline, text.body, category, urgency, language)
        rendered = self.rendered.get(key)
        if rendered is None:
            subject, body = domain.render_text(
                channel=self.channel,
                text=text,
                category=category,
                urgency=urgency,
                language=language,
                sms_max_segments=self.settings.sms_max_segments,
            )
            segments = encoding = None
            if self.channel == "sms":
                sms = domain.encode_sms(body)
                segments, encoding = sms.segments, sms.encoding
            if len(self.rendered) >= 1024:
                self.rendered.clear()
            rendered = self.rendered[key] = (subject, body, segments, encoding)
        return rendered

    async def _send_chunk(self, deliveries: list[Delivery]) -> list[str]:
        """Send one provider batch with retries; return the keys finished."""
        first_at = datetime.now(UTC)
        attempt = 0
        finished: list[str] = []
        if self.pacer is not None:
            wait = self.pacer.reserve(time.monotonic(), len(deliveries))
            if wait > 0:
                await asyncio.sleep(wait)
        # Prepared only now, after pacing, so that a cancel or an update that
        # arrived meanwhile applies.
        chunk: list[Prepared] = []
        for delivery in deliveries:
            prepared = await self._prepare(delivery)
            if prepared is None:
                finished.append(delivery.idempotency_key)
            else:
                chunk.append(prepared)
        while chunk:
            attempt += 1
            async with self.in_flight:
                outcomes = await self.provider.send([p.message for p in chunk])
            by_key: dict[str, Outcome] = {o.key: o for o in outcomes}
            retry: list[Prepared] = []
            for prepared in chunk:
                outcome = by_key[prepared.message.key]
                delivery = prepared.delivery
                if outcome.result == "handed_over":
                    now = datetime.now(UTC)
                    telemetry.record_handover(
                        channel=self.channel,
                        seconds=(now - delivery.accepted_at).total_seconds(),
                    )
                    await self.report(
                        delivery,
                        status="handed_over",
                        attempt=attempt,
                        segments=prepared.message.segments,
                    )
                    finished.append(delivery.idempotency_key)
                elif outcome.result == "permanent":
                    await self._fail(
                        delivery,
                        prepared.contacts,
                        reason=outcome.reason or "refused",
                        attempt=attempt,
                    )
                    finished.append(delivery.idempotency_key)
                elif domain.should_give_up(
                    first_attempt_at=first_at,
                    now=datetime.now(UTC),
                    give_up_after_s=self.settings.give_up_after_s,
                ):
                    log.warning(
                        "GAVE UP delivery kept failing",
                        extra={
                            "alert_id": delivery.alert_id,
                            "channel": self.channel,
                            "attempt": attempt,
                        },
                    )
                    await self.report(
                        delivery,
                        status="gave_up",
                        attempt=attempt,
                        reason=outcome.reason,
                    )
                    finished.append(delivery.idempotency_key)
                else:
                    await self.report(
                        delivery,
                        status="pending",
                        attempt=attempt,
                        reason=outcome.reason,
                    )
                    retry.append(prepared)
            chunk = retry
            if chunk:
                delay = self.backoff.delay(attempt)
                log.info(
                    "RETRY temporary failures after back-off",
                    extra={
                        "channel": self.channel,
                        "count": len(chunk),
                        "attempt": attempt,
                        "seconds": round(delay, 2),
                    },
                )
                await asyncio.sleep(delay)
        return finished

    async def _fail(
        self, delivery: Delivery, contacts: object, *, reason: str, attempt: int = 0
    ) -> None:
        """Report a permanent failure and hand the delivery to the next channel."""
        await self.report(delivery, status="failed", attempt=attempt, reason=reason)
        if not delivery.fallbacks:
            return
        channel, *rest = delivery.fallbacks
        fallback = delivery.model_copy(
            update={
                "channel": channel,
                "fallbacks": rest,
                "idempotency_key": domain.delivery_key(
                    alert_id=delivery.alert_id,
                    member_id=delivery.member_id,
                    channel=channel,
                ),
            }
        )
        log.info(
            "falling back to the next chosen channel",
            extra={"alert_id": delivery.alert_id, "channel": channel},
        )
        await self._publish(
            self.settings.delivery_topic(channel),
            key=delivery.member_id,
            event=fallback,
        )
        await self.report(
            fallback, status="pending", reason=f"fallback from {self.channel}"
        )


class ReloadSentKeys(ConsumerRebalanceListener):
    """Reloads the sent keys whenever partitions, and with them keys, change hands."""

    def __init__(self, sender: Sender) -> None:
        self.sender = sender

    async def on_partitions_revoked(self, revoked: object) -> None:
        """Nothing to do: the keys of a finished batch are already stored."""

    async def on_partitions_assigned(self, assigned: object) -> None:
        """Read the finished keys again before the first batch of the new owner."""
        await self.sender.load_sent_keys()


async def run_sender(
    settings: MessagingSettings, *, channel: str, stop: asyncio.Event
) -> None:
    """Consume one channel's deliveries until `stop` is set; e-mail in two lanes."""
    keyring = crypto.keyring_from_settings(
        settings.contacts_keys, settings.contacts_active_key_id
    )
    client = new_client(settings)
    db = database(client, settings)
    producer = new_producer(settings, max_batch_size=512 * 1024)
    await producer.start()
    alerts = AlertStates()
    follower = asyncio.create_task(
        replay_and_follow(
            settings,
            topics=[settings.topic(AlertAccepted.TOPIC)],
            apply=alerts.apply,
            stop=stop,
            caught_up=alerts.caught_up,
        )
    )

    def new_sender(**lane: Any) -> Sender:
        """A sender of this channel; the low-urgency lane shares the urgent one's pace."""
        return Sender(
            settings=settings,
            channel=channel,
            provider=provider_for(channel, settings=settings),
            producer=producer,
            db=db,
            alerts=alerts,
            keyring=keyring,
            **lane,
        )

    urgent = new_sender()
    lanes = [
        _Consume(
            settings,
            sender=urgent,
            topic=settings.delivery_topic(channel),
            group=f"{settings.sender_group_prefix}-{channel}",
            stop=stop,
            lane=UrgentLane.new() if channel == "email" else None,
        )
    ]
    if channel == "email":
        low = new_sender(pacer=urgent.pacer, yields_to=lanes[0].lane)
        lanes.append(
            _Consume(
                settings,
                sender=low,
                topic=settings.delivery_topic(channel, low_urgency=True),
                group=f"{settings.sender_group_prefix}-{channel}-low",
                stop=stop,
                lane=None,
            )
        )
    try:
        # Cancellations must be known before the first delivery goes out.
        await alerts.caught_up.wait()
        await asyncio.gather(*(lane.run() for lane in lanes))
    finally:
        follower.cancel()
        await producer.stop()
        await client.close()


@dataclass
class _Consume:
    """One consumer loop: a topic's deliveries handed to one sender."""

    settings: MessagingSettings
    sender: Sender
    topic: str
    group: str
    stop: asyncio.Event
    lane: UrgentLane | None

    async def run(self) -> None:
        """Poll, send, commit until stopped; tell the low lane when this one idles."""
        settings, sender = self.settings, self.sender
        consumer = AIOKafkaConsumer(
            **settings.kafka_client_options(),
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.sender_batch_size,
        )
        try:
            consumer.subscribe([self.topic], listener=ReloadSentKeys(sender))
            await consumer.start()
            log.info(
                "sender ready", extra={"channel": sender.channel, "topic": self.topic}
            )
            while not self.stop.is_set():
                batches = await consumer.getmany(
                    timeout_ms=200, max_records=settings.sender_batch_size
                )
                if self.lane is not None:
                    if batches:
                        self.lane.idle.clear()
                    else:
                        self.lane.idle.set()
                deliveries = await self._decode(batches)
                if deliveries:
                    await sender.handle_batch(deliveries)
                if batches:
                    await consumer.commit()
        finally:
            if self.lane is not None:
                self.lane.idle.set()
            await consumer.stop()
            await sender.provider.close()

    async def _decode(self, batches: dict[object, list[object]]) -> list[Delivery]:
        """The deliveries of a poll; what cannot be decoded goes to the dead letters."""
        deliveries: list[Delivery] = []
        for records in batches.values():
            for record in records:
                try:
                    received = decode(
                        key=record.key,  # type: ignore[attr-defined]
                        value=record.value,  # type: ignore[attr-defined]
                        headers=record.headers,  # type: ignore[attr-defined]
                    )
                except EnvelopeError as error:
                    await send_to_dead_letter(
                        self.sender.producer,
                        record=record,
                        reason=str(error),
                        consumer=self.group,
                    )
                    continue
                if isinstance(received.event, Delivery):
                    deliveries.append(received.event)
        return deliveries
