"""HTTP API of the messaging service: police zones publish alerts and follow them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from services.messaging import cap, domain, store
from services.messaging.consumers import RegistryView, replay_and_follow
from services.messaging.settings import get_settings
from shared.auth import Principal, principal_from, require_role, require_zone
from shared.events import (
    AlertAccepted,
    AlertCategory,
    AlertTarget,
    AlertText,
    BinSnapshot,
    Channel,
    Language,
    ZoneSnapshot,
)
from shared.http import Problem, create_app
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
                409, "Alert exists", f"An alert with id {event.alert_id} was accepted."
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
