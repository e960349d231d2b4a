"""Messaging on the real stack: CAP in, fan-out, senders, providers, status, DLQ."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.messaging import domain
from services.messaging.settings import MessagingSettings
from shared.auth import issue_token
from shared.events import AlertAccepted
from shared.kafka import ensure_topics, new_producer
from shared.links import read_unsubscribe
from shared.settings import ServiceSettings
from tests.builders import messaging as build
from tests.conftest import free_port, unique, wait_http

CAP = "application/cap+xml"


def stack_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """Settings of one test's own messaging processes, on topics of its own."""
    gateway_port, smtp_port = free_port(), free_port()
    return {
        "MESSAGING_TOPIC_PREFIX": unique("t") + ".",
        "REGISTRY_TOPIC_PREFIX": unique("t") + ".",
        "FANOUT_SESSION_TIMEOUT_S": "6",
        "MONGODB_DATABASE": unique("msg").replace("-", "_"),
        "FAUST_APP_ID": unique("msg-fanout"),
        "FAUST_WEB_PORT": str(free_port()),
        "FAUST_DATADIR": str(tmp_path / "faust"),
        "SENDER_GROUP_PREFIX": unique("msg-sender"),
        "HTTP_PORT": str(free_port()),
        "GATEWAY_HTTP_PORT": str(gateway_port),
        "GATEWAY_SMTP_PORT": str(smtp_port),
        "GATEWAY_STORE_DIR": str(tmp_path / "gateway"),
        "GATEWAY_URL": f"http://127.0.0.1:{gateway_port}",
        "SMTP_PORT": str(smtp_port),
        "RETRY_BASE_S": "0.2",
        "RETRY_CAP_S": "1",
        "GIVE_UP_AFTER_S": "3",
        "SMS_RATE_PER_S": "0.5",
        "PROVIDER_BATCH_SIZE": "1",
        **overrides,
    }


def topic(env: dict[str, str], name: str) -> str:
    """The name a test's own processes give a messaging topic."""
    return env["MESSAGING_TOPIC_PREFIX"] + name


def start_all(
    start_process: Any, env: dict[str, str], *, sender: bool = True
) -> dict[str, Any]:
    procs = {
        "gateway": start_process("services.messaging", "gateway", **env),
        "api": start_process("services.messaging", "api", **env),
        "relay": start_process("services.messaging", "relay", **env),
        "fanout": start_process("services.messaging", "fanout", **env),
        "status": start_process("services.messaging", "status", **env),
    }
    if sender:
        procs["sender"] = start_process(
            "services.messaging", "sender --channel all", **env
        )
    wait_http(f"{env['GATEWAY_URL']}/healthz", timeout_s=60)
    wait_http(f"http://127.0.0.1:{env['FAUST_WEB_PORT']}/readyz", timeout_s=120)
    return procs


async def wait_for(check: Any, *, timeout_s: float = 60, what: str = "") -> Any:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = await asyncio.to_thread(check)
        if last:
            return last
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}: {last}")


def gateway_messages(env: dict[str, str], **query: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{env['GATEWAY_URL']}/v1/messages", params=query, timeout=10)
    return response.json()["messages"]


def members_known(env: dict[str, str], bin_id: str) -> int:
    url = f"http://127.0.0.1:{env['FAUST_WEB_PORT']}/v1/fanout/bins/{bin_id}/"
    try:
        return httpx.get(url, timeout=5).json()["members"]
    except httpx.HTTPError:
        return 0


async def create_topics(platform: ServiceSettings, env: dict[str, str]) -> None:
    """Create the test's own messaging and registry topics, as the roles would."""
    own = MessagingSettings(
        messaging_topic_prefix=env["MESSAGING_TOPIC_PREFIX"],
        registry_topic_prefix=env["REGISTRY_TOPIC_PREFIX"],
    )
    await ensure_topics(platform, topics=own.prefixed_topics())


async def seed(
    platform: ServiceSettings,
    env: dict[str, str],
    *,
    zone_code: str,
    bins: dict[str, list[tuple[str, list[str], str]]],
) -> None:
    """Publish a zone, its BINs and their members with sealed contacts."""
    await create_topics(platform, env)
    ring = build.keyring(platform)
    producer = new_producer(platform)
    await producer.start()
    try:
        members = [
            build.membership(
                m, bin_id=b, zone_code=zone_code, channels=ch, language=lang
            )
            for b, people in bins.items()
            for m, ch, lang in people
        ]
        await build.publish_registry(
            producer,
            zones=[build.zone(zone_code, municipalities=("11040", "11002"))],
            bins=[build.bin_snapshot(b, zone_code=zone_code) for b in bins],
            members=members,
            member_contacts=[build.contacts(m.member_id, ring=ring) for m in members],
            prefix=env["REGISTRY_TOPIC_PREFIX"],
        )
    finally:
        await producer.stop()


async def test_cap_alert_reaches_every_channel_with_update_cancel_and_refusals(
    platform: ServiceSettings, start_process: Any, tmp_path: Path
) -> None:
    env = stack_env(tmp_path)
    zone_code, other_zone = unique("PZT"), unique("PZO")
    bin_a, bin_b, foreign_bin = unique("bin"), unique("bin"), unique("bin")
    people_a = [
        (unique("m"), ["sms", "email"], "nl"),
        (unique("m"), ["email"], "fr"),
        (unique("m"), ["voice", "app"], "de"),
        (unique("m"), ["app"], "en"),
    ]
    people_b = [(unique("m"), ["sms"], "nl") for _ in range(6)]
    await seed(
        platform, env, zone_code=zone_code, bins={bin_a: people_a, bin_b: people_b}
    )
    await seed(platform, env, zone_code=other_zone, bins={foreign_bin: []})
    start_all(start_process, env)
    api = f"http://127.0.0.1:{env['HTTP_PORT']}"
    wait_http(f"{api}/readyz", timeout_s=60)
    await wait_for(
        lambda: members_known(env, bin_a) == 4 and members_known(env, bin_b) == 6,
        what="fan-out tables",
        timeout_s=300,
    )
    token = issue_token(secret=platform.jwt_secret, role="zone", scope=zone_code)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": CAP}
    with httpx.Client(base_url=api, headers=headers, timeout=10) as client:
        await exercise(client, env, platform, people_a, bin_a, bin_b, foreign_bin)
    await malformed_alert_goes_to_the_dead_letter_topic(platform, env, zone_code)


async def malformed_alert_goes_to_the_dead_letter_topic(
    platform: ServiceSettings, env: dict[str, str], zone_code: str
) -> None:
    producer = new_producer(platform)
    await producer.start()
    key = unique("bad-alert").encode()
    try:
        await producer.send_and_wait(
            topic(env, AlertAccepted.TOPIC),
            key=key,
            value=b'{"alert_id": 5}',
            headers=[
                ("ce_specversion", b"1.0"),
                ("ce_id", key),
                ("ce_source", b"t"),
                ("ce_type", AlertAccepted.EVENT_TYPE.encode()),
            ],
        )
    finally:
        await producer.stop()
    dlq = AIOKafkaConsumer(
        f"{topic(env, AlertAccepted.TOPIC)}.dlq",
        **platform.kafka_client_options(),
        auto_offset_reset="earliest",
        group_id=unique("dlq-reader"),
    )
    await dlq.start()
    try:
        deadline = time.monotonic() + 60
        found = None
        while found is None and time.monotonic() < deadline:
            batches = await dlq.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    if record.key == key:
                        found = record
        assert found is not None, "the malformed alert reached the dead-letter topic"
        reason = dict(found.headers)["dlq_reason"].decode()
        assert "alert_id" in reason
    finally:
        await dlq.stop()


async def exercise(
    client: httpx.Client,
    env: dict[str, str],
    platform: ServiceSettings,
    people_a: list[Any],
    bin_a: str,
    bin_b: str,
    foreign_bin: str,
) -> None:

    # Cross-zone targeting is refused, as is a reference to an unknown alert.
    refused = client.post(
        "/v1/alerts", content=build.cap_alert(unique("A"), bins=[foreign_bin])
    )
    assert refused.status_code == 403, refused.text
    assert foreign_bin in refused.text
    unknown = client.post(
        "/v1/alerts",
        content=build.cap_alert(
            unique("C"),
            msg_type="Cancel",
            references=build.cap_reference("no-such-alert"),
        ),
    )
    assert unknown.status_code == 422 and "no-such-alert" in unknown.text
    broken = client.post(
        "/v1/alerts", content=b"<alert xmlns='urn:oasis:names:tc:emergency:cap:1.2'/>"
    )
    assert broken.status_code == 422 and "line" in broken.json()["detail"]
    expired = client.post(
        "/v1/alerts",
        json={"category": "burglary", "texts": {"nl": {"headline": "h", "body": "b"}},
              "expires_at": "2020-01-01T00:00:00Z"},
        headers={"content-type": "application/json"},
    )
    assert expired.status_code == 422, expired.text
    assert expired.json()["errors"][0]["field"] == "expires_at"
    huge = client.post(
        "/v1/alerts",
        json={"category": "burglary",
              "texts": {"nl": {"headline": "h", "body": "b" * 300_000}}},
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413, huge.text

    # A CAP alert to one BIN reaches every member's chosen channels.
    alert_id = unique("PZT-ALERT")
    accepted = client.post(
        "/v1/alerts", content=build.cap_alert(alert_id, bins=[bin_a])
    )
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status_url"].endswith(f"/v1/alerts/{alert_id}")
    expected = {(m, c) for m, channels, _ in people_a for c in channels}
    contacts = {m: build.addresses(m) for m, _, _ in people_a}

    def arrived() -> set[tuple[str, str]] | None:
        found = gateway_messages(env, alert_id=alert_id)
        by_address = {(msg["to"], msg["channel"]) for msg in found}
        got = {(m, c) for m, c in expected if (contacts[m][c], c) in by_address}
        return got if got == expected and len(found) == len(expected) else None

    await wait_for(arrived, what="every delivery at the providers")
    french = gateway_messages(
        env, alert_id=alert_id, to=contacts[people_a[1][0]]["email"]
    )
    assert "Cambriolages" in french[0]["subject"]
    # An alert's e-mail can be unsubscribed from in one step, like a mail.
    headers = dict(french[0]["headers"])
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = headers["List-Unsubscribe"].strip("<>")
    assert read_unsubscribe(link.rsplit("/", 1)[1], secret=platform.jwt_secret) \
        .member_id == people_a[1][0]
    sms = gateway_messages(env, alert_id=alert_id, channel="sms")
    assert sms[0]["segments"] >= 1 and sms[0]["encoding"] == "GSM-7"

    def status_done() -> dict[str, Any] | None:
        body = client.get(f"/v1/alerts/{alert_id}").json()
        handed = sum(v["handed_over"] for v in body["by_channel"].values())
        return body if handed == len(expected) else None

    status = await wait_for(status_done, what="status")
    assert status["targeted_members"] == 4
    assert status["by_channel"]["email"]["pending"] == 0
    assert status["first_handover_at"] and status["last_handover_at"]
    assert "@" not in str(status) and "+32" not in str(status)

    # Update then Cancel an alert whose SMS go out slowly.
    slow_id = unique("PZT-SLOW")
    assert (
        client.post(
            "/v1/alerts", content=build.cap_alert(slow_id, bins=[bin_b], channels="sms")
        ).status_code
        == 202
    )
    await wait_for(
        lambda: gateway_messages(env, alert_id=slow_id), what="first slow sms"
    )
    update = client.post(
        "/v1/alerts",
        content=build.cap_alert(
            unique("PZT-UPD"),
            msg_type="Update",
            references=build.cap_reference(slow_id),
            channels="sms",
            headline_nl="Update: dader gevat",
        ),
    )
    assert update.status_code == 202, update.text
    # An update may not take the id of an alert that exists.
    reused = client.post(
        "/v1/alerts",
        content=build.cap_alert(
            alert_id,
            msg_type="Update",
            references=build.cap_reference(slow_id),
            channels="sms",
        ),
    )
    assert reused.status_code == 409, reused.text
    await wait_for(
        lambda: any(
            "dader gevat" in m["text"] for m in gateway_messages(env, alert_id=slow_id)
        ),
        what="updated text",
    )
    cancel = client.post(
        "/v1/alerts",
        content=build.cap_alert(
            unique("PZT-CAN"),
            msg_type="Cancel",
            references=build.cap_reference(slow_id),
        ),
    )
    assert cancel.status_code == 202, cancel.text

    def slow_finished() -> dict[str, Any] | None:
        body = client.get(f"/v1/alerts/{slow_id}").json()
        sms_counts = body["by_channel"].get("sms", {})
        done = sms_counts.get("handed_over", 0) + sms_counts.get("cancelled", 0)
        return body if done == 6 else None

    slow = await wait_for(slow_finished, what="slow alert settled", timeout_s=60)
    assert slow["state"] == "cancelled"
    assert slow["by_channel"]["sms"]["cancelled"] >= 1
    assert (
        len(gateway_messages(env, alert_id=slow_id))
        == slow["by_channel"]["sms"]["handed_over"]
    )


def zone_members_known(env: dict[str, str], zone_code: str) -> int:
    url = f"http://127.0.0.1:{env['FAUST_WEB_PORT']}/v1/fanout/zones/{zone_code}/"
    try:
        return httpx.get(url, timeout=5).json()["members"]
    except httpx.HTTPError:
        return 0


async def delivery_offsets(platform: ServiceSettings, env: dict[str, str]) -> int:
    """How many records the test's four delivery topics hold."""
    consumer = AIOKafkaConsumer(**platform.kafka_client_options(), group_id=None)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic(env, f"messaging.deliveries.{channel}.v1"), n)
            for channel in ("sms", "email", "voice", "app")
            for n in range(4)
        ]
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


async def test_workers_killed_mid_fan_out_leave_one_delivery_per_member_and_channel(
    platform: ServiceSettings, start_process: Any, tmp_path: Path
) -> None:
    # Paced providers keep the senders busy long enough to be killed mid-alert.
    env = stack_env(
        tmp_path,
        SMS_RATE_PER_S="400",
        EMAIL_RATE_PER_S="400",
        APP_RATE_PER_S="400",
        VOICE_RATE_PER_S="400",
        PROVIDER_BATCH_SIZE="50",
        SENDER_BATCH_SIZE="200",
        # One BIN per stage-2 batch keeps the fan-out busy long enough to be killed.
        FANOUT_BATCH_BINS="1",
    )
    zone_code = unique("PZK")
    mixes = [["sms", "email"], ["email"], ["app"], ["sms", "voice"], ["email", "app"]]
    bins = {
        unique("bin"): [
            (unique("m"), mixes[(b + i) % len(mixes)], "nl") for i in range(50)
        ]
        for b in range(40)
    }
    await seed(platform, env, zone_code=zone_code, bins=bins)
    procs = start_all(start_process, env)
    api = f"http://127.0.0.1:{env['HTTP_PORT']}"
    wait_http(f"{api}/readyz", timeout_s=60)
    await wait_for(
        lambda: zone_members_known(env, zone_code) == 2000,
        what="fan-out tables",
        timeout_s=300,
    )
    expected = {
        (m, c)
        for people in bins.values()
        for m, channels, _ in people
        for c in channels
    }
    token = issue_token(secret=platform.jwt_secret, role="zone", scope=zone_code)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": CAP}
    alert_id = unique("PZK-ALERT")
    with httpx.Client(base_url=api, headers=headers, timeout=10) as client:
        response = client.post("/v1/alerts", content=build.cap_alert(alert_id))
        assert response.status_code == 202, response.text

        # The fan-out dies while it writes the deliveries ...
        deadline = time.monotonic() + 60
        written = 0
        while written == 0 and time.monotonic() < deadline:
            written = await delivery_offsets(platform, env)
            await asyncio.sleep(0.02)
        procs["fanout"].kill()
        written = await delivery_offsets(platform, env)
        assert 0 < written < len(expected), "the fan-out was killed mid-alert"

        # ... and the sender dies while it hands them over.
        await wait_for(
            lambda: gateway_messages(env, alert_id=alert_id),
            what="first hand-overs",
            timeout_s=60,
        )
        procs["sender"].kill()
        handed = len(gateway_messages(env, alert_id=alert_id))
        assert handed < len(expected), "the sender was killed mid-alert"

        start_process("services.messaging", "fanout", **env)
        start_process("services.messaging", "sender --channel all", **env)
        contacts = {m: build.addresses(m) for m, _ in expected}

        def all_arrived() -> list[dict[str, Any]] | None:
            found = gateway_messages(env, alert_id=alert_id)
            return found if len(found) >= len(expected) else None

        found = await wait_for(all_arrived, what="every delivery", timeout_s=180)
        # Told apart by idempotency key, not by address: the made-up numbers of
        # two of the 2,000 members can be the same (a few runs in a hundred).
        wanted = {
            domain.delivery_key(alert_id=alert_id, member_id=m, channel=c): (
                contacts[m][c],
                c,
            )
            for m, c in expected
        }
        received = {
            message["idempotency_key"]: (message["to"], message["channel"])
            for message in found
        }
        assert len(found) == len(wanted)
        assert received == wanted

        def counted() -> dict[str, Any] | None:
            body = client.get(f"/v1/alerts/{alert_id}").json()
            handed = sum(v["handed_over"] for v in body["by_channel"].values())
            return body if handed == len(expected) else None

        status = await wait_for(counted, what="status of every delivery", timeout_s=60)
        assert status["targeted_members"] == 2000
        assert all(v["pending"] == 0 for v in status["by_channel"].values())


async def test_permanent_failures_fall_back_from_sms_to_voice_to_email(
    platform: ServiceSettings, start_process: Any, tmp_path: Path
) -> None:
    env = stack_env(tmp_path, SMS_RATE_PER_S="100")
    zone_code, bin_id = unique("PZF"), unique("bin")
    falling, retried, fine = unique("m"), unique("m"), unique("m")
    people = [
        (falling, ["sms", "voice", "email"], "nl"),
        (retried, ["sms", "email"], "fr"),
        (fine, ["sms"], "nl"),
    ]
    await seed(platform, env, zone_code=zone_code, bins={bin_id: people})
    start_all(start_process, env)
    api = f"http://127.0.0.1:{env['HTTP_PORT']}"
    wait_http(f"{api}/readyz", timeout_s=60)
    await wait_for(
        lambda: members_known(env, bin_id) == 3, what="fan-out tables", timeout_s=90
    )
    contacts = {m: build.addresses(m) for m, _, _ in people}
    gateway = httpx.Client(base_url=env["GATEWAY_URL"], timeout=10)
    for to, mode, times in [
        (contacts[falling]["sms"], "permanent", None),
        (contacts[falling]["voice"], "permanent", None),
        (contacts[retried]["sms"], "temporary", 2),
    ]:
        gateway.post("/v1/failures", json={"to": to, "mode": mode, "times": times})
    token = issue_token(secret=platform.jwt_secret, role="zone", scope=zone_code)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": CAP}
    alert_id = unique("PZF-ALERT")
    with httpx.Client(base_url=api, headers=headers, timeout=10) as client:
        response = client.post(
            "/v1/alerts",
            content=build.cap_alert(alert_id, bins=[bin_id], channels="sms"),
        )
        assert response.status_code == 202, response.text

        def settled() -> dict[str, Any] | None:
            body = client.get(f"/v1/alerts/{alert_id}").json()
            counts = body["by_channel"]
            done = (
                counts.get("email", {}).get("handed_over", 0) == 1
                and counts.get("sms", {}).get("handed_over", 0) == 2
            )
            return body if done else None

        status = await wait_for(settled, what="fallback to e-mail", timeout_s=60)
    gateway.close()
    arrived = gateway_messages(env, alert_id=alert_id)
    assert sorted((m["to"], m["channel"]) for m in arrived) == sorted(
        [
            (contacts[falling]["email"], "email"),
            (contacts[retried]["sms"], "sms"),
            (contacts[fine]["sms"], "sms"),
        ]
    )
    assert status["targeted_members"] == 3
    assert status["by_channel"]["sms"] == {
        "pending": 0,
        "handed_over": 2,
        "failed": 1,
        "cancelled": 0,
    }
    assert status["by_channel"]["voice"]["failed"] == 1
    assert status["by_channel"]["email"]["handed_over"] == 1
    assert status["first_handover_at"] <= status["last_handover_at"]
    assert status["seconds_to_last_handover"] >= status["seconds_to_first_handover"] > 0
    reasons = {(f["channel"], f["reason"]) for f in status["failures"]}
    assert reasons == {
        ("sms", "recipient permanently unreachable"),
        ("voice", "recipient permanently unreachable"),
    }
    text = str(status)
    assert "@" not in text and "+32" not in text
    for member, _, _ in people:
        assert member not in text
