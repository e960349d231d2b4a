"""The provider interface and its two implementations: an HTTP gateway and SMTP."""

from __future__ import annotations

import asyncio
import smtplib
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Literal, Protocol

import httpx

from services.messaging import telemetry

GATEWAY_PATHS = {"sms": "/v1/sms", "voice": "/v1/voice", "app": "/v1/push"}


@dataclass(frozen=True)
class Outbound:
    """One message ready for a provider."""

    key: str
    alert_id: str
    to: str
    subject: str | None
    text: str
    segments: int | None = None
    encoding: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What a provider said about one message."""

    key: str
    result: Literal["handed_over", "temporary", "permanent"]
    reason: str | None = None


class Provider(Protocol):
    """Hands messages to an outside service; every message gets an outcome."""

    channel: str

    async def send(self, messages: list[Outbound]) -> list[Outcome]:
        """Hand over a batch of messages."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class HttpGatewayProvider:
    """An SMS, voice or push gateway with a JSON batch API and idempotency keys."""

    def __init__(self, *, channel: str, base_url: str, timeout_s: float) -> None:
        self.channel = channel
        self.url = base_url.rstrip("/") + GATEWAY_PATHS[channel]
        self.client = httpx.AsyncClient(timeout=timeout_s)

    async def send(self, messages: list[Outbound]) -> list[Outcome]:
        """Post the batch; a transport error or 5xx makes every message temporary."""
        payload = {
            "messages": [
                {
                    "idempotency_key": m.key,
                    "alert_id": m.alert_id,
                    "to": m.to,
                    "subject": m.subject,
                    "text": m.text,
                    "segments": m.segments,
                    "encoding": m.encoding,
                }
                for m in messages
            ]
        }
        started = time.perf_counter()
        try:
            response = await self.client.post(self.url, json=payload)
        except httpx.HTTPError as error:
            reason = f"gateway unreachable: {type(error).__name__}"
            return [Outcome(m.key, "temporary", reason) for m in messages]
        finally:
            telemetry.record_provider_request(
                channel=self.channel, seconds=time.perf_counter() - started
            )
        if response.status_code == 429 or response.status_code >= 500:
            reason = f"gateway answered {response.status_code}"
            return [Outcome(m.key, "temporary", reason) for m in messages]
        if response.status_code >= 400:
            reason = f"gateway refused the request ({response.status_code})"
            return [Outcome(m.key, "permanent", reason) for m in messages]
        by_key = {r["idempotency_key"]: r for r in response.json().get("results", [])}
        outcomes = []
        for m in messages:
            result = by_key.get(m.key, {"status": "retry", "reason": "no answer"})
            status = result["status"]
            if status in ("accepted", "duplicate"):
                outcomes.append(Outcome(m.key, "handed_over"))
            elif status == "rejected":
                outcomes.append(Outcome(m.key, "permanent", result.get("reason")))
            else:
                outcomes.append(Outcome(m.key, "temporary", result.get("reason")))
        return outcomes

    async def close(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()


class SmtpProvider:
    """E-mail over SMTP; the Message-ID derives from the idempotency key."""

    channel = "email"

    def __init__(
        self, *, host: str, port: int, sender: str, connections: int, timeout_s: float
    ) -> None:
        self.host, self.port, self.sender, self.timeout_s = host, port, sender, timeout_s
        self.slots = asyncio.Semaphore(connections)
        self.local = threading.local()
        self.opened: list[smtplib.SMTP] = []

    def _connection(self) -> smtplib.SMTP:
        connection = getattr(self.local, "smtp", None)
        if connection is None:
            connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
            self.local.smtp = connection
            self.opened.append(connection)
        return connection

    def _send_one(self, message: Outbound) -> Outcome:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.to
        mail["Subject"] = message.subject or ""
        # A provider that sees the same Message-ID twice keeps one copy.
        mail["Message-ID"] = f"<{message.key}@bin-messaging>"
        mail["X-Idempotency-Key"] = message.key
        mail["X-Alert-Id"] = message.alert_id
        mail.set_content(message.text)
        try:
            self._connection().send_message(mail)
            return Outcome(message.key, "handed_over")
        except smtplib.SMTPRecipientsRefused as error:
            code = next(iter(error.recipients.values()))[0]
            return _smtp_outcome(message.key, code, "recipient refused")
        except smtplib.SMTPResponseException as error:
            return _smtp_outcome(message.key, error.smtp_code, "message refused")
        except (OSError, smtplib.SMTPException) as error:
            self.local.smtp = None
            return Outcome(message.key, "temporary", f"smtp error: {type(error).__name__}")

    async def _send_slot(self, message: Outbound) -> Outcome:
        async with self.slots:
            started = time.perf_counter()
            outcome = await asyncio.to_thread(self._send_one, message)
            telemetry.record_provider_request(
                channel="email", seconds=time.perf_counter() - started
            )
            return outcome

    async def send(self, messages: list[Outbound]) -> list[Outcome]:
        """Send each message over a small pool of SMTP connections."""
        return list(await asyncio.gather(*(self._send_slot(m) for m in messages)))

    async def close(self) -> None:
        """Quit every SMTP connection."""
        for connection in self.opened:
            try:
                connection.quit()
            except (OSError, smtplib.SMTPException):
                pass


def _smtp_outcome(key: str, code: int, what: str) -> Outcome:
    result: Literal["temporary", "permanent"] = "permanent" if code >= 500 else "temporary"
    return Outcome(key, result, f"{what} ({code})")


def provider_for(channel: str, *, settings: object) -> Provider:
    """The provider of a channel as the settings configure it."""
    if channel == "email":
        return SmtpProvider(
            host=settings.smtp_host,  # type: ignore[attr-defined]
            port=settings.smtp_port,  # type: ignore[attr-defined]
            sender=settings.mail_from,  # type: ignore[attr-defined]
            connections=settings.smtp_connections,  # type: ignore[attr-defined]
            timeout_s=settings.provider_timeout_s,  # type: ignore[attr-defined]
        )
    return HttpGatewayProvider(
        channel=channel,
        base_url=settings.gateway_url,  # type: ignore[attr-defined]
        timeout_s=settings.provider_timeout_s,  # type: ignore[attr-defined]
    )
