"""The HTTP process's in-memory views and routes, fed without Kafka."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from services.analytics import app as http
from services.analytics import domain
from shared.envelope import decode, encode
from tests.builders import analytics as b

NOW = datetime(2026, 2, 9, tzinfo=UTC)


def received(event, key):
    body, headers = encode(event, source="test", subject=key)
    return decode(key=key.encode(), value=body, headers=headers)


def coverage_record(zone: str, members: int):
    model = domain.CoverageModel()
    model.apply_zone(zone=zone, snapshot=b.zone(zone, units=["u1", "u2"]))
    model.apply_bin(bin_id="a", snapshot=b.bin_("a", zone=zone, territory=["u1"]))
    for i in range(members):
        model.apply_member(member_id=f"m{i}", snapshot=b.member(f"m{i}", bin_id="a"))
    return domain.zone_event(model.figures(zone), now=NOW)


async def test_views_keep_the_latest_record_and_tell_followers():
    views = http.Views()
    queue = views.follow()
    views.apply(received(coverage_record("z1", 2), "z1"), topic="analytics.coverage.v1")
    views.apply(received(coverage_record("z1", 3), "z1"), topic="analytics.coverage.v1")
    assert views.zones["z1"]["active_members"] == 3
    assert queue.qsize() == 2
    views.unfollow(queue)
    views.apply(received(b.report("r1"), "ipz10"), topic="reports.submitted.v1")
    assert views.reports.weekly()[0]["reports"] == 1


async def test_routes_answer_json_csv_and_problem_for_unknown_zones():
    http.views.zones.clear()
    http.views.apply(
        received(coverage_record("z1", 2), "z1"), topic="analytics.coverage.v1"
    )
    transport = httpx.ASGITransport(app=http.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        zone = (await client.get("/v1/coverage/zones/z1")).json()
        assert (zone["active_members"], zone["coverage_ratio"]) == (2, 0.5)
        listed = (
            await client.get("/v1/coverage/zones", params={"province": "x"})
        ).json()
        assert listed == {"zones": []}
        missing = await client.get("/v1/coverage/zones/nope")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        csv_text = (await client.get("/v1/coverage/zones.csv")).text
        assert csv_text.splitlines()[1].startswith("z1,PZ z1,10000,1,2,2,1,0.5,False")
        page = (await client.get("/")).text
        assert "EventSource" in page and "__DEFAULT_PROVINCE__" not in page
        assert "http://" not in page and "https://" not in page, "no other host"


def test_forwarded_batches_and_single_records_decode_alike():
    from services.analytics import streams

    items = [("member", "m1", '{"x": 1}'), ("bin", "b1", None)]
    batch = streams.decode_forwarded(streams.BATCH_KEY, streams.encode_batch(items))
    assert batch == items
    assert streams.decode_forwarded(b"zone:z1", b'{"y": 2}') == [
        ("zone", "z1", '{"y": 2}')
    ]
    assert streams.decode_forwarded(b"bin:b1", b"") == [("bin", "b1", None)]


async def test_per_bin_counts_wait_for_the_registry_and_hide_small_numbers():
    http.views.zones.clear()
    http.views.apply(
        received(coverage_record("z1", 2), "z1"), topic="analytics.coverage.v1"
    )
    http.views.apply(received(b.bin_("a", zone="z1"), "a"), topic="registry.bins.v1")
    for i in range(2):
        http.views.apply(
            received(b.member(f"m{i}", bin_id="a", zone="z1"), f"m{i}"),
            topic="registry.memberships.v1",
        )
    transport = httpx.ASGITransport(app=http.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        http.views.registry_caught_up = False
        waiting = await client.get("/v1/coverage/zones/z1/bins")
        assert waiting.status_code == 503 and "retry-after" in waiting.headers
        http.views.registry_caught_up = True
        answer = (await client.get("/v1/coverage/zones/z1/bins")).json()
        assert answer["bins"][0]["active_members"] == "<5"
        assert (await client.get("/v1/coverage/zones/nope/bins")).status_code == 404
