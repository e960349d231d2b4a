"""HTTP API of the messaging service: police zones publish alerts and follow them;
coordinators, zones and operators send mail to members by role."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from services.messaging import cap, domain, store
from services.messaging import mail as mail_rules
from services.messaging.consumers import RegistryView, replay_and_follow
from services.messaging.settings import get_settings
from shared.auth import Principal, principal_from, require_role, require_zone
from shared.events import (
    AlertAccepted,
    AlertCategory,
    AlertTarget,
    AlertText,
    AttachmentRef,
    BinSnapshot,
    Channel,
    Language,
    MailDetails,
    ZoneSnapshot,
)
from shared.http import Problem, create_app, problem_response
from shared.runtime import Runtime

log = logging.getLogger("bin.messaging.api")
settings = get_settings()
runtime = Runtime(settings)
registry = RegistryView()
CAP_TYPES = ("application/xml", "application/cap+xml", "text/xml")


class AlertIn(BaseModel):
    """An alert, update or cancellation sent as JSON."""

    model_config = ConfigDict(extra="forbid")
    alert_id: str | None = Field(default=None, min_length=1, max_length=200)
    zone: str | None = None
    action: Literal["alert", "update", "cancel"] = "alert"
    references: str | None = None
    category: AlertCategory
    urgency: str = "Expected"
    severity: str = "Moderate"
    texts: dict[Language, AlertText] = Field(min_length=1)
    channels: list[Channel] = Field(
        default_factory=lambda: ["sms", "email", "voice", "app"]
    )
    target: AlertTarget = AlertTarget(kind="zone")
    # A time without its offset would be ambiguous: an expiry must say it.
    expires_at: AwareDatetime | None = None


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    """Opens the database client and follows zones and BINs for the app's lifetime."""
    await runtime.start()
    stop = asyncio.Event()
    follower = asyncio.create_task(
        replay_and_follow(
            settings,
            topics=[
                settings.registry_topic(ZoneSnapshot.TOPIC),
                settings.registry_topic(BinSnapshot.TOPIC),
            ],
            apply=registry.apply,
            stop=stop,
            caught_up=registry.caught_up,
        )
    )
    yield
    stop.set()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(follower, 5)
    await runtime.stop()


async def registry_problem() -> str:
    """Why the API cannot judge targets yet, or an empty string."""
    return "" if registry.caught_up.is_set() else "still reading zones and BINs"


app = create_app(
    title="BIN messaging",
    description="Police zones publish alerts (JSON or CAP 1.2) and follow deliveries.",
    checks=[runtime.kafka_problem, runtime.database_problem, registry_problem],
    lifespan=lifespan,
)


def _zone_of(principal: Principal, requested: str | None) -> str:
    """The zone an alert is sent for: the token's zone, or the operator's choice."""
    require_role(principal, "zone", "operator")
    zone = requested or (principal.scope if principal.role == "zone" else "")
    if not zone:
        raise Problem(422, "Invalid request", "An operator must name the zone.")
    require_zone(principal, zone)
    return zone


async def _read_alert(request: Request, principal: Principal) -> AlertAccepted:
    """Turn the request body, JSON or CAP, into the event to publish."""
    now = datetime.now(UTC)
    body = await request.body()
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media in CAP_TYPES:
        zone = _zone_of(principal, request.query_params.get("zone"))
        try:
            parsed = cap.parse_cap(body, schema_path=settings.schema_path())
        except cap.CapError as error:
            raise Problem(422, "Invalid CAP alert", str(error)) from None
        return cap.to_event(
            parsed,
            zone=zone,
            accepted_at=now,
            default_validity=timedelta(seconds=settings.alert_default_validity_s),
        )
    if media not in ("application/json", ""):
        raise Problem(415, "Unsupported media type", "Send JSON or CAP 1.2 XML.")
    if len(body) > cap.MAX_DOCUMENT_BYTES:
        # The same bound as a CAP document's: an alert is a few texts, and a record
        # (and the alert's document in the database) has a size limit of its own.
        raise Problem(
            413, "Alert too large",
            f"An alert may hold at most {cap.MAX_DOCUMENT_BYTES} bytes.",
        )
    try:
        alert = AlertIn.model_validate_json(body)
    except ValidationError as error:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]) or "body", "reason": e["msg"]}
            for e in error.errors()
        ]
        raise Problem(422, "Invalid request", "Some fields are invalid.", errors=errors)
    zone = _zone_of(principal, alert.zone)
    return AlertAccepted(
        alert_id=alert.alert_id or f"alert-{uuid.uuid4()}",
        zone=zone,
        action=alert.action,
        references=alert.references,
        category=alert.category,
        urgency=alert.urgency,
        severity=alert.severity,
        texts=alert.texts,
        channels=alert.channels,
        target=alert.target,
        expires_at=alert.expires_at
        or now + timedelta(seconds=settings.alert_default_validity_s),
        accepted_at=now,
    )


def _check_target(event: AlertAccepted) -> None:
    """Refuse targets outside the sender's zone."""
    if event.zone not in registry.zone_municipalities:
        raise Problem(422, "Unknown zone", f"Zone {event.zone} is not known (yet).")
    if event.target.kind != "zone" and not event.target.values:
        raise Problem(
            422, "Invalid request", f"A {event.target.kind} target needs a value.",
            errors=[{"field": "target.values", "reason": "empty"}],
        )
    problems = domain.target_problems(
        kind=event.target.kind,
        values=event.target.values,
        zone_municipalities=registry.zone_municipalities[event.zone],
        zone_bins=registry.zone_bins(event.zone),
    )
    if problems:
        raise Problem(
            403,
            "Target outside your zone",
            "The alert targets places outside the sending zone.",
            errors=[{"field": "target", "reason": reason} for reason in problems],
        )


def _status_url(request: Request, alert_id: str) -> str:
    base = settings.public_base_url or str(request.base_url).rstrip("/")
    return f"{base}/v1/alerts/{alert_id}"


@app.post("/v1/alerts", status_code=202)
async def publish_alert(request: Request) -> JSONResponse:
    """Accepts an alert, update or cancel (JSON or CAP 1.2) and queues it."""
    principal = principal_from(request, secret=settings.jwt_secret)
    event = await _read_alert(request, principal)
    if event.action != "cancel" and event.expires_at <= event.accepted_at:
        raise Problem(
            422, "Invalid request", "The alert has already expired.",
            errors=[{"field": "expires_at", "reason": "lies in the past"}],
        )
    db = runtime.db
    if event.action == "alert":
        _check_target(event)
        try:
            await store.insert_alert_with_outbox(
                db, event=event, topic=settings.topic(AlertAccepted.TOPIC)
            )
        except store.AlertExists:
            raise Problem(
                409,
                "Alert exists",
                f"An alert or mail with id {event.alert_id} was accepted; "
                "alerts and mails need ids of their own.",
            ) from None
        target_id = event.alert_id
    else:
        target_id = event.references or ""
        original = await store.find_alert(db, alert_id=target_id) if target_id else None
        if original is None or original["zone"] != event.zone:
            raise Problem(
                422,
                "Unknown alert",
                f"The {event.action} refers to alert {target_id or '(none)'}, "
                "which this zone never sent.",
            )
        if original["state"] == "cancelled":
            raise Problem(409, "Alert cancelled", f"Alert {target_id} was cancelled.")
        try:
            # An update or cancel is a message of its own: its id is as unique as
            # an alert's, or a revision could go by an existing alert's name.
            await store.claim_message_id(db, message_id=event.alert_id, kind=event.action)
        except store.AlertExists:
            raise Problem(
                409,
                "Message exists",
                f"An alert, update, cancel or mail with id {event.alert_id} was "
                "accepted; every message needs an id of its own.",
            ) from None
        if not await store.revise_alert_with_outbox(
            db,
            original_id=target_id,
            event=event,
            topic=settings.topic(AlertAccepted.TOPIC),
        ):
            raise Problem(409, "Alert cancelled", f"Alert {target_id} was cancelled.")
    log.info(
        "alert accepted",
        extra={"alert_id": event.alert_id, "zone": event.zone, "status": event.action},
    )
    return JSONResponse(
        {
            "alert_id": event.alert_id,
            "action": event.action,
            "references": event.references,
            "status_url": _status_url(request, target_id),
        },
        status_code=202,
    )


@app.get("/v1/alerts/{alert_id}")
async def alert_status(alert_id: str, request: Request) -> dict[str, Any]:
    """Shows what happened to every delivery of an alert, without contact details."""
    principal = principal_from(request, secret=settings.jwt_secret)
    alert = await store.find_alert(runtime.db, alert_id=alert_id)
    if alert is None:
        raise Problem(404, "Not found", f"No alert {alert_id}.")
    require_zone(principal, alert["zone"])
    status = await store.find_status(runtime.db, alert_id=alert_id) or {}
    event = alert["event"]
    return {
        "alert_id": alert_id,
        "zone": alert["zone"],
        "state": alert["state"],
        "category": event["category"],
        "accepted_at": alert["accepted_at"],
        "revisions": alert.get("revisions", []),
        "targeted_members": status.get("targeted_members", 0),
        "by_channel": status.get("by_channel", {}),
        "first_handover_at": status.get("first_handover_at"),
        "last_handover_at": status.get("last_handover_at"),
        "seconds_to_first_handover": status.get("seconds_to_first_handover"),
        "seconds_to_last_handover": status.get("seconds_to_last_handover"),
        "failures": status.get("failures", []),
    }


# --- Mail --------------------------------------------------------------------


class MailText(BaseModel):
    """A mail's subject and text in one language."""

    model_config = ConfigDict(extra="forbid")
    subject: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=50_000)


class AttachmentIn(BaseModel):
    """A PDF or an image (PNG, JPEG, GIF, WebP), its bytes in base64."""

    model_config = ConfigDict(extra="forbid")
    filename: str = Field(min_length=1, max_length=200)
    content_type: str | None = Field(
        default=None,
        description="optional; when given it must be what the content really is",
    )
    content: str = Field(min_length=1, description="the file's bytes, base64")


class MailIn(BaseModel):
    """A mail to the members of a BIN, or to the coordinators or cyber advisers of a
    zone, or to the coordinators of a province."""

    model_config = ConfigDict(extra="forbid")
    mail_id: str | None = Field(
        default=None,
        pattern=mail_rules.MAIL_ID.pattern,
        description="choose one to make retries safe; generated when left out",
    )
    audience: mail_rules.AudienceKind = Field(
        default="bin",
        description="bin (coordinators: every member of their BIN), "
        "zone_coordinators and zone_cyber_advisers (zone staff: a fraud-wave "
        "briefing for the latter), province_coordinators (operators)",
    )
    to: str | None = Field(
        default=None,
        description="the BIN id, zone code or province NIS code; "
        "the token's scope when left out",
    )
    texts: dict[Language, MailText] = Field(min_length=1)
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=10)
    expires_at: AwareDatetime | None = None


def _mail_reach(principal: Principal, mail: MailIn) -> tuple[str, list[str]]:
    """The audience's BIN, zone or province, and the zones it lies in; 403 or 422."""
    require_role(principal, "coordinator", "zone", "operator")
    value = mail.to or (principal.scope if principal.role != "operator" else "")
    if not value:
        raise Problem(
            422, "Invalid request", "An operator must name the audience.",
            errors=[{"field": "to", "reason": "required for an operator"}],
        )
    refusal = mail_rules.sender_problem(
        role=principal.role, scope=principal.scope, kind=mail.audience, value=value
    )
    if refusal:
        raise Problem(
            403, "Audience outside your reach", "You cannot write to this audience.",
            errors=[{"field": "to" if mail.to else "audience", "reason": refusal}],
        )
    scope = mail_rules.AUDIENCES[mail.audience].scope
    if scope == "bin":
        info = registry.bins.get(value)
        zones = [info.zone] if info is not None and info.active else []
    elif scope == "zone":
        zones = [value] if value in registry.zone_municipalities else []
    else:
        zones = registry.province_zones(value)
    if not zones:
        raise Problem(
            422, "Unknown audience", f"No active {scope} {value} is known (yet).",
            errors=[{"field": "to", "reason": f"unknown {scope}"}],
        )
    return value, zones


def _read_attachments(
    mail: MailIn, *, mail_id: str
) -> list[tuple[AttachmentRef, bytes]]:
    """Decode and check every attachment by its content; 422 or 413 naming it."""
    found: list[tuple[AttachmentRef, bytes]] = []
    errors: list[dict[str, str]] = []
    for index, item in enumerate(mail.attachments):
        where = f"attachments.{index}"
        try:
            data = base64.b64decode(item.content, validate=True)
        except (binascii.Error, ValueError):
            errors.append({"field": f"{where}.content", "reason": "is not base64"})
            continue
        content_type, problems = mail_rules.attachment_problems(
            filename=item.filename, declared_type=item.content_type, data=data
        )
        errors += [{"field": f"{where}.{f}", "reason": r} for f, r in problems]
        if not problems and content_type:
            ref = AttachmentRef(
                # Never guessable from the mail id, so never reused by a retry.
                attachment_id=f"{mail_id}/{uuid.uuid4().hex}",
                filename=mail_rules.clean_filename(item.filename) or "attachment",
                content_type=content_type,
                size=len(data),
            )
            found.append((ref, data))
    if errors:
        raise Problem(
            422, "Invalid attachment", "Some attachments are refused.", errors=errors
        )
    total = sum(ref.size for ref, _ in found)
    if total > settings.mail_attachments_max_bytes:
        raise Problem(
            413, "Attachments too large",
            f"The attachments hold {total} bytes; at most "
            f"{settings.mail_attachments_max_bytes} are allowed.",
            errors=[{"field": "attachments", "reason": "too large together"}],
        )
    return found


@app.middleware("http")
async def _limit_mail_size(request: Request, call_next: Any) -> Any:
    """Refuses a mail whose declared size cannot hold allowed attachments, unread."""
    if request.url.path == "/v1/mail" and request.method == "POST":
        declared = request.headers.get("content-length", "")
        # base64 makes 3 bytes 4; the texts get a megabyte of their own.
        allowed = settings.mail_attachments_max_bytes * 4 // 3 + 1024 * 1024
        if declared.isdigit() and int(declared) > allowed:
            return problem_response(
                413, "Mail too large", f"A mail may hold at most {allowed} bytes.",
                errors=[{"field": "attachments", "reason": "too large together"}],
            )
    return await call_next(request)


def _caller(request: Request) -> Principal:
    """The caller, judged before the body is: no token is a 401, whatever it holds."""
    return principal_from(request, secret=settings.jwt_secret)


@app.post("/v1/mail", status_code=202)
async def send_mail(
    mail: MailIn, request: Request, principal: Principal = Depends(_caller)
) -> JSONResponse:
    """Accepts a mail to an audience by role, by e-mail only, and queues it."""
    value, zones = _mail_reach(principal, mail)
    now = datetime.now(UTC)
    expires_at = mail.expires_at or now + timedelta(
        seconds=settings.alert_default_validity_s
    )
    if expires_at <= now:
        raise Problem(
            422, "Invalid request", "The mail has already expired.",
            errors=[{"field": "expires_at", "reason": "lies in the past"}],
        )
    mail_id = mail.mail_id or f"mail-{uuid.uuid4().hex}"
    if await store.find_mail(runtime.db, mail_id=mail_id) is not None:
        raise Problem(409, "Mail exists", f"A mail with id {mail_id} was accepted.")
    attachments = _read_attachments(mail, mail_id=mail_id)
    audience = mail_rules.AUDIENCES[mail.audience]
    details = MailDetails(
        sender=principal.role,  # type: ignore[arg-type]
        bin_id=value if audience.scope == "bin" else None,
        province_nis=value if audience.scope == "province" else None,
        reply_to=mail_rules.relay_address(
            mail_id=mail_id, domain=settings.mail_relay_domain
        ),
        attachments=[ref for ref, _ in attachments],
    )
    target = (
        AlertTarget(kind="bins", values=[value])
        if audience.scope == "bin"
        else AlertTarget(kind="zone")
    )
    events = [
        AlertAccepted(
            alert_id=mail_id,
            zone=zone,
            action="alert",
            category=audience.category,  # type: ignore[arg-type]
            urgency=mail_rules.URGENCY,
            severity="Minor",
            texts={
                language: AlertText(headline=text.subject, body=text.body)
                for language, text in mail.texts.items()
            },
            channels=["email"],
            target=target,
            expires_at=expires_at,
            accepted_at=now,
            roles=list(audience.roles),  # type: ignore[arg-type]
            mail=details,
        )
        for zone in zones
    ]
    db = runtime.db
    await store.save_attachments(
        db,
        mail_id=mail_id,
        attachments=[
            (ref.attachment_id, ref.filename, ref.content_type, data)
            for ref, data in attachments
        ],
    )
    document = {
        "_id": mail_id,
        "audience": mail.audience,
        "to": value,
        "zones": zones,
        "sender_role": principal.role,
        "category": audience.category,
        "state": "active",
        "attachments": [ref.model_dump() for ref in details.attachments],
        "accepted_at": now,
    }
    try:
        await store.insert_mail_with_outbox(
            db,
            document=document,
            events=events,
            topic=settings.topic(AlertAccepted.TOPIC),
        )
    except store.AlertExists:
        raise Problem(
            409,
            "Mail exists",
            f"A mail or alert with id {mail_id} was accepted; "
            "mails and alerts need ids of their own.",
        ) from None
    log.info(
        "mail accepted",
        extra={"alert_id": mail_id, "zone": ",".join(zones), "status": mail.audience},
    )
    base = settings.public_base_url or str(request.base_url).rstrip("/")
    return JSONResponse(
        {"mail_id": mail_id, "status_url": f"{base}/v1/mail/{mail_id}"},
        status_code=202,
    )


def _require_mail_reach(principal: Principal, document: dict[str, Any]) -> None:
    """Raise 403 unless the caller sent to this audience or may see it."""
    if principal.role == "operator":
        return
    if principal.role == "coordinator" and document["audience"] == "bin":
        if principal.scope == document["to"]:
            return
    if principal.role == "zone" and principal.scope in document["zones"]:
        if document["audience"] != "province_coordinators":
            return
    raise Problem(403, "Forbidden", "Your token does not reach this mail.")


@app.get("/v1/mail/{mail_id}")
async def mail_status(mail_id: str, request: Request) -> dict[str, Any]:
    """Shows how far a mail went out: counts and times, never an address."""
    principal = principal_from(request, secret=settings.jwt_secret)
    document = await store.find_mail(runtime.db, mail_id=mail_id)
    if document is None:
        raise Problem(404, "Not found", f"No mail {mail_id}.")
    _require_mail_reach(principal, document)
    status = await store.find_status(runtime.db, alert_id=mail_id) or {}
    return {
        "mail_id": mail_id,
        "audience": document["audience"],
        "to": document["to"],
        "zones": document["zones"],
        "category": document["category"],
        "state": document["state"],
        "accepted_at": document["accepted_at"],
        "attachments": [
            {k: a[k] for k in ("filename", "content_type", "size")}
            for a in document.get("attachments", [])
        ],
        "targeted_members": status.get("targeted_members", 0),
        "by_channel": status.get("by_channel", {}),
        "first_handover_at": status.get("first_handover_at"),
        "last_handover_at": status.get("last_handover_at"),
        "seconds_to_last_handover": status.get("seconds_to_last_handover"),
        "failures": status.get("failures", []),
    }
