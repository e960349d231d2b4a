"""The tip line on the real stack: routing, follow-up, anonymity, bad input, purge.

One API and one worker process run for the whole module, on a database and a zones
topic of their own, so that nothing another test publishes changes the routing.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from PIL import Image

from services.reports import domain
from shared.auth import issue_token
from shared.mongo import new_client
from shared.settings import ServiceSettings
from tests.builders import reports as build
from tests.conftest import ROOT, ServiceProcess, free_port, unique, wait_http

RETENTION_S = 4.0


class Stack:
    """The processes under test and what they were started with."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


@pytest.fixture(scope="module")
async def stack(platform: ServiceSettings) -> Iterator[Stack]:
    zone, other_zone = unique("zt"), unique("zo")
    names, other_names = [build.place_name()], [build.place_name()]
    topic = unique("test-reports-zones")
    await build.publish_zones(
        platform, topic=topic, zones={zone: names, other_zone: other_names}
    )
    port, database = free_port(), unique("test_reports")
    env = build.service_env(
        port=port,
        database=database,
        zones_topic=topic,
        RETENTION_DAYS=str(RETENTION_S / 86400),
    )
    logs = ROOT / ".run" / "logs" / "tests"
    api = ServiceProcess(
        module="services.reports", role="api", env=env, log=logs / f"{database}-api.log"
    ).start()
    worker = ServiceProcess(
        module="services.reports",
        role="relay",
        env=env,
        log=logs / f"{database}-relay.log",
    ).start()
    client = new_client(platform)
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", timeout_s=60)
        db = client[database]
        for _ in range(150):
            if await db.zones.count_documents({}) == 2:
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError("the worker did not learn the test zones")
        secret = ServiceSettings().jwt_secret
        yield Stack(
            url=f"http://127.0.0.1:{port}",
            db=db,
            api=api,
            worker=worker,
            zones_topic=topic,
            zone=zone,
            other_zone=other_zone,
            place=names[0],
            other_place=other_names[0],
            zone_token=issue_token(secret=secret, role="zone", scope=zone),
            other_token=issue_token(secret=secret, role="zone", scope=other_zone),
            operator_token=issue_token(secret=secret, role="operator"),
        )
    finally:
        api.stop()
        worker.stop()
        await client.drop_database(database)
        await client.close()


@pytest.fixture
def http(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=20) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def zone_reports(http: httpx.Client, stack: Stack) -> list[dict[str, Any]]:
    answer = http.get(
        f"/v1/zones/{stack.zone}/reports", headers=bearer(stack.zone_token)
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["reports"]


async def dump_database(db: Any) -> list[dict[str, Any]]:
    documents = []
    for name in await db.list_collection_names():
        documents += await db[name].find({}).to_list(None)
    return documents


def datetimes(value: Any) -> Iterator[datetime]:
    if isinstance(value, datetime):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from datetimes(item)
    elif isinstance(value, list):
        for item in value:
            yield from datetimes(item)


async def read_topic(
    settings: ServiceSettings, topic: str, wanted: set[str], timeout_s: float = 30
) -> list[tuple[Any, ...]]:
    """Records of a topic whose body names one of the wanted report ids."""
    consumer = AIOKafkaConsumer(
        topic,
        **settings.kafka_client_options(),
        group_id=unique("test-reports-read"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[tuple[Any, ...]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    if record.value is None:
                        continue
                    body = json.loads(record.value)
                    if body.get("report_id") in wanted:
                        found.append(
                            (body, list(record.headers), record.key, record.timestamp)
                        )
            if {body["report_id"] for body, *_ in found} >= wanted:
                break
    finally:
        await consumer.stop()
    return found


async def test_form_and_api_submissions_leave_no_trace_of_the_reporter(
    stack: Stack, http: httpx.Client, platform: ServiceSettings
) -> None:
    headers = build.reporter_headers()
    plain = build.submit(http, stack.place, photos=[build.jpeg_with_metadata()])
    assert plain.status_code == 201, plain.text
    answer = http.post(
        "/v1/reports",
        headers=headers,
        json={**build.solved(http), "report": build.report(stack.place)},
    )
    assert answer.status_code == 201, answer.text
    assert answer.headers["cache-control"] == "no-store"
    assert "set-cookie" not in answer.headers
    # The form, in Dutch, without JavaScript: no nonce, sent after the minimum wait.
    page = http.get("/?lang=nl", headers=headers)
    assert "set-cookie" not in page.headers
    challenge = page.text.split('name="challenge" value="')[1].split('"')[0]
    time.sleep(1.2)
    sent = http.post(
        "/?lang=nl",
        headers=headers,
        data={
            "lang": "nl",
            "category": "laboratory",
            "place": stack.place,
            "signals": ["smell", "heat"],
            "text": "Chemische geur",
            "challenge": challenge,
            "nonce": "",
        },
        files={"photos": ("a.png", build.png_bytes(), "image/png")},
    )
    assert sent.status_code == 201, sent.text
    assert "Uw ontvangstcode" in sent.text
    assert sent.headers["cache-control"] == "no-store"
    assert "nonce-" in sent.headers["content-security-policy"]

    ids = {report["id"] for report in zone_reports(http, stack)}
    assert len(ids) >= 3
    everything = await dump_database(stack.db)
    dumped = repr(everything)
    for trace in (build.DISTINCTIVE_IP, "127.0.0.1", build.DISTINCTIVE_UA, "Tipster"):
        assert trace not in dumped, f"{trace} is stored"
    for moment in datetimes(everything):
        assert (moment.minute, moment.second, moment.microsecond) == (0, 0, 0)

    records = await read_topic(platform, "reports.submitted.v1", ids)
    records += await read_topic(platform, "reports.status.v1", ids)
    assert {body["report_id"] for body, *_ in records} == ids
    raw = repr(records)
    for trace in (build.DISTINCTIVE_IP, "127.0.0.1", build.DISTINCTIVE_UA, "Tipster"):
        assert trace not in raw
    submitted = [body for body, *_ in records if "submitted_hour" in body]
    assert all(body["zone"] == stack.zone for body in submitted)
    assert all(body["submitted_hour"].endswith(":00:00Z") for body in submitted)
    assert not any("text" in body or "location" in body for body, *_ in records)
    # Neither the record's own time nor its CloudEvents time is more precise.
    for _body, headers, _key, timestamp in records:
        assert timestamp % 3_600_000 == 0, "the record time is cut to the hour"
        times = [value.decode() for name, value in headers if name == "ce_time"]
        assert times and all(t.endswith("T%s:00:00+00:00" % t[11:13]) for t in times)

    logs = stack.api.logs() + stack.worker.logs()
    assert "starting" in logs, "the api log is the process's real output"
    for trace in (build.DISTINCTIVE_IP, "127.0.0.1", build.DISTINCTIVE_UA):
        assert trace not in logs.replace("http://127.0.0.1", "")


async def test_a_photo_comes_back_without_metadata(
    stack: Stack, http: httpx.Client
) -> None:
    original = build.jpeg_with_metadata()
    assert build.CAMERA_MAKER.encode() in original and build.SECRET_COMMENT in original
    assert build.submit(http, stack.place, photos=[original]).status_code == 201
    report = next(r for r in zone_reports(http, stack) if r["photo_count"] == 1)
    detail = http.get(
        f"/v1/zones/{stack.zone}/reports/{report['id']}",
        headers=bearer(stack.zone_token),
    ).json()
    photo = http.get(detail["photos"][0]["url"], headers=bearer(stack.zone_token))
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert build.CAMERA_MAKER.encode() not in photo.content
    assert build.SECRET_COMMENT not in photo.content
    image = Image.open(io.BytesIO(photo.content))
    assert image.size == (64, 48)
    assert not image.getexif() and "exif" not in image.info
    assert "comment" not in image.info and "icc_profile" not in image.info
    foreign = http.get(
        detail["photos"][0]["url"].replace(stack.zone, stack.other_zone),
        headers=bearer(stack.other_token),
    )
    assert foreign.status_code == 404


async def test_xmp_icc_and_png_text_are_stripped_too(
    stack: Stack, http: httpx.Client
) -> None:
    jpeg, png = build.jpeg_with_everything(), build.png_with_metadata()
    icc_tail = build.icc_profile()[-32:]
    assert build.XMP_AUTHOR.encode() in jpeg and icc_tail in jpeg
    assert build.PNG_AUTHOR.encode() in png
    assert {"icc_profile", "Author"} <= set(Image.open(io.BytesIO(png)).info)
    answer = build.submit(http, stack.place, category="other", photos=[jpeg, png])
    assert answer.status_code == 201, answer.text
    report = next(r for r in zone_reports(http, stack) if r["photo_count"] == 2)
    detail = http.get(
        f"/v1/zones/{stack.zone}/reports/{report['id']}",
        headers=bearer(stack.zone_token),
    ).json()
    kinds = []
    for photo in detail["photos"]:
        stored = http.get(photo["url"], headers=bearer(stack.zone_token))
        kinds.append(stored.headers["content-type"])
        for trace in (
            build.XMP_AUTHOR.encode(),
            build.PNG_AUTHOR.encode(),
            build.SECRET_COMMENT,
            build.CAMERA_MAKER.encode(),
            icc_tail,
            b"GPSLatitude",
            b"xmpmeta",
        ):
            assert trace not in stored.content
        image = Image.open(io.BytesIO(stored.content))
        assert not image.getexif()
        assert not set(image.info) & {
            "exif",
            "xmp",
            "icc_profile",
            "comment",
            "Author",
            "XML:com.adobe.xmp",
        }
    assert sorted(kinds) == ["image/jpeg", "image/png"]
    # Nothing of the photos' metadata reached the database either.
    dumped = repr(await dump_database(stack.db)).encode()
    assert build.XMP_AUTHOR.encode() not in dumped
    assert build.PNG_AUTHOR.encode() not in dumped


async def test_receipt_codes_are_stored_as_argon2_hashes_and_travel_only_in_bodies(
    stack: Stack, http: httpx.Client
) -> None:
    answer = build.submit(http, stack.place, category="laboratory")
    code = answer.json()["receipt_code"]
    bare = code.replace("-", "")
    everything = await dump_database(stack.db)
    dumped = repr(everything)
    assert code not in dumped and bare not in dumped, "the code itself is not stored"
    assert bare[8:] not in dumped, "nor its secret part"
    hashes = [d["receipt_hash"] for d in everything if "receipt_hash" in d]
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)
    assert len(set(hashes)) == len(hashes), "every hash has its own salt"
    # The code goes in a POST body only: no route takes it from a URL.
    assert http.get("/v1/follow-up", params={"receipt_code": code}).status_code == 405
    page = http.get("/followup?lang=nl")
    form = page.text.split("<form", 1)[1].split(">", 1)[0]
    assert 'method="post"' in form and "receipt_code" not in form
    opened = http.post(
        "/followup?lang=nl", data={**build.solved(http), "receipt_code": code}
    )
    assert opened.status_code == 200 and "Ontvangen" in opened.text
    logs = stack.api.logs() + stack.worker.logs()
    assert code not in logs and bare not in logs


async def test_form_speaks_the_reporters_language_and_loads_nothing_from_elsewhere(
    http: httpx.Client,
) -> None:
    for query, accept, lang, word in (
        ("", "de-BE,de;q=0.9", "de", "Meldung"),
        ("", "fr-BE,fr;q=0.8,nl;q=0.5", "fr", "signalement"),
        ("?lang=en", "nl-BE", "en", "report"),
        ("", "", "nl", "melding"),
    ):
        page = http.get(f"/{query}", headers={"Accept-Language": accept})
        assert page.status_code == 200
        assert f'<html lang="{lang}"' in page.text and word in page.text
        assert "set-cookie" not in page.headers
        assert "default-src 'none'" in page.headers["content-security-policy"]
        for attribute in ("src=", "href=", "action="):
            for value in page.text.split(attribute)[1:]:
                assert not value.strip("\"'").startswith(("http:", "https:", "//"))


async def test_bad_form_input_is_shown_again_in_the_reporters_language(
    stack: Stack, http: httpx.Client
) -> None:
    before = await open_reports(stack.db)
    fields = {"category": "plantation", "place": stack.place, "text": "Geur"}
    big = http.post(
        "/?lang=nl",
        data={**fields, **build.solved(http)},
        files={"photos": ("a.jpg", b"\xff\xd8\xff" + b"\0" * (6 << 20), "image/jpeg")},
    )
    assert big.status_code == 413 and "Een foto mag hoogstens 5 MB" in big.text
    assert 'value="Geur"' in big.text or ">Geur<" in big.text, "the input is kept"
    fake = http.post(
        "/?lang=de",
        data={**fields, **build.solved(http)},
        files={"photos": ("a.png", b"not an image", "image/png")},
    )
    assert fake.status_code == 422 and "Nur JPEG- oder PNG-Fotos" in fake.text
    stale = http.post(
        "/?lang=nl", data={**fields, "challenge": "v1.bogus", "nonce": ""}
    )
    assert stale.status_code == 400 and "Het formulier is verlopen" in stale.text
    assert "text/html" in stale.headers["content-type"]
    for body, kind in (
        (b"{not json", "application/json"),
        (b"[]", "application/json"),
        (b"report=1", "application/x-www-form-urlencoded"),
    ):
        broken = http.post("/v1/reports", content=body, headers={"Content-Type": kind})
        assert broken.status_code == 422, broken.text
        assert broken.headers["content-type"] == "application/problem+json"
    chunked = http.post(
        "/v1/reports",
        content=iter([b"{}"]),
        headers={"Content-Type": "application/json"},
    )
    assert chunked.status_code == 411
    assert await open_reports(stack.db) == before
    assert "Internal error" not in stack.api.logs()


async def test_global_rate_limits_hold_off_floods_without_knowing_anyone(
    stack: Stack, http: httpx.Client
) -> None:
    port = free_port()
    env = build.service_env(
        port=port,
        database=stack.db.name,
        zones_topic=stack.zones_topic,
        SUBMIT_SOLVED_CAPACITY="2",
        SUBMIT_SOLVED_PER_S="0.001",
        WRONG_CODE_CAPACITY="2",
        WRONG_CODE_PER_S="0.001",
    )
    limited = ServiceProcess(
        module="services.reports",
        role="api",
        env=env,
        log=ROOT / ".run" / "logs" / "tests" / f"{unique('reports-limited')}.log",
    ).start()
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", timeout_s=60)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20) as tight:
            code = build.submit(tight, stack.place).json()["receipt_code"]
            assert build.submit(tight, stack.place).status_code == 201
            before = await open_reports(stack.db)
            # Different "clients" change nothing: the buckets are global.
            flood = tight.post(
                "/v1/reports",
                headers=build.reporter_headers(),
                json={**build.solved(tight), "report": build.report(stack.place)},
            )
            assert flood.status_code == 429
            assert flood.headers["content-type"] == "application/problem+json"
            assert int(flood.headers["retry-after"]) >= 1
            assert await open_reports(stack.db) == before
            page = tight.post(
                "/?lang=nl",
                data={
                    "category": "plantation",
                    "place": stack.place,
                    **build.solved(tight),
                },
            )
            assert page.status_code == 429 and "Er komen nu veel meldingen" in page.text

            wrong = [domain.new_receipt_code().display for _ in range(2)]
            for guess in wrong:
                answer = tight.post(
                    "/v1/follow-up", json={**build.solved(tight), "receipt_code": guess}
                )
                assert answer.status_code == 404
            # After too many wrong codes, even the right one waits.
            locked = tight.post(
                "/v1/follow-up", json={**build.solved(tight), "receipt_code": code}
            )
            assert locked.status_code == 429 and "retry-after" in locked.headers
        # Another process with its own buckets still reads that code.
        seen = http.post(
            "/v1/follow-up", json={**build.solved(http), "receipt_code": code}
        )
        assert seen.status_code == 200 and seen.json()["status"] == "received"
    finally:
        limited.stop()
    logs = limited.logs()
    assert build.DISTINCTIVE_IP not in logs and build.DISTINCTIVE_UA not in logs


async def test_zone_triage_and_reporter_follow_up(
    stack: Stack, http: httpx.Client, platform: ServiceSettings
) -> None:
    answer = build.submit(http, stack.place, category="waste_dumping")
    code = answer.json()["receipt_code"]
    assert len(code) == 34 and code.count("-") == 6
    auth = bearer(stack.zone_token)
    report = next(
        r for r in zone_reports(http, stack) if r["category"] == "waste_dumping"
    )
    base = f"/v1/zones/{stack.zone}/reports/{report['id']}"
    assert (
        http.patch(base, json={"status": "under_review"}, headers=auth).status_code
        == 200
    )
    asked = http.post(
        f"{base}/questions", json={"text": "Welke kleur heeft de loods?"}, headers=auth
    )
    assert asked.status_code == 201, asked.text
    question = asked.json()["id"]

    seen = http.post(
        "/v1/follow-up", json={**build.solved(http), "receipt_code": code.lower()}
    )
    assert seen.status_code == 200, seen.text
    assert seen.headers["cache-control"] == "no-store"
    view = seen.json()
    assert view["status"] == "under_review"
    assert view["questions"] == [
        {"id": question, "text": "Welke kleur heeft de loods?", "answer": None}
    ]
    answered = http.post(
        "/v1/follow-up",
        json={
            **build.solved(http),
            "receipt_code": code,
            "answers": [{"question_id": question, "text": "Groen"}],
        },
    )
    assert (
        answered.status_code == 200
        and answered.json()["questions"][0]["answer"] == "Groen"
    )
    again = http.post(
        "/v1/follow-up",
        json={
            **build.solved(http),
            "receipt_code": code,
            "answers": [{"question_id": question, "text": "Blauw"}],
        },
    )
    assert again.status_code == 409
    detail = http.get(base, headers=auth).json()
    assert detail["questions"][0]["answer"] == "Groen"
    assert "receipt_hash" not in detail and "locator" not in detail

    refused = http.patch(base, json={"status": "received"}, headers=auth)
    assert refused.status_code == 409
    closed = http.patch(
        base, json={"status": "closed", "outcome": "site_found"}, headers=auth
    )
    assert closed.status_code == 200 and closed.json()["outcome"] == "site_found"
    final = http.post(
        "/v1/follow-up", json={**build.solved(http), "receipt_code": code}
    )
    assert final.json()["status"] in ("closed",), final.text
    statuses = await read_topic(platform, "reports.status.v1", {report["id"]})
    deadline = time.monotonic() + 20
    while "closed" not in {b["status"] for b, *_ in statuses}:
        assert time.monotonic() < deadline, statuses
        statuses = await read_topic(platform, "reports.status.v1", {report["id"]}, 3)
    last = [b for b, *_ in statuses if b["status"] == "closed"][0]
    assert last["outcome"] == "site_found" and last["zone"] == stack.zone


async def test_unzoned_places_go_to_the_provincial_triage_queue(
    stack: Stack, http: httpx.Client
) -> None:
    # Bastogne (6600) belongs to no zone of this test's zones topic.
    assert build.submit(http, "6600", category="laboratory").status_code == 201
    assert (
        http.get("/v1/triage/reports", headers=bearer(stack.zone_token)).status_code
        == 403
    )
    queue = http.get(
        "/v1/triage/reports?province=80000", headers=bearer(stack.operator_token)
    )
    reports = queue.json()["reports"]
    assert len(reports) == 1 and reports[0]["zone"] is None
    assert reports[0]["province_nis"] == "80000"
    moved = http.put(
        f"/v1/triage/reports/{reports[0]['id']}/zone",
        json={"zone": stack.other_zone},
        headers=bearer(stack.operator_token),
    )
    assert moved.status_code == 200 and moved.json()["zone"] == stack.other_zone


async def test_bad_input_is_refused_clearly_and_nothing_is_stored(
    stack: Stack, http: httpx.Client
) -> None:
    # The purge may remove closed reports of earlier tests meanwhile: compare the
    # open ones.
    before = await open_reports(stack.db)
    photos_before = await photos_of(stack.db, before)
    unknown = build.submit(http, "9999")
    assert unknown.status_code == 422
    assert unknown.headers["content-type"] == "application/problem+json"
    assert unknown.json()["errors"][0]["field"] == "place"
    assert build.submit(http, "Atlantis").status_code == 422
    fake = build.submit(http, stack.place, photos=[b"GIF89a not really an image"])
    assert fake.status_code == 422 and "JPEG" in fake.json()["detail"]
    broken = build.submit(http, stack.place, photos=[b"\xff\xd8\xff" + b"\0" * 100])
    assert broken.status_code == 422
    big = build.submit(http, stack.place, photos=[b"\xff\xd8\xff" + b"\0" * (6 << 20)])
    assert big.status_code in (413, 422) and big.status_code < 500
    too_many = build.submit(http, stack.place, photos=[build.png_bytes()] * 4)
    assert too_many.status_code == 422
    missing = http.post("/v1/reports", json={"report": build.report(stack.place)})
    assert missing.status_code == 422
    work = build.solved(http)
    wrong_nonce = http.post(
        "/v1/reports",
        json={
            "challenge": work["challenge"],
            "nonce": "x" * 40,
            "report": build.report("2000"),
        },
    )
    assert wrong_nonce.status_code in (400, 422)
    forged = http.post(
        "/v1/reports",
        json={
            "challenge": work["challenge"][:-3] + "AAA",
            "nonce": work["nonce"],
            "report": build.report(stack.place),
        },
    )
    assert forged.status_code == 400
    assert (
        http.post(
            "/v1/reports", json={**work, "report": build.report(stack.place)}
        ).status_code
        == 201
    )
    replay = http.post(
        "/v1/reports", json={**work, "report": build.report(stack.place)}
    )
    assert replay.status_code == 400, "a challenge is spent once"
    form = http.post(
        "/?lang=nl",
        data={
            "category": "plantation",
            "place": "9999",
            "challenge": "v1.x",
            "nonce": "",
        },
    )
    assert form.status_code in (400, 422)
    assert "text/html" in form.headers["content-type"]
    form = http.post(
        "/?lang=fr",
        data={
            "category": "plantation",
            "place": "9999",
            **build.solved(http),
        },
    )
    assert form.status_code == 422 and "n&#39;existe pas en Belgique" in form.text
    no_place = http.post(
        "/?lang=de", data={"category": "plantation", **build.solved(http)}
    )
    assert no_place.status_code == 422 and "Gemeinde" in no_place.text
    after = await open_reports(stack.db)
    assert len(after - before) == 1, "only the one valid submission is stored"
    assert await photos_of(stack.db, before) == photos_before
    assert await photos_of(stack.db, after - before) == 0

    wrong = http.post(
        "/v1/follow-up",
        json={**build.solved(http), "receipt_code": domain.new_receipt_code().display},
    )
    assert wrong.status_code == 404 and wrong.headers["content-type"].startswith(
        "application/problem+json"
    )
    garbled = http.post(
        "/v1/follow-up", json={**build.solved(http), "receipt_code": "!!"}
    )
    assert garbled.status_code == 422
    page = http.post(
        "/followup?lang=nl",
        data={**build.solved(http), "receipt_code": domain.new_receipt_code().display},
    )
    assert page.status_code == 404 and "Deze ontvangstcode klopt niet" in page.text

    assert http.get(f"/v1/zones/{stack.zone}/reports").status_code == 401
    foreign = http.get(
        f"/v1/zones/{stack.other_zone}/reports", headers=bearer(stack.zone_token)
    )
    assert foreign.status_code == 403
    mine = zone_reports(http, stack)[0]["id"]
    crossing = http.get(
        f"/v1/zones/{stack.other_zone}/reports/{mine}",
        headers=bearer(stack.other_token),
    )
    assert crossing.status_code == 404
    assert "Internal error" not in stack.api.logs()


async def open_reports(db: Any) -> set[str]:
    """The ids of the reports not closed."""
    found = await db.reports.find({"status": {"$ne": "closed"}}, {"_id": 1}).to_list(
        None
    )
    return {document["_id"] for document in found}


async def photos_of(db: Any, report_ids: set[str]) -> int:
    """How many photos the given reports have stored."""
    return await db.photos.count_documents({"report_id": {"$in": sorted(report_ids)}})


async def test_closed_reports_are_purged_after_retention(
    stack: Stack, http: httpx.Client
) -> None:
    assert (
        build.submit(
            http, stack.place, category="other", photos=[build.png_bytes()]
        ).status_code
        == 201
    )
    report = next(r for r in zone_reports(http, stack) if r["category"] == "other")
    kept = next(
        r["id"]
        for r in zone_reports(http, stack)
        if r["status"] != "closed" and r["id"] != report["id"]
    )
    closed = http.patch(
        f"/v1/zones/{stack.zone}/reports/{report['id']}",
        json={"status": "closed", "outcome": "too_little_detail"},
        headers=bearer(stack.zone_token),
    )
    assert closed.status_code == 200
    deadline = time.monotonic() + RETENTION_S + 20
    while await stack.db.reports.count_documents({"_id": report["id"]}):
        assert time.monotonic() < deadline, "the closed report was not purged"
        await asyncio.sleep(0.3)
    assert await stack.db.photos.count_documents({"report_id": report["id"]}) == 0
    assert await stack.db.reports.count_documents({"_id": kept}) == 1
