"""Unit tests of the reports web layer's pure parts: routing, scrubbing, documents."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from services.reports import domain, store
from services.reports.app import app, scrub_identity
from tests.builders import reports as build

HOUR = datetime(2026, 3, 14, 15, tzinfo=UTC)


def test_unzoned_places_keep_their_province_and_unknown_ones_are_refused() -> None:
    empty = domain.build_place_lookup([])
    bastogne = domain.route_location(domain.Location(postcode="6600"), lookup=empty)
    assert bastogne.zone is None and bastogne.province_nis == "80000"
    by_name = domain.route_location(
        domain.Location(municipality="Anvers"), lookup=empty
    )
    assert by_name.province_nis == "10000"
    with pytest.raises(domain.UnknownPlace) as postcode:
        domain.route_location(domain.Location(postcode="9999"), lookup=empty)
    assert postcode.value.reason == "postcode_unknown"
    with pytest.raises(domain.UnknownPlace) as name:
        domain.route_location(domain.Location(municipality="Atlantis"), lookup=empty)
    assert name.value.reason == "place_unknown"


def test_a_zone_claims_its_place_by_name() -> None:
    place = build.place_name()
    lookup = domain.build_place_lookup([build.zone_snapshot("zx", names=[place])])
    routed = domain.route_location(domain.Location(municipality=place), lookup=lookup)
    assert routed.zone == "zx" and routed.province_nis == "10000"


def test_the_report_document_holds_coarse_times_and_anonymous_events() -> None:
    submission = domain.ReportSubmission.model_validate(build.report("2000"))
    resolution = domain.Resolution("zx", "11002", "10000")
    document = store.report_document(
        submission=submission, resolution=resolution, photo_ids=[], hour=HOUR
    )
    assert len(document["_id"]) == 32
    assert [entry["topic"] for entry in document["outbox"]] == [
        "reports.submitted.v1",
        "reports.status.v1",
    ]
    assert all(entry["created_at"] == HOUR for entry in document["outbox"])
    submitted = json.loads(document["outbox"][0]["body"])
    assert set(submitted) == {
        "report_id",
        "zone",
        "province_nis",
        "municipality_nis",
        "category",
        "submitted_hour",
    }


async def test_the_app_never_sees_address_agent_or_cookies() -> None:
    seen: dict[str, object] = {}

    async def inner(scope: dict, receive: object, send: object) -> None:
        seen.update(client=scope["client"], headers=dict(scope["headers"]))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    transport = httpx.ASGITransport(
        app=scrub_identity(inner, max_body_bytes=10), client=("198.51.100.7", 5000)
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.get("/", headers={**build.reporter_headers(), "Cookie": "a=b"})
        too_big = await client.post("/", content=b"x" * 11)
    assert seen["client"] is None
    assert (
        set(seen["headers"]) & {b"user-agent", b"x-forwarded-for", b"cookie"} == set()
    )
    assert too_big.status_code == 413


def test_the_openapi_documents_the_reporter_and_zone_routes() -> None:
    paths = app.openapi()["paths"]
    for path in (
        "/v1/reports",
        "/v1/follow-up",
        "/v1/challenge",
        "/v1/zones/{zone}/reports/{report_id}/photos/{photo_id}",
    ):
        assert path in paths
    body = app.openapi()["components"]["schemas"]["PhotoIn"]
    assert "base64" in body["description"]
