"""Runs one role of the messaging service: `python -m services.messaging <role>`.

Roles: api (HTTP), relay (outbox to Kafka), fanout (Faust worker), sender
(`--channel sms|email|voice|app|all`), status (delivery status board), gateway
(local SMTP server and SMS/voice/push gateway).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from services.messaging import telemetry
from services.messaging.settings import MessagingSettings, get_settings
from shared.catalogue import CHANNELS
from shared.http import serve
from shared.service import main, stop_on_signals


def _run_until_signal(work: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run a coroutine until SIGTERM or SIGINT sets its stop event."""

    async def runner() -> None:
        await work(stop_on_signals())

    asyncio.run(runner())


def _ensure_prefixed_topics(settings: MessagingSettings) -> None:
    """Create the topics this deployment renames with a prefix, if it has any.

    The broker would otherwise create them on first use with one partition each,
    which breaks the co-partitioning the fan-out relies on.
    """
    topics = settings.prefixed_topics()
    if topics:
        from shared.kafka import ensure_topics

        asyncio.run(ensure_topics(settings, topics=topics))


def _ensure_fanout_topics(settings: MessagingSettings) -> None:
    """Create the fan-out's re-keying and changelog topics before it subscribes.

    Faust declares them itself, but on a busy broker its consumer can subscribe
    before a new topic shows in the metadata: it then ignores a re-keying topic
    for good, so the tables behind it stay empty, or a table's first write
    finds a changelog of 0 partitions and the agent crashes.
    """
    from dataclasses import replace

    from shared import catalogue
    from shared.events import AlertForBin
    from shared.kafka import ensure_topics

    template = catalogue.topic(AlertForBin.TOPIC)
    prefix, partitions = settings.faust_app_id, settings.fanout_partitions
    rekeying = [
        replace(template, name=f"{prefix}-{name}", partitions=partitions)
        for name in ("members-by-bin", "bins-by-zone")
    ]
    # The tables of services.messaging.streams. They hold sealed contacts, so they
    # get the contacts topic's compaction bounds, as on Kubernetes.
    changelogs = [
        replace(
            template,
            name=f"{prefix}-{table}-changelog",
            partitions=partitions,
            cleanup_policy="compact",
            configs=dict(catalogue.CONTACTS_CONFIGS),
        )
        for table in ("member-state", "bin-zone", "zone-bins", "bin-members")
    ]
    asyncio.run(ensure_topics(settings, topics=rekeying + changelogs))


def _with_topics(
    role: Callable[..., None], settings: MessagingSettings
) -> Callable[..., None]:
    def run(**options: str) -> None:
        _ensure_prefixed_topics(settings)
        role(**options)

    return run


def _metrics(settings: MessagingSettings) -> None:
    if settings.worker_metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.worker_metrics_port, addr=settings.http_host)


def api() -> None:
    """Serves the HTTP API."""
    from services.messaging.app import app

    settings = get_settings()
    # The API only reads zones and BINs from Kafka, in bulk, on every start.
    telemetry.stop_tracing_each_record()
    serve(app, host=settings.http_host, port=settings.http_port)


def relay() -> None:
    """Publishes the alerts' outboxes to Kafka."""
    from shared import outbox
    from shared.kafka import new_producer
    from shared.mongo import database, new_client

    settings = get_settings()

    async def alert_collections() -> list[str]:
        return ["alerts", "mails"]

    async def work(stop: asyncio.Event) -> None:
        client = new_client(settings)
        producer = new_producer(settings)
        await producer.start()
        try:
            await outbox.run_relay(
                producer,
                database(client, settings),
                collections=alert_collections,
                source="messaging",
                stop=stop,
            )
        finally:
            await producer.stop()
            await client.close()

    _run_until_signal(work)


def fanout() -> None:
    """Runs the Faust fan-out worker."""
    from faust import Worker

    from services.messaging.streams import build_app

    settings = get_settings()
    telemetry.stop_tracing_each_record()
    _ensure_fanout_topics(settings)
    app = build_app(settings)
    Worker(app, loglevel=settings.log_level, quiet=True).execute_from_commandline()


def sender(channel: str = "all") -> None:
    """Sends one channel's deliveries, or every channel's with `--channel all`."""
    from services.messaging.senders import run_sender

    settings = get_settings()
    telemetry.stop_tracing_each_record()
    channels = list(CHANNELS) if channel == "all" else [channel]
    if any(c not in CHANNELS for c in channels):
        raise SystemExit(f"--channel must be one of {', '.join(CHANNELS)} or all")
    _metrics(settings)

    async def work(stop: asyncio.Event) -> None:
        await asyncio.gather(
            *(run_sender(settings, channel=c, stop=stop) for c in channels)
        )

    _run_until_signal(work)


def status() -> None:
    """Aggregates delivery statuses into one document per alert."""
    import time

    from services.messaging.consumers import StatusBoards, replay_and_follow
    from shared.events import DeliveryStatus
    from shared.mongo import database, new_client

    settings = get_settings()
    telemetry.stop_tracing_each_record()
    _metrics(settings)

    async def work(stop: asyncio.Event) -> None:
        client = new_client(settings)
        boards = StatusBoards(db=database(client, settings))
        last = [0.0]

        async def flush_now_and_then() -> None:
            # Summaries are recomputed whole; once a second keeps that cheap.
            if time.monotonic() - last[0] >= 1.0:
                last[0] = time.monotonic()
                await boards.flush()

        try:
            await replay_and_follow(
                settings,
                topics=[settings.topic(DeliveryStatus.TOPIC)],
                apply=boards.apply,
                stop=stop,
                caught_up=asyncio.Event(),
                on_idle=flush_now_and_then,
            )
            await boards.flush()
        finally:
            await client.close()

    _run_until_signal(work)


def gateway() -> None:
    """Runs the local SMTP server (with the reply relay) and SMS/voice/push gateway."""
    from services.messaging.gateway import run_gateway
    from services.messaging.providers import provider_for
    from services.messaging.replies import ReplyRelay
    from shared import crypto

    settings = get_settings()
    # The reply relay follows every member's record, as bulk as the fan-out does.
    telemetry.stop_tracing_each_record()

    async def work(stop: asyncio.Event) -> None:
        # Replies leave through the outbound provider, as every other e-mail does.
        provider = provider_for("email", settings=settings)
        replies = ReplyRelay(
            settings=settings,
            keyring=crypto.keyring_from_settings(
                settings.contacts_keys, settings.contacts_active_key_id
            ),
            provider=provider,
        )
        try:
            await run_gateway(
                host=settings.gateway_host,
                http_port=settings.gateway_http_port,
                smtp_port=settings.gateway_smtp_port,
                directory=settings.gateway_store_dir,
                stop=stop,
                smtp_max_bytes=settings.gateway_smtp_max_bytes,
                replies=replies,
            )
        finally:
            await provider.close()

    _run_until_signal(work)


if __name__ == "__main__":
    roles = {
        "api": api,
        "relay": relay,
        "fanout": fanout,
        "sender": sender,
        "status": status,
    }
    main(
        service="messaging",
        settings=get_settings(),
        roles={
            **{
                name: _with_topics(role, get_settings()) for name, role in roles.items()
            },
            "gateway": gateway,
        },
    )
