"""CloudEvents 1.0 in the Kafka protocol binding's binary mode.

Attributes travel as `ce_*` headers, the data as a JSON body that is one of the
versioned models of `shared.events`. A tombstone has no body but keeps its headers.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from shared.events import BY_TYPE, Event

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"

Headers = list[tuple[str, bytes]]


class EnvelopeError(ValueError):
    """A record that is not a valid event of the catalogue."""


@dataclass(frozen=True)
class Envelope:
    """The CloudEvents attributes of one record."""

    id: str
    source: str
    type: str
    time: str
    subject: str | None = None


@dataclass(frozen=True)
class Received:
    """A decoded record: its key, its attributes and its event (None for a tombstone)."""

    key: str | None
    envelope: Envelope
    event: Event | None
    headers: dict[str, bytes]


def utcnow() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


def encode(
    event: Event,
    *,
    source: str,
    subject: str | None = None,
    event_id: str | None = None,
) -> tuple[bytes, Headers]:
    """Turn an event into a JSON body and its `ce_*` headers."""
    body = event.model_dump_json().encode()
    return body, attribute_headers(
        event_type=event.EVENT_TYPE,
        source=source,
        subject=subject,
        event_id=event_id,
    )


def attribute_headers(
    *,
    event_type: str,
    source: str,
    subject: str | None = None,
    event_id: str | None = None,
) -> Headers:
    """The `ce_*` headers of one event; used alone for tombstones."""
    headers: Headers = [
        ("ce_specversion", SPEC_VERSION.encode()),
        ("ce_id", (event_id or str(uuid.uuid4())).encode()),
        ("ce_source", source.encode()),
        ("ce_type", event_type.encode()),
        ("ce_time", utcnow().isoformat().encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]
    if subject is not None:
        headers.append(("ce_subject", subject.encode()))
    return headers


def decode(
    *, key: bytes | None, value: bytes | None, headers: Headers | None
) -> Received:
    """Read a record back into its event; EnvelopeError says why it cannot be."""
    found = {name: data for name, data in headers or ()}
    try:
        attrs = {
            name: found[f"ce_{name}"].decode()
            for name in ("specversion", "id", "source", "type")
        }
    except KeyError as missing:
        raise EnvelopeError(f"missing header {missing.args[0]}") from None
    except UnicodeDecodeError:
        raise EnvelopeError("a ce_ header is not UTF-8") from None
    if attrs["specversion"] != SPEC_VERSION:
        raise EnvelopeError(f"unsupported specversion {attrs['specversion']!r}")
    model = BY_TYPE.get(attrs["type"])
    if model is None:
        raise EnvelopeError(f"unknown event type {attrs['type']!r}")
    envelope = Envelope(
        id=attrs["id"],
        source=attrs["source"],
        type=attrs["type"],
        time=found.get("ce_time", b"").decode(errors="replace"),
        subject=found["ce_subject"].decode() if "ce_subject" in found else None,
    )
    event = None
    if value is not None:
        try:
            event = model.model_validate(json.loads(value))
        except json.JSONDecodeError as error:
            raise EnvelopeError(f"body is not JSON: {error.msg}") from None
        except ValidationError as error:
            raise EnvelopeError(_validation_reason(error)) from None
    return Received(
        key=key.decode() if key is not None else None,
        envelope=envelope,
        event=event,
        headers=found,
    )


def _validation_reason(error: ValidationError) -> str:
    """A short reason naming the fields, never their values."""
    parts = [
        f"{'.'.join(str(p) for p in item['loc']) or 'body'}: {item['type']}"
        for item in error.errors()[:5]
    ]
    return "invalid body: " + "; ".join(parts)
