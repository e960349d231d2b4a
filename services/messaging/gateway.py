"""Local providers: an SMTP server and an HTTP SMS/voice/push gateway that record.

They stand in for the commercial providers locally and in tests: they speak the
real protocols, deduplicate on the idempotency key the way a gateway with an
`Idempotency-Key` header does, keep what they received on disk so that a restart
forgets nothing, and can be told to fail for a recipient. The SMTP server is also
the platform's reply relay (services/messaging/replies.py): mail to the relay
domain is passed to coordinators, not stored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message
from email.policy import compat32
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session

if TYPE_CHECKING:
    from services.messaging.replies import ReplyRelay

log = logging.getLogger("bin.messaging.gateway")
# aiosmtpd logs every command it receives, recipients' addresses among them, at INFO
# on the "mail.log" logger: personal data never reaches a log.
logging.getLogger("mail.log").setLevel(logging.WARNING)

HTTP_CHANNELS = {"sms": "sms", "voice": "voice", "push": "app"}


@dataclass
class FailureRule:
    """How the gateway answers one recipient: temporarily or permanently failing."""

    mode: str
    remaining: int | None = None

    def take(self) -> str | None:
        """Return the failure mode for the next message, counting it down."""
        if self.remaining is not None:
            if self.remaining <= 0:
                return None
            self.remaining -= 1
        return self.mode


@dataclass
class GatewayStore:
    """Everything received, by idempotency key, mirrored to a JSON-lines file."""

    directory: Path
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, FailureRule] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    by_channel: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "received.jsonl"
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                if line.strip():
                    record = json.loads(line)
                    self.messages[record["idempotency_key"]] = record
                    self._count(record)
        self._file = self.path.open("a", encoding="utf-8")

    def failure_for(self, recipient: str) -> str | None:
        """The failure to answer for a recipient now, if a rule says so."""
        rule = self.failures.get(recipient)
        return rule.take() if rule else None

    def accept(self, record: dict[str, Any]) -> str:
        """Store a message unless its key was seen; return accepted or duplicate."""
        key = record["idempotency_key"]
        self.attempts[key] = self.attempts.get(key, 0) + 1
        if key in self.messages:
            return "duplicate"
        record["received_at"] = datetime.now(UTC).isoformat()
        self.messages[key] = record
        self._count(record)
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        return "accepted"

    def _count(self, record: dict[str, Any]) -> None:
        channel = str(record.get("channel"))
        self.by_channel[channel] = self.by_channel.get(channel, 0) + 1

    def flush(self) -> None:
        """Write buffered records to disk."""
        self._file.flush()

    def find(self, **wanted: str) -> list[dict[str, Any]]:
        """Messages whose fields equal the given values."""
        return [
            m
            for m in self.messages.values()
            if all(str(m.get(name)) == value for name, value in wanted.items())
        ]


def http_app(gateway: GatewayStore) -> web.Application:
    """The HTTP side: send endpoints per channel, read-back and failure control."""
    routes = web.RouteTableDef()

    @routes.post("/v1/{kind}")
    async def send(request: web.Request) -> web.Response:
        """Accepts one message or a batch for SMS, voice or push."""
        kind = request.match_info["kind"]
        if kind not in HTTP_CHANNELS:
            return web.json_response({"error": "unknown endpoint"}, status=404)
        body = await request.json()
        items = body.get("messages") if isinstance(body, dict) else None
        if items is None:
            key = request.headers.get("Idempotency-Key") or body.get("idempotency_key")
            items = [{**body, "idempotency_key": key}]
        results = []
        for item in items:
            key, to = item.get("idempotency_key"), item.get("to")
            if not key or not to:
                results.append(
                    {
                        "idempotency_key": key,
                        "status": "rejected",
                        "reason": "idempotency_key and to are required",
                    }
                )
                continue
            failure = gateway.failure_for(to)
            if failure is not None:
                gateway.attempts[key] = gateway.attempts.get(key, 0) + 1
                status = "rejected" if failure == "permanent" else "retry"
                results.append(
                    {
                        "idempotency_key": key,
                        "status": status,
                        "reason": f"recipient {failure}ly unreachable",
                    }
                )
                continue
            record = {**item, "channel": HTTP_CHANNELS[kind]}
            results.append({"idempotency_key": key, "status": gateway.accept(record)})
        gateway.flush()
        return web.json_response({"results": results})

    @routes.get("/v1/messages")
    async def messages(request: web.Request) -> web.Response:
        """Lists what arrived, filtered by any field (channel, to, alert_id...)."""
        found = gateway.find(**dict(request.query))
        return web.json_response({"count": len(found), "messages": found})

    @routes.get("/v1/counts")
    async def counts(request: web.Request) -> web.Response:
        """How many distinct messages arrived per channel, and in all."""
        by_channel = dict(gateway.by_channel)
        total = sum(by_channel.values())
        return web.json_response({"count": total, "by_channel": by_channel})

    @routes.get("/v1/attempts/{key}")
    async def attempts(request: web.Request) -> web.Response:
        """How many times a key was presented, duplicates and failures included."""
        key = request.match_info["key"]
        return web.json_response({"attempts": gateway.attempts.get(key, 0)})

    @routes.post("/v1/failures")
    async def fail(request: web.Request) -> web.Response:
        """Makes the gateway and the SMTP server fail for one recipient."""
        body = await request.json()
        if body.get("mode") not in ("temporary", "permanent"):
            return web.json_response(
                {"error": "mode is temporary or permanent"}, status=400
            )
        gateway.failures[body["to"]] = FailureRule(body["mode"], body.get("times"))
        return web.json_response({"ok": True})

    @routes.get("/healthz")
    async def healthz(request: web.Request) -> web.Response:
        """Answers while the gateway is alive."""
        return web.json_response({"status": "alive"})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.add_routes(routes)
    return app


# A path as almost every client writes it: <local@domain>, dot-atoms only.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_PATH = re.compile(rf"<({_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>")


class SmtpServer(SMTP):
    """aiosmtpd's SMTP session, reading a plain <local@domain> path without the
    email package's full address parser, which cost the server a third of its time
    per message; any other path goes to that parser as before."""

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        match = _PLAIN_PATH.match(arg)
        if match is None or (
            self.local_part_limit
            and len(match.group(1).rpartition("@")[0]) > self.local_part_limit
        ):
            return super()._getaddr(arg)
        return match.group(1), arg[match.end() :].lstrip()


class MailHandler:
    """aiosmtpd handler that stores each message once per Message-ID and recipient."""

    def __init__(
        self, gateway: GatewayStore, replies: ReplyRelay | None = None
    ) -> None:
        self.gateway, self.replies = gateway, replies

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """Offers PIPELINING: aiosmtpd answers queued commands one by one, in order."""
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        """Refuses recipients a failure rule covers, and relay addresses it must."""
        if self.replies is not None and self.replies.handles(address):
            refusal = self.replies.refusal(address)
            if refusal:
                return refusal
            envelope.rcpt_tos.append(address)
            return "250 OK"
        failure = self.gateway.failure_for(address)
        if failure == "permanent":
            return "550 5.1.1 mailbox unavailable"
        if failure == "temporary":
            return "451 4.3.0 mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        """Stores the message for every recipient, once per idempotency key."""
        # compat32 parses a plain message several times faster than the default
        # policy, which builds a rich object for every header.
        message = message_from_bytes(envelope.content, policy=compat32)
        mailboxes = list(envelope.rcpt_tos)
        if self.replies is not None:
            relayed = [r for r in mailboxes if self.replies.handles(r)]
            mailboxes = [r for r in mailboxes if r not in relayed]
            for rcpt in relayed:
                answer = await self.replies.forward(
                    address=rcpt, sender=envelope.mail_from or "", message=message
                )
                if not answer.startswith("250"):
                    return answer
            if not mailboxes:
                return "250 Message accepted"
        key = _decoded(message.get("X-Idempotency-Key") or message.get("Message-ID"))
        text = _plain_text(message)
        headers = [[name, _decoded(value)] for name, value in message.items()]
        for rcpt in mailboxes:
            self.gateway.accept(
                {
                    "idempotency_key": key
                    if len(mailboxes) == 1
                    else f"{key}/{rcpt}",
                    "channel": "email",
                    "to": rcpt,
                    "subject": _decoded(message.get("Subject", "")),
                    "text": text,
                    "message_id": _decoded(message.get("Message-ID", "")),
                    "alert_id": _decoded(message.get("X-Alert-Id", "")),
                    "headers": headers,
                    "attachments": _attachments(message),
                }
            )
        self.gateway.flush()
        return "250 Message accepted"


def _decoded(value: object) -> str:
    """A header's value, unfolded, with its encoded words decoded."""
    unfolded = " ".join(str(value or "").split())
    if "=?" not in unfolded:
        # No encoded word (RFC 2047): nothing to decode, and decoding costs more
        # than the rest of storing a message.
        return unfolded
    return str(make_header(decode_header(unfolded)))


def _attachments(message: Message) -> list[dict[str, Any]]:
    """The name, type and size of every attachment of a message."""
    found = []
    for part in message.walk():
        if part.get_content_disposition() == "attachment":
            payload = part.get_payload(decode=True)
            found.append(
                {
                    "filename": part.get_filename(),
                    "content_type": part.get_content_type(),
                    "size": len(payload) if isinstance(payload, bytes) else 0,
                }
            )
    return found


def _plain_text(message: Message) -> str:
    """The first text/plain part of a message, decoded."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                charset = part.get_content_charset() or "utf-8"
                return payload.decode(charset, errors="replace")
    return ""


async def run_gateway(
    *,
    host: str,
    http_port: int,
    smtp_port: int,
    directory: Path,
    stop: asyncio.Event,
    smtp_max_bytes: int = 1024 * 1024,
    replies: ReplyRelay | None = None,
) -> None:
    """Serve the HTTP gateway and the SMTP server (and relay) until `stop` is set."""
    gateway = GatewayStore(directory)
    runner = web.AppRunner(http_app(gateway), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, http_port)
    await site.start()
    loop = asyncio.get_running_loop()
    smtp = await loop.create_server(
        lambda: SmtpServer(
            MailHandler(gateway, replies),
            hostname="bin-gateway.local",
            data_size_limit=smtp_max_bytes,
        ),
        host=host,
        port=smtp_port,
    )
    log.info("gateway listening", extra={"url": f"http://{host}:{http_port}"})
    following = asyncio.create_task(replies.follow(stop)) if replies else None
    try:
        await stop.wait()
    finally:
        if following is not None:
            following.cancel()
        smtp.close()
        await runner.cleanup()
