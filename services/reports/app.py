"""HTTP API of the reports service: the anonymous form, its JSON twin, zone triage.

Anonymity starts at the door: `asgi` wraps the app so that no handler, middleware
or instrumentation ever sees the client's address, user agent, forwarding headers
or cookies. No log line is written per report (its time would date the report).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from argon2 import PasswordHasher
from fastapi import Body, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile

from services.reports import domain, store, telemetry
from services.reports.domain import (
    Admission,
    ChallengeRejected,
    FollowUpAnswer,
    Outcome,
    ReceiptCode,
    ReportSubmission,
    Status,
)
from services.reports.i18n import pick_language, t, template_environment
from services.reports.photos import CleanPhoto, PhotoRejected, clean_photos
from services.reports.settings import get_settings
from shared.auth import Principal, principal_from, require_role, require_zone
from shared.envelope import utcnow
from shared.http import Problem, create_app
from shared.runtime import Runtime

settings = get_settings()
runtime = Runtime(settings)
pages = template_environment()
hasher = PasswordHasher(
    time_cost=settings.argon2_time_cost,
    memory_cost=settings.argon2_memory_kib,
    parallelism=settings.argon2_parallelism,
)
SECRET = settings.challenge_secret.encode()
# A spent challenge is remembered until it could no longer be accepted anyway.
SPENT_FOR = domain.CHALLENGE_MAX_AGE + timedelta(minutes=1)
MEGABYTE = 1024 * 1024
IDENTIFYING_HEADERS = frozenset(
    {
        b"user-agent",
        b"cookie",
        b"x-forwarded-for",
        b"x-real-ip",
        b"forwarded",
        b"true-client-ip",
        b"cf-connecting-ip",
        b"x-client-ip",
        b"via",
        b"referer",
    }
)


# --------------------------------------------------------------------------------
# State of one API process


class Limits:
    """The global token buckets of this process (none keyed by client)."""

    def __init__(self) -> None:
        now = utcnow()
        self.solved = domain.TokenBucket(
            capacity=settings.submit_solved_capacity,
            rate_per_second=settings.submit_solved_per_s,
            now=now,
        )
        self.waited = domain.TokenBucket(
            capacity=settings.submit_waited_capacity,
            rate_per_second=settings.submit_waited_per_s,
            now=now,
        )
        self.followup = domain.TokenBucket(
            capacity=settings.followup_capacity,
            rate_per_second=settings.followup_per_s,
            now=now,
        )
        self.wrong_code = domain.TokenBucket(
            capacity=settings.wrong_code_capacity,
            rate_per_second=settings.wrong_code_per_s,
            now=now,
        )


# LIMITATION: the buckets live in each API process, because a shared counter would
# need a store with atomic increments and expiry that FerretDB does not offer; with
# N replicas the global limits are N times the configured ones.
limits = Limits()


@dataclass
class Places:
    """The place lookup built from the zones in the database, refreshed now and then."""

    lookup: domain.PlaceLookup = domain.PlaceLookup()
    loaded_at: float = -math.inf

    async def current(self) -> domain.PlaceLookup:
        """Returns the lookup, reloading it when it is older than the refresh period."""
        if time.monotonic() - self.loaded_at > settings.zones_refresh_s:
            zones = await store.load_zones_db(runtime.db)
            self.lookup = domain.build_place_lookup(zones)
            self.loaded_at = time.monotonic()
        return self.lookup


places = Places()


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    """Opens the database client for the app's lifetime."""
    await runtime.start()
    await store.ensure_indexes_db(runtime.db)
    yield
    await runtime.stop()


app = create_app(
    title="BIN reports",
    description="The anonymous tip line for suspected drug production. Citizens "
    "report without an account; a receipt code (shown once, stored as an Argon2 "
    "hash) lets them follow up. Submissions need a proof of work from "
    "`GET /v1/challenge`. Police zones triage their reports with a zone token.",
    checks=[runtime.kafka_problem, runtime.database_problem],
    lifespan=lifespan,
)


# --------------------------------------------------------------------------------
# The door: identity scrubbing and body limits around the whole app

ASGIApp = Callable[..., Awaitable[None]]


def scrub_identity(inner: ASGIApp, *, max_body_bytes: int) -> ASGIApp:
    """Wraps an ASGI app so that nothing inside learns who is calling."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = {
                **scope,
                "client": None,
                "headers": [
                    (name, value)
                    for name, value in scope.get("headers", [])
                    if name.lower() not in IDENTIFYING_HEADERS
                ],
            }
            refusal = _body_refusal(scope, max_body_bytes)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await inner(scope, receive, send)

    return wrapped


def _body_refusal(scope: dict[str, Any], max_body_bytes: int) -> Response | None:
    if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
        return None
    headers = dict(scope["headers"])
    length = headers.get(b"content-length")
    if length is None:
        if headers.get(b"transfer-encoding"):
            return _problem(411, "Length required", "Send a Content-Length header.")
        return None
    if not length.isdigit() or int(length) > max_body_bytes:
        return _problem(
            413,
            "Request too large",
            f"A request may carry at most {max_body_bytes // MEGABYTE} MB.",
        )
    return None


def _problem(status: int, title: str, detail: str) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
    )


asgi = scrub_identity(app, max_body_bytes=settings.max_request_bytes)


# --------------------------------------------------------------------------------
# What the form and the JSON API share


class Refused(Exception):
    """A submission or follow-up refused; `key` is the i18n key of the message."""

    def __init__(
        self,
        status: int,
        key: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(key)
        self.status, self.key, self.field = status, key, field
        self.headers = headers or {}

    def problem(self) -> Problem:
        """The problem+json answer for API callers, in English."""
        detail = t("en", self.key, **_limits_values())
        errors = [{"field": self.field, "reason": detail}] if self.field else None
        title = {
            400: "Proof of work refused",
            404: "Receipt code not recognised",
            409: "Conflict",
            413: "Too large",
            422: "Invalid report",
            429: "Too many requests",
        }.get(self.status, "Refused")
        return Problem(self.status, title, detail, errors=errors, headers=self.headers)


def _limits_values() -> dict[str, int]:
    return {
        "count": settings.max_photos,
        "megabytes": settings.max_photo_bytes // MEGABYTE,
    }


def new_challenge() -> str:
    """A fresh proof-of-work challenge at the configured difficulty."""
    return domain.issue_challenge(
        secret=SECRET, now=utcnow(), difficulty=settings.pow_difficulty
    )


def _admit(challenge: str, nonce: str | None, now: datetime) -> Admission:
    try:
        return domain.admit_submission(
            secret=SECRET,
            challenge=challenge,
            nonce=nonce,
            now=now,
            min_age_without_work=timedelta(seconds=settings.nojs_min_age_s),
        )
    except ChallengeRejected as error:
        telemetry.record_refused(reason=f"challenge_{error.reason}")
        raise Refused(400, "error.challenge", field="challenge") from None


def _take(bucket: domain.TokenBucket, now: datetime, reason: str) -> None:
    if not bucket.take(now=now):
        telemetry.record_refused(reason=reason)
        wait = bucket.retry_after(now=now)
        raise Refused(
            429,
            "error.rate_limited",
            headers={"Retry-After": str(max(1, int(wait.total_seconds())))},
        )


async def _spend(challenge: str, now: datetime) -> None:
    expires = domain.coarsen_to_hour(now + SPENT_FOR) + timedelta(hours=1)
    if not await store.spend_challenge_db(
        runtime.db, challenge=challenge, expires_hour=expires
    ):
        telemetry.record_refused(reason="challenge_spent")
        raise Refused(400, "error.challenge", field="challenge")


async def _timed(func: Callable[..., Any], *args: Any) -> Any:
    started = time.perf_counter()
    try:
        return await asyncio.to_thread(func, *args)
    finally:
        telemetry.record_receipt_check(seconds=time.perf_counter() - started)


async def accept_report(
    *,
    submission: ReportSubmission,
    photos: list[bytes],
    challenge: str,
    nonce: str | None,
) -> ReceiptCode:
    """Checks work, limits, photos and place, stores the report; its receipt code."""
    now = utcnow()
    admission = _admit(challenge, nonce, now)
    bucket = limits.solved if admission is Admission.SOLVED else limits.waited
    _take(bucket, now, f"rate_{admission.value}")
    try:
        cleaned: list[CleanPhoto] = await asyncio.to_thread(
            clean_photos,
            photos,
            max_photos=settings.max_photos,
            max_bytes=settings.max_photo_bytes,
        )
    except PhotoRejected as error:
        telemetry.record_refused(reason=error.reason)
        status = 413 if error.reason == "photo_too_large" else 422
        raise Refused(status, f"error.{error.reason}", field="photos") from None
    if any(len(photo.data) > 2 * settings.max_photo_bytes for photo in cleaned):
        # A document must stay far below the database's 16 MB limit.
        raise Refused(413, "error.photo_too_large", field="photos")
    try:
        resolution = domain.route_location(
            submission.location, lookup=await places.current()
        )
    except domain.UnknownPlace as error:
        telemetry.record_refused(reason=error.reason)
        raise Refused(422, f"error.{error.reason}", field="place") from None
    await _spend(challenge, now)
    return await _store_report(
        submission=submission, resolution=resolution, photos=cleaned, now=now
    )


async def _store_report(
    *,
    submission: ReportSubmission,
    resolution: domain.Resolution,
    photos: list[CleanPhoto],
    now: datetime,
) -> ReceiptCode:
    hour = domain.coarsen_to_hour(now)
    document = store.report_document(
        submission=submission, resolution=resolution, photo_ids=[], hour=hour
    )
    document["photo_ids"] = await store.insert_photos_db(
        runtime.db, report_id=document["_id"], photos=photos
    )
    try:
        # A new locator colliding with a stored one is rare (2**40 space): draw again.
        for _attempt in range(5):
            code = domain.new_receipt_code()
            receipt_hash = await _timed(
                lambda c=code: domain.hash_receipt_code(c, hasher=hasher)
            )
            if await store.insert_report_db(
                runtime.db,
                document=document,
                locator=code.locator,
                receipt_hash=receipt_hash,
            ):
                telemetry.record_stored(
                    category=submission.category.value,
                    routed=resolution.zone is not None,
                )
                return code
        raise RuntimeError("no free receipt locator after 5 draws")
    except BaseException:
        # LIMITATION: photos written before a failed report insert are removed
        # here, but a crash in between leaves them orphaned, because FerretDB has
        # no transactions; they hold no reference a reporter could be found by.
        await store.delete_photos_db(runtime.db, report_id=document["_id"])
        raise


async def open_report(
    *, receipt_code: str, challenge: str, nonce: str | None
) -> dict[str, Any]:
    """Checks work, limits and the receipt code; the report it opens."""
    now = utcnow()
    _admit(challenge, nonce, now)
    if limits.wrong_code.retry_after(now=now) > timedelta(0):
        # Too many wrong codes lately: nobody gets an Argon2 check for a while.
        telemetry.record_refused(reason="rate_wrong_codes")
        raise Refused(429, "error.rate_limited", headers={"Retry-After": "60"})
    _take(limits.followup, now, "rate_followup")
    await _spend(challenge, now)
    try:
        code = domain.parse_receipt_code(receipt_code)
    except domain.InvalidReceiptCode:
        limits.wrong_code.take(now=now)
        telemetry.record_refused(reason="receipt_malformed")
        raise Refused(422, "error.receipt_invalid", field="receipt_code") from None
    report = await store.find_report_by_locator_db(runtime.db, locator=code.locator)
    stored_hash = report["receipt_hash"] if report else None
    valid = await _timed(
        lambda: domain.verify_receipt_code(code, stored_hash, hasher=hasher)
    )
    if not valid or report is None:
        limits.wrong_code.take(now=now)
        telemetry.record_refused(reason="receipt_wrong")
        raise Refused(404, "error.receipt_invalid", field="receipt_code")
    return report


def reporter_view(report: dict[str, Any]) -> dict[str, Any]:
    """What the reporter sees of their report: no zone, no triage notes."""
    return {
        "category": report["category"],
        "status": report["status"],
        "outcome": report.get("outcome"),
        "questions": [
            {"id": q["id"], "text": q["text"], "answer": q.get("answer")}
            for q in report.get("questions", [])
        ],
    }


async def save_answers(report: dict[str, Any], answers: dict[str, str]) -> dict:
    """Stores answers to open questions and returns the report as it is now."""
    if not await store.answer_questions_db(
        runtime.db,
        report=report,
        answers=answers,
        hour=domain.coarsen_to_hour(utcnow()),
    ):
        raise Refused(409, "error.invalid", field="answers")
    fresh = await store.find_report_by_locator_db(runtime.db, locator=report["locator"])
    return fresh or report


# --------------------------------------------------------------------------------
# HTML pages


def render(
    template: str, *, lang: str, status: int = 200, **context: Any
) -> HTMLResponse:
    """A page with a per-response CSP nonce for its inline script and style."""
    nonce = secrets.token_urlsafe(16)
    html = pages.get_template(template).render(lang=lang, csp_nonce=nonce, **context)
    return HTMLResponse(
        html,
        status_code=status,
        headers={
            "Content-Security-Policy": (
                f"default-src 'none'; script-src 'nonce-{nonce}'; "
                f"style-src 'nonce-{nonce}'; img-src 'self'; form-action 'self'; "
                "base-uri 'none'; frame-ancestors 'none'"
            ),
            # Every page holds a single-use challenge, a receipt code or a report.
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _lang(request: Request, form_lang: str | None = None) -> str:
    return pick_language(
        request.headers.get("accept-language"),
        request.query_params.get("lang") or form_lang,
    )


def _form_page(
    lang: str,
    *,
    status: int = 200,
    challenge: str | None = None,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    form_error: str | None = None,
) -> HTMLResponse:
    return render(
        "form.html",
        lang=lang,
        status=status,
        challenge=challenge or new_challenge(),
        values=values or {},
        errors=errors or {},
        form_error=form_error,
        max_photos=settings.max_photos,
        max_megabytes=settings.max_photo_bytes // MEGABYTE,
        nojs_seconds=math.ceil(settings.nojs_min_age_s),
    )


@app.get("/", response_class=HTMLResponse, tags=["form"])
async def form_page(request: Request) -> HTMLResponse:
    """Shows the report form in the visitor's language."""
    return _form_page(_lang(request))


async def _read_uploads(files: list[Any]) -> list[bytes]:
    uploads = [item for item in files if isinstance(item, UploadFile)]
    if len([u for u in uploads if u.filename]) > settings.max_photos:
        raise Refused(422, "error.photo_too_many", field="photos")
    data = []
    for upload in uploads:
        content = await upload.read(settings.max_photo_bytes + 1)
        if len(content) > settings.max_photo_bytes:
            raise Refused(413, "error.photo_too_large", field="photos")
        data.append(content)
    return data


def _challenge_still_good(challenge: str) -> bool:
    try:
        domain.read_challenge(secret=SECRET, challenge=challenge, now=utcnow())
    except ChallengeRejected:
        return False
    return True


@app.post("/", response_class=HTMLResponse, tags=["form"])
async def submit_form(request: Request) -> HTMLResponse:
    """Takes the form (multipart, works without JavaScript) and shows the receipt."""
    form = await request.form(max_files=settings.max_photos + 2, max_fields=40)
    lang = _lang(request, str(form.get("lang") or ""))
    values = {
        key: str(form.get(key) or "")
        for key in ("category", "place", "street", "place_description", "text")
    }
    values["signals"] = [str(v) for v in form.getlist("signals")]
    challenge = str(form.get("challenge") or "")
    nonce = str(form.get("nonce") or "") or None
    keep = challenge if _challenge_still_good(challenge) else None
    try:
        parsed = domain.ReportForm.model_validate(
            {k: v for k, v in values.items() if v not in ("", [])}
        )
        submission = parsed.to_submission()
    except ValidationError as error:
        telemetry.record_refused(reason="invalid_form")
        return _form_page(
            lang,
            status=422,
            challenge=keep,
            values=values,
            errors=domain.error_keys(error.errors()),
        )
    try:
        photos = await _read_uploads(form.getlist("photos"))
        code = await accept_report(
            submission=submission, photos=photos, challenge=challenge, nonce=nonce
        )
    except Refused as refused:
        on_field = refused.field not in (None, "challenge")
        return _form_page(
            lang,
            status=refused.status,
            challenge=keep if refused.field != "challenge" else None,
            values=values,
            errors={str(refused.field): refused.key} if on_field else None,
            form_error=None if on_field else refused.key,
        )
    finally:
        await form.close()
    return render("receipt.html", lang=lang, status=201, receipt_code=code.display)


@app.get("/followup", response_class=HTMLResponse, tags=["form"])
async def followup_page(request: Request) -> HTMLResponse:
    """Shows the form that asks for a receipt code."""
    return render("followup.html", lang=_lang(request), challenge=new_challenge())


def _followup_report_page(
    lang: str, report: dict[str, Any], receipt_code: str, notice: str | None = None
) -> HTMLResponse:
    return render(
        "followup.html",
        lang=lang,
        challenge=new_challenge(),
        report=reporter_view(report),
        receipt_code=receipt_code,
        notice=notice,
    )


@app.post("/followup", response_class=HTMLResponse, tags=["form"])
async def followup_open(request: Request) -> HTMLResponse:
    """Shows status and questions of the report a receipt code opens."""
    form = await request.form(max_files=0, max_fields=10)
    lang = _lang(request)
    receipt_code = str(form.get("receipt_code") or "")[:64]
    try:
        report = await open_report(
            receipt_code=receipt_code,
            challenge=str(form.get("challenge") or ""),
            nonce=str(form.get("nonce") or "") or None,
        )
    except Refused as refused:
        return render(
            "followup.html",
            lang=lang,
            status=refused.status,
            challenge=new_challenge(),
            error=refused.key,
        )
    return _followup_report_page(lang, report, receipt_code)


@app.post("/followup/answer", response_class=HTMLResponse, tags=["form"])
async def followup_answer(request: Request) -> HTMLResponse:
    """Stores the reporter's answer to one question and shows the report again."""
    form = await request.form(max_files=0, max_fields=10)
    lang = _lang(request)
    receipt_code = str(form.get("receipt_code") or "")[:64]
    try:
        answer = FollowUpAnswer(
            question_id=str(form.get("question_id") or ""),
            text=str(form.get("text") or ""),
        )
    except ValidationError:
        answer = None
    try:
        report = await open_report(
            receipt_code=receipt_code,
            challenge=str(form.get("challenge") or ""),
            nonce=str(form.get("nonce") or "") or None,
        )
        if answer is None:
            raise Refused(422, "error.required")
        report = await save_answers(report, {answer.question_id: answer.text})
    except Refused as refused:
        return render(
            "followup.html",
            lang=lang,
            status=refused.status,
            challenge=new_challenge(),
            error=refused.key,
        )
    return _followup_report_page(lang, report, receipt_code, "followup.answer_saved")


# --------------------------------------------------------------------------------
# JSON API for reporters


class ChallengeOut(BaseModel):
    """A proof-of-work challenge: find `nonce` so that sha256(challenge + nonce)
    starts with `difficulty` zero bits; send both with the request."""

    challenge: str
    difficulty: int
    expires_in_s: int


@app.get("/v1/challenge", response_model=ChallengeOut, tags=["reporters"])
async def get_challenge() -> JSONResponse:
    """Issues a single-use proof-of-work challenge."""
    body = ChallengeOut(
        challenge=new_challenge(),
        difficulty=settings.pow_difficulty,
        expires_in_s=int(domain.CHALLENGE_MAX_AGE.total_seconds()),
    )
    return JSONResponse(body.model_dump(), headers={"Cache-Control": "no-store"})


class ProofOfWork(BaseModel):
    """A challenge from GET /v1/challenge and the nonce that solves it."""

    model_config = ConfigDict(extra="forbid")
    challenge: str = Field(max_length=200)
    nonce: str = Field(default="", max_length=64)


class PhotoIn(BaseModel):
    """One photo, JPEG or PNG, as standard base64 (at most the configured size)."""

    model_config = ConfigDict(extra="forbid")
    data: str = Field(max_length=math.ceil(settings.max_photo_bytes / 3) * 4 + 4)


class ReportIn(ProofOfWork):
    """A report with its proof of work; photos travel base64-encoded in the JSON."""

    report: ReportSubmission
    photos: list[PhotoIn] = Field(default_factory=list)


class ReceiptOut(BaseModel):
    """The receipt code, shown this once: only its hash is stored."""

    receipt_code: str
    status: Status


def _decode_photos(photos: list[PhotoIn]) -> list[bytes]:
    if len(photos) > settings.max_photos:
        raise Refused(422, "error.photo_too_many", field="photos")
    try:
        return [base64.b64decode(photo.data, validate=True) for photo in photos]
    except (binascii.Error, ValueError):
        raise Refused(422, "error.photo_invalid", field="photos") from None


@app.post(
    "/v1/reports",
    status_code=201,
    response_model=ReceiptOut,
    tags=["reporters"],
    responses={400: {}, 413: {}, 422: {}, 429: {}},
)
async def submit_report(body: ReportIn) -> JSONResponse:
    """Stores an anonymous report and returns its receipt code once."""
    try:
        code = await accept_report(
            submission=body.report,
            photos=_decode_photos(body.photos),
            challenge=body.challenge,
            nonce=body.nonce or None,
        )
    except Refused as refused:
        raise refused.problem() from None
    out = ReceiptOut(receipt_code=code.display, status=Status.RECEIVED)
    return JSONResponse(
        out.model_dump(mode="json"),
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )


class FollowUpIn(ProofOfWork):
    """A receipt code (in the body, never in a URL) and optional answers."""

    receipt_code: str = Field(max_length=64)
    answers: list[FollowUpAnswer] = Field(default_factory=list, max_length=20)


class QuestionOut(BaseModel):
    """A question of the police and the reporter's answer, if given."""

    id: str
    text: str
    answer: str | None


class FollowUpOut(BaseModel):
    """What the reporter may see of their report."""

    category: str
    status: Status
    outcome: Outcome | None
    questions: list[QuestionOut]


@app.post(
    "/v1/follow-up",
    response_model=FollowUpOut,
    tags=["reporters"],
    responses={400: {}, 404: {}, 409: {}, 422: {}, 429: {}},
)
async def follow_up(body: FollowUpIn) -> JSONResponse:
    """Shows status and questions for a receipt code, storing any answers sent."""
    try:
        report = await open_report(
            receipt_code=body.receipt_code,
            challenge=body.challenge,
            nonce=body.nonce or None,
        )
        if body.answers:
            report = await save_answers(
                report, {answer.question_id: answer.text for answer in body.answers}
            )
    except Refused as refused:
        raise refused.problem() from None
    return JSONResponse(reporter_view(report), headers={"Cache-Control": "no-store"})


# --------------------------------------------------------------------------------
# Zone staff and operators


def _caller(request: Request) -> Principal:
    return principal_from(request, secret=settings.jwt_secret)


def staff_summary(report: dict[str, Any]) -> dict[str, Any]:
    """A report as listed for triage."""
    questions = report.get("questions", [])
    return {
        "id": report["_id"],
        "category": report["category"],
        "status": report["status"],
        "outcome": report.get("outcome"),
        "zone": report.get("zone"),
        "municipality_nis": report.get("municipality_nis"),
        "province_nis": report.get("province_nis"),
        "signals": report.get("signals", []),
        "submitted_hour": report["submitted_hour"].isoformat(),
        "updated_hour": report["updated_hour"].isoformat(),
        "photo_count": len(report.get("photo_ids", [])),
        "unanswered_questions": sum(1 for q in questions if q.get("answer") is None),
    }


def staff_detail(report: dict[str, Any], *, base: str) -> dict[str, Any]:
    """A report in full for the zone that handles it."""
    return {
        **staff_summary(report),
        "location": report["location"],
        "text": report["text"],
        "questions": [
            {
                "id": q["id"],
                "text": q["text"],
                "asked_hour": q["asked_hour"].isoformat(),
                "answer": q.get("answer"),
                "answered_hour": q["answered_hour"].isoformat()
                if q.get("answered_hour")
                else None,
            }
            for q in report.get("questions", [])
        ],
        "photos": [
            {"id": photo_id, "url": f"{base}/photos/{photo_id}"}
            for photo_id in report.get("photo_ids", [])
        ],
    }


async def _zone_report(zone: str | None, report_id: str) -> dict[str, Any]:
    report = await store.get_report_db(runtime.db, report_id=report_id, zone=zone)
    if report is None:
        raise Problem(404, "Not found", "No such report in this queue.")
    return report


class StatusIn(BaseModel):
    """A triage change: the new status, and the outcome when closing."""

    model_config = ConfigDict(extra="forbid")
    status: Status
    outcome: Outcome | None = None


class QuestionIn(BaseModel):
    """A question for the reporter, shown on their follow-up page."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=domain.MAX_ANSWER_CHARS)


@app.get("/v1/zones/{zone}/reports", tags=["zones"])
async def list_zone_reports(
    zone: str, request: Request, status: Status | None = None
) -> dict[str, Any]:
    """Lists the reports of a zone, newest first."""
    require_zone(_caller(request), zone)
    found = await store.list_reports_db(
        runtime.db, zone=zone, status=status.value if status else None
    )
    return {"reports": [staff_summary(report) for report in found]}


@app.get("/v1/zones/{zone}/reports/{report_id}", tags=["zones"])
async def read_zone_report(zone: str, report_id: str, request: Request) -> dict:
    """Reads one report of a zone in full."""
    require_zone(_caller(request), zone)
    report = await _zone_report(zone, report_id)
    return staff_detail(report, base=f"/v1/zones/{zone}/reports/{report_id}")


async def _change_status(report: dict[str, Any], body: StatusIn) -> dict[str, Any]:
    try:
        change = domain.transition(report["status"], body.status, body.outcome)
    except domain.TransitionError as error:
        raise Problem(409, "Status change refused", str(error)) from None
    if not await store.change_status_db(
        runtime.db, report=report, change=change, hour=domain.coarsen_to_hour(utcnow())
    ):
        raise Problem(409, "Conflict", "The report changed meanwhile; read it again.")
    return await _zone_report(report.get("zone"), report["_id"])


@app.patch("/v1/zones/{zone}/reports/{report_id}", tags=["zones"])
async def update_zone_report(
    zone: str, report_id: str, body: StatusIn, request: Request
) -> dict[str, Any]:
    """Moves a report along received → under review → forwarded → closed."""
    require_zone(_caller(request), zone)
    report = await _change_status(await _zone_report(zone, report_id), body)
    return staff_detail(report, base=f"/v1/zones/{zone}/reports/{report_id}")


@app.post(
    "/v1/zones/{zone}/reports/{report_id}/questions", status_code=201, tags=["zones"]
)
async def ask_question(
    zone: str, report_id: str, body: QuestionIn, request: Request
) -> dict[str, str]:
    """Writes a question that the reporter sees with their receipt code."""
    require_zone(_caller(request), zone)
    await _zone_report(zone, report_id)
    question_id = await store.add_question_db(
        runtime.db,
        report_id=report_id,
        zone=zone,
        text=body.text.strip(),
        hour=domain.coarsen_to_hour(utcnow()),
    )
    if question_id is None:
        raise Problem(409, "Report closed", "A closed report takes no questions.")
    return {"id": question_id}


@app.get("/v1/zones/{zone}/reports/{report_id}/photos/{photo_id}", tags=["zones"])
async def download_photo(
    zone: str, report_id: str, photo_id: str, request: Request
) -> Response:
    """Returns a photo of a report as stored: re-encoded, without metadata."""
    require_zone(_caller(request), zone)
    await _zone_report(zone, report_id)
    photo = await store.get_photo_db(runtime.db, report_id=report_id, photo_id=photo_id)
    if photo is None:
        raise Problem(404, "Not found", "No such photo.")
    return Response(
        bytes(photo["data"]),
        media_type=photo["content_type"],
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


@app.get("/v1/triage/reports", tags=["operators"])
async def list_triage(
    request: Request, province: str | None = None, status: Status | None = None
) -> dict[str, Any]:
    """Lists reports no zone claimed, optionally for one province (NIS code)."""
    require_role(_caller(request), "operator")
    found = await store.list_reports_db(
        runtime.db,
        zone=None,
        province=province,
        status=status.value if status else None,
    )
    return {"reports": [staff_summary(report) for report in found]}


@app.get("/v1/triage/reports/{report_id}", tags=["operators"])
async def read_triage(report_id: str, request: Request) -> dict[str, Any]:
    """Reads one report of the triage queue in full."""
    require_role(_caller(request), "operator")
    report = await _zone_report(None, report_id)
    return staff_detail(report, base=f"/v1/triage/reports/{report_id}")


class AssignIn(BaseModel):
    """The zone a triaged report belongs to."""

    model_config = ConfigDict(extra="forbid")
    zone: str = Field(min_length=1, max_length=64)


@app.put("/v1/triage/reports/{report_id}/zone", tags=["operators"])
async def assign_triage(
    report_id: str, request: Request, body: Annotated[AssignIn, Body()]
) -> dict[str, Any]:
    """Hands a report of the triage queue to a zone."""
    require_role(_caller(request), "operator")
    report = await _zone_report(None, report_id)
    if not await store.assign_zone_db(
        runtime.db, report=report, zone=body.zone, hour=domain.coarsen_to_hour(utcnow())
    ):
        raise Problem(409, "Conflict", "The report left the triage queue meanwhile.")
    return staff_summary(await _zone_report(body.zone, report_id))


@app.get("/v1/triage/reports/{report_id}/photos/{photo_id}", tags=["operators"])
async def download_triage_photo(
    report_id: str, photo_id: str, request: Request
) -> Response:
    """Returns a photo of a triage report, without metadata."""
    require_role(_caller(request), "operator")
    await _zone_report(None, report_id)
    photo = await store.get_photo_db(runtime.db, report_id=report_id, photo_id=photo_id)
    if photo is None:
        raise Problem(404, "Not found", "No such photo.")
    return Response(bytes(photo["data"]), media_type=photo["content_type"])
