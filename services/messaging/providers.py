"""The provider interface and its two implementations: an HTTP gateway and SMTP."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass
from email.message import EmailMessage, MIMEPart
from email.policy import SMTP as SMTP_POLICY
from typing import Literal, Protocol

import httpx

from services.messaging import telemetry

GATEWAY_PATHS = {"sms": "/v1/sms", "voice": "/v1/voice", "app": "/v1/push"}


@dataclass(frozen=True)
class MailAttachment:
    """A file sent with a mail, its type checked by its content when accepted."""

    attachment_id: str
    filename: str
    content_type: str
    data: bytes


def unsubscribe_headers(link: str) -> str:
    """RFC 8058 one-click unsubscribe headers, written as they are: the email package
    would fold a long URL into encoded words, which mail clients do not open."""
    return (
        f"List-Unsubscribe: <{link}>\r\n"
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    )


@dataclass(frozen=True)
class Outbound:
    """One message ready for a provider; the mail fields only for e-mail."""

    key: str
    alert_id: str
    to: str
    subject: str | None
    text: str
    segments: int | None = None
    encoding: str | None = None
    reply_to: str | None = None
    unsubscribe_url: str | None = None
    attachments: tuple[MailAttachment, ...] = ()
    # An alert's e-mail: the unsubscribe link in the headers only, so that the text
    # stays one rendering for every recipient.
    list_unsubscribe: str | None = None

    @property
    def is_mail(self) -> bool:
        """Whether it carries more than an alert's text: links or attachments."""
        return bool(self.reply_to or self.unsubscribe_url or self.attachments)


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


class SmtpError(Exception):
    """An SMTP reply that ends a transaction, with its code."""

    def __init__(self, code: int, what: str) -> None:
        super().__init__(f"{what} ({code})")
        self.code, self.what = code, what


class SmtpConnection:
    """One SMTP session over asyncio streams; pipelines when the server offers it.

    With PIPELINING (RFC 2920) a message costs one round trip instead of four, and
    no thread: smtplib blocks, so it needs one each.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        timeout_s: float,
    ) -> None:
        self.reader, self.writer, self.timeout_s = reader, writer, timeout_s
        self.pipelining = False

    @classmethod
    async def open(cls, *, host: str, port: int, timeout_s: float) -> SmtpConnection:
        """Connect, read the greeting and introduce ourselves with EHLO."""
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), timeout_s
        )
        connection = cls(reader, writer, timeout_s)
        code, _ = await connection.reply()
        if code != 220:
            raise SmtpError(code, "greeting refused")
        writer.write(b"EHLO bin-messaging\r\n")
        code, lines = await connection.reply()
        if code != 250:
            raise SmtpError(code, "EHLO refused")
        connection.pipelining = any(line.upper() == "PIPELINING" for line in lines)
        return connection

    async def reply(self) -> tuple[int, list[str]]:
        """Read one reply, multi-line or not: its code and its lines of text."""
        lines = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), self.timeout_s)
            if len(line) < 4:
                raise ConnectionError("the SMTP server closed the connection")
            lines.append(line[4:].decode("ascii", errors="replace").strip())
            if line[3:4] != b"-":
                return int(line[:3]), lines

    async def send_all(
        self, *, sender: str, mails: list[tuple[str, bytes]]
    ) -> list[SmtpError | Exception | None]:
        """Send (recipient, message) pairs in order: None, or what refused each one.

        With PIPELINING, a message's content and its end of data go out together
        with the next message's envelope (RFC 2920 lets a client send them in one
        go), so that a message costs one round trip. A broken connection ends the
        list early: the message or two it left without an answer get the error,
        and the ones after them no entry, to be sent over another connection.
        """
        if not self.pipelining:
            return await self._send_each(sender=sender, mails=mails)
        results: list[SmtpError | Exception | None] = []
        carried, carried_at = b"", -1
        for index, (recipient, data) in enumerate(mails):
            results.append(None)
            try:
                self.writer.write(carried + _envelope(sender, recipient))
                carried = b""
                if carried_at >= 0:
                    results[carried_at] = await self._end_of_data()
                    carried_at = -1
                codes = [(await self.reply())[0] for _ in range(3)]
                refused = _refusal(codes)
                if refused is not None:
                    results[index] = refused
                    await self._reset(data_open=codes[2] == 354)
                    continue
                carried, carried_at = _content(data), index
            except CONNECTION_ERRORS as error:
                results[index] = error
                if carried_at >= 0:
                    results[carried_at] = error
                return results
        if carried_at >= 0:
            try:
                self.writer.write(carried)
                results[carried_at] = await self._end_of_data()
            except CONNECTION_ERRORS as error:
                results[carried_at] = error
        return results

    async def _send_each(
        self, *, sender: str, mails: list[tuple[str, bytes]]
    ) -> list[SmtpError | Exception | None]:
        """`send_all` for a server without PIPELINING: four round trips a message."""
        results: list[SmtpError | Exception | None] = []
        for recipient, data in mails:
            try:
                await self.send(sender=sender, recipient=recipient, data=data)
                results.append(None)
            except SmtpError as error:
                results.append(error)
            except CONNECTION_ERRORS as error:
                results.append(error)
                break
        return results

    async def _end_of_data(self) -> SmtpError | None:
        """The answer to a message's end of data: None when the server took it."""
        code, _ = await self.reply()
        return None if code == 250 else SmtpError(code, "message refused")

    async def send(self, *, sender: str, recipient: str, data: bytes) -> None:
        """Send one message, a command at a time; SmtpError says what refused it."""
        codes = []
        for command in _envelope(sender, recipient).splitlines(keepends=True):
            self.writer.write(command)
            codes.append((await self.reply())[0])
            if codes[-1] >= 400:
                break
        codes += [0] * (3 - len(codes))
        refused = _refusal(codes)
        if refused is not None:
            await self._reset(data_open=codes[2] == 354)
            raise refused
        self.writer.write(_content(data))
        refused = await self._end_of_data()
        if refused is not None:
            raise refused

    async def _reset(self, *, data_open: bool = False) -> None:
        """End a refused transaction; a server that took DATA anyway gets an empty
        message first, or it would read RSET as the message's content."""
        if data_open:
            self.writer.write(b".\r\n")
            await self.reply()
        self.writer.write(b"RSET\r\n")
        await self.reply()

    async def close(self) -> None:
        """Say QUIT and close, ignoring a server that is already gone."""
        try:
            self.writer.write(b"QUIT\r\n")
            await asyncio.wait_for(self.reply(), 1)
        except CONNECTION_ERRORS:
            pass
        self.writer.close()


CONNECTION_ERRORS = (TimeoutError, OSError, ConnectionError, ValueError)


def _envelope(sender: str, recipient: str) -> bytes:
    return f"MAIL FROM:<{sender}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode()


def _content(data: bytes) -> bytes:
    """A message as sent after DATA: dot-stuffed (a line that starts with a dot gets
    a second one) and ended by a line with a single dot."""
    body = re.sub(rb"(?m)^\.", b"..", data)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


def _refusal(codes: list[int]) -> SmtpError | None:
    """What refused a pipelined envelope (MAIL, RCPT, DATA), if anything did."""
    if codes[0] != 250:
        return SmtpError(codes[0], "sender refused")
    if codes[1] not in (250, 251):
        return SmtpError(codes[1], "recipient refused")
    if codes[2] != 354:
        return SmtpError(codes[2], "message refused")
    return None


class SmtpProvider:
    """E-mail over SMTP; the Message-ID derives from the idempotency key."""

    channel = "email"

    def __init__(
        self, *, host: str, port: int, sender: str, connections: int, timeout_s: float
    ) -> None:
        self.host, self.port, self.sender, self.timeout_s = (
            host,
            port,
            sender,
            timeout_s,
        )
        self.connections = connections
        self.idle: list[SmtpConnection] = []
        self.slots = asyncio.Semaphore(connections)
        self.rendered: dict[tuple[str | None, str], bytes] = {}
        self.parts: dict[str, bytes] = {}

    def _mail(self, message: Outbound) -> bytes:
        """The message as sent: per-recipient headers before a shared rendering."""
        if message.is_mail:
            return self._mail_to_one(message)
        varying = (message.to, message.key, message.alert_id, message.list_unsubscribe or "")
        if not all(value.isascii() and value.isprintable() for value in varying):
            return self._full_mail(message)
        shared = self.rendered.get((message.subject, message.text))
        if shared is None:
            mail = EmailMessage()
            mail["From"] = self.sender
            mail["Subject"] = message.subject or ""
            mail.set_content(message.text)
            shared = mail.as_bytes(policy=SMTP_POLICY)
            if len(self.rendered) >= 256:
                self.rendered.clear()
            self.rendered[(message.subject, message.text)] = shared
        # A provider that sees the same Message-ID twice keeps one copy.
        head = (
            f"To: {message.to}\r\nMessage-ID: <{message.key}@bin-messaging>\r\n"
            f"X-Idempotency-Key: {message.key}\r\nX-Alert-Id: {message.alert_id}\r\n"
        )
        if message.list_unsubscribe and ">" not in message.list_unsubscribe:
            head += unsubscribe_headers(message.list_unsubscribe)
        return head.encode("ascii") + shared

    def _addressed(self, message: Outbound) -> EmailMessage:
        """A mail with its one recipient and the headers that identify it; a provider
        that sees the same Message-ID twice keeps one copy."""
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.to
        mail["Subject"] = message.subject or ""
        mail["Message-ID"] = f"<{message.key}@bin-messaging>"
        mail["X-Idempotency-Key"] = message.key
        mail["X-Alert-Id"] = message.alert_id
        return mail

    def _full_mail(self, message: Outbound) -> bytes:
        mail = self._addressed(message)
        mail.set_content(message.text)
        rendered = mail.as_bytes(policy=SMTP_POLICY)
        link = message.list_unsubscribe
        if link and link.isascii() and link.isprintable() and ">" not in link:
            rendered = unsubscribe_headers(link).encode("ascii") + rendered
        return rendered

    def _mail_to_one(self, message: Outbound) -> bytes:
        """A mail addressed to its one recipient, with relay, links and attachments.

        Nothing but the recipient's own address and the platform's addresses goes
        into the headers. The links are written as they are: the email package
        would fold a long URL into encoded words, which mail clients do not open.
        """
        mail = self._addressed(message)
        if message.reply_to:
            mail["Reply-To"] = message.reply_to
        head = mail.as_bytes(policy=SMTP_POLICY).rstrip(b"\r\n") + b"\r\n"
        if message.unsubscribe_url:
            link = message.unsubscribe_url
            if not (link.isascii() and link.isprintable() and ">" not in link):
                raise ValueError("unusable unsubscribe link")
            head += unsubscribe_headers(link).encode("ascii")
        text = MIMEPart()
        text.set_content(message.text)
        head += b"MIME-Version: 1.0\r\n"
        if not message.attachments:
            return head + text.as_bytes(policy=SMTP_POLICY)
        boundary = f"=_bin_{uuid.uuid4().hex}"
        parts = [text.as_bytes(policy=SMTP_POLICY)]
        parts += [self._attachment_part(item) for item in message.attachments]
        body = b"".join(b"--%s\r\n%s\r\n" % (boundary.encode(), p) for p in parts)
        return (
            head
            + f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'.encode()
            + body
            + f"--{boundary}--\r\n".encode()
        )

    def _attachment_part(self, item: MailAttachment) -> bytes:
        """One attachment as a MIME part, encoded once for every recipient."""
        part = self.parts.get(item.attachment_id)
        if part is None:
            maintype, _, subtype = item.content_type.partition("/")
            mime = MIMEPart()
            mime.set_content(
                item.data, maintype=maintype, subtype=subtype, filename=item.filename
            )
            part = mime.as_bytes(policy=SMTP_POLICY)
            if len(self.parts) >= 32:
                self.parts.clear()
            self.parts[item.attachment_id] = part
        return part

    async def _send_many(self, messages: list[Outbound]) -> list[Outcome]:
        """Send messages one after the other over one connection of the pool."""
        async with self.slots:
            connection = self.idle.pop() if self.idle else None
            started = time.perf_counter()
            outcomes = []
            todo: list[tuple[str, str, bytes]] = []
            for message in messages:
                try:
                    todo.append((message.key, message.to, self._mail(message)))
                except (ValueError, UnicodeError) as error:
                    reason = f"unusable address: {type(error).__name__}"
                    outcomes.append(Outcome(message.key, "permanent", reason))
            while todo:
                try:
                    if connection is None:
                        connection = await SmtpConnection.open(
                            host=self.host, port=self.port, timeout_s=self.timeout_s
                        )
                except (SmtpError, *CONNECTION_ERRORS) as error:
                    reason = f"smtp error: {type(error).__name__}"
                    outcomes += [Outcome(key, "temporary", reason) for key, _, _ in todo]
                    break
                results = await connection.send_all(
                    sender=self.sender, mails=[(to, data) for _, to, data in todo]
                )
                for (key, _, _), result in zip(todo, results, strict=False):
                    outcomes.append(_outcome(key, result))
                todo = todo[len(results) :]
                if any(isinstance(r, CONNECTION_ERRORS) for r in results):
                    await connection.close()
                    connection = None
            if connection is not None:
                self.idle.append(connection)
            telemetry.record_provider_request(
                channel="email", seconds=(time.perf_counter() - started) / len(messages)
            )
            return outcomes

    async def send(self, messages: list[Outbound]) -> list[Outcome]:
        """Send the messages over a small pool of SMTP connections."""
        groups = [messages[i :: self.connections] for i in range(self.connections)]
        results = await asyncio.gather(*(self._send_many(g) for g in groups if g))
        by_key = {outcome.key: outcome for outcomes in results for outcome in outcomes}
        return [by_key[m.key] for m in messages]

    async def close(self) -> None:
        """Quit every SMTP connection."""
        idle, self.idle = self.idle, []
        for connection in idle:
            await connection.close()


def _outcome(key: str, result: SmtpError | Exception | None) -> Outcome:
    """The outcome of one message that `SmtpConnection.send_all` sent."""
    if result is None:
        return Outcome(key, "handed_over")
    if isinstance(result, SmtpError):
        return _smtp_outcome(key, result.code, result.what)
    return Outcome(key, "temporary", f"smtp error: {type(result).__name__}")


def _smtp_outcome(key: str, code: int, what: str) -> Outcome:
    result: Literal["temporary", "permanent"] = (
        "permanent" if code >= 500 else "temporary"
    )
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
