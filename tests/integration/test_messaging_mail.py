"""Coordinators' mail on the real stack: audiences by role, no leaks, replies, links."""

from __future__ import annotations

import asyncio
import re
import smtplib
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx

from shared.auth import issue_token
from shared.kafka import new_producer
from shared.links import read_unsubscribe
from shared.settings import ServiceSettings
from tests.builders import messaging as build
from tests.conftest import unique, wait_http
from tests.integration.test_messaging_flow import (
    create_topics,
    gateway_messages,
    members_known,
    stack_env,
    start_all,
    wait_for,
)

RELAY = "relay.test.example"
MAIL_FROM = "bin-alerts@messaging.example"
LIMIT = 60_000


async def seed_people(
    platform: ServiceSettings,
    env: dict[str, str],
    *,
    zones: dict[str, str],
    people: list[dict[str, Any]],
    bins: dict[str, str],
) -> None:
    """Publish zones (code: province), BINs (id: zone) and members with contacts."""
    await create_topics(platform, env)
    ring = build.keyring(platform)
    members = [
        build.membership(
            p["id"],
            bin_id=p["bin"],
            zone_code=bins[p["bin"]],
            channels=p.get("channels", ["email"]),
            language=p.get("language", "nl"),
            role=p.get("role", "member"),
            shares_email=p.get("shares", False),
        )
        for p in people
    ]
    producer = new_producer(platform)
    await producer.start()
    try:
        await build.publish_registry(
            producer,
            zones=[build.zone(z, province_nis=prov) for z, prov in zones.items()],
            bins=[build.bin_snapshot(b, zone_code=z) for b, z in bins.items()],
            members=members,
            member_contacts=[build.contacts(m.member_id, ring=ring) for m in members],
            prefix=env["REGISTRY_TOPIC_PREFIX"],
        )
    finally:
        await producer.stop()


def header_values(message: dict[str, Any]) -> str:
    """Every header of a received message, names and values, as one text."""
    return "\n".join(f"{name}: {value}" for name, value in message["headers"])


def header(message: dict[str, Any], name: str) -> str:
    """One header's value of a received message."""
    values = [v for n, v in message["headers"] if n.lower() == name.lower()]
    assert len(values) == 1, (name, values)
    return values[0]


def send_reply(env: dict[str, str], *, sender: str, to: str, text: str) -> None:
    """A member's mail client sending a reply to the local SMTP server."""
    reply = EmailMessage()
    reply["From"] = sender
    reply["To"] = to
    reply["Subject"] = "Re: Buurtfeest zaterdag"
    reply["Message-ID"] = f"<{unique('reply')}@client.example>"
    reply.set_content(text)
    with smtplib.SMTP("127.0.0.1", int(env["SMTP_PORT"]), timeout=10) as smtp:
        smtp.send_message(reply, from_addr=sender, to_addrs=[to])


async def test_coordinator_mail_reaches_only_its_bin_without_leaks_and_relays_replies(
    platform: ServiceSettings, start_process: Any, tmp_path: Path
) -> None:
    env = stack_env(
        tmp_path,
        MAIL_RELAY_DOMAIN=RELAY,
        MAIL_ATTACHMENTS_MAX_BYTES=str(LIMIT),
        PROVIDER_BATCH_SIZE="10",
    )
    zone, other_zone = unique("PZM"), unique("PZN")
    bin_a, bin_b, bin_c = unique("bin"), unique("bin"), unique("bin")
    coordinator, sharing, private, adviser, sms_only = (unique("m") for _ in range(5))
    coordinator_b, adviser_b, coordinator_c, adviser_c = (unique("m") for _ in range(4))
    people = [
        {"id": coordinator, "bin": bin_a, "role": "coordinator", "language": "en"},
        {"id": sharing, "bin": bin_a, "shares": True},
        {"id": private, "bin": bin_a},
        {"id": adviser, "bin": bin_a, "role": "cyber_adviser", "language": "fr"},
        {"id": sms_only, "bin": bin_a, "channels": ["sms"]},
        {"id": coordinator_b, "bin": bin_b, "role": "coordinator"},
        {"id": adviser_b, "bin": bin_b, "role": "cyber_adviser"},
        {"id": coordinator_c, "bin": bin_c, "role": "coordinator"},
        {"id": adviser_c, "bin": bin_c, "role": "cyber_adviser"},
    ]
    await seed_people(
        platform,
        env,
        zones={zone: "10000", other_zone: "20001"},
        bins={bin_a: zone, bin_b: zone, bin_c: other_zone},
        people=people,
    )
    start_all(start_process, env)
    api = f"http://127.0.0.1:{env['HTTP_PORT']}"
    wait_http(f"{api}/readyz", timeout_s=60)
    await wait_for(
        lambda: members_known(env, bin_a) == 5 and members_known(env, bin_c) == 2,
        what="fan-out tables",
        timeout_s=300,
    )
    address = {p["id"]: build.addresses(p["id"])["email"] for p in people}

    def token(role: str, scope: str = "") -> dict[str, str]:
        issued = issue_token(secret=platform.jwt_secret, role=role, scope=scope)
        return {"Authorization": f"Bearer {issued}"}

    as_coordinator = httpx.Client(base_url=api, headers=token("coordinator", bin_a))
    as_zone = httpx.Client(base_url=api, headers=token("zone", zone))
    as_operator = httpx.Client(base_url=api, headers=token("operator"))

    # A coordinator's mail with a PDF and a PNG reaches the BIN's e-mail members.
    accepted = as_coordinator.post(
        "/v1/mail",
        json=build.mail_body(
            attachments=[
                ("flyer.pdf", build.pdf_bytes()),
                ("plan.png", build.png_bytes()),
            ]
        ),
    )
    assert accepted.status_code == 202, accepted.text
    mail_id = accepted.json()["mail_id"]
    assert accepted.json()["status_url"].endswith(f"/v1/mail/{mail_id}")
    expected = {address[m] for m in (coordinator, sharing, private, adviser)}

    def arrived() -> list[dict[str, Any]] | None:
        found = gateway_messages(env, alert_id=mail_id)
        return found if {m["to"] for m in found} == expected else None

    received = await wait_for(arrived, what="the mail at every member")
    await asyncio.sleep(1)
    received = gateway_messages(env, alert_id=mail_id)
    assert len(received) == len(expected)
    assert not gateway_messages(env, alert_id=mail_id, channel="sms")
    relay_address = f"reply+{mail_id}@{RELAY}"
    by_member = {
        m: msg
        for msg in received
        for m in people_ids(people)
        if msg["to"] == address[m]
    }
    for member_id, message in by_member.items():
        headers = header_values(message)
        others = [a for m, a in address.items() if m != member_id]
        assert not any(other in headers for other in others), headers
        found = set(re.findall(r"[\w.+-]+@[\w.-]+", headers))
        assert found <= {
            address[member_id],
            MAIL_FROM,
            relay_address,
            f"{message['idempotency_key']}@bin-messaging",
        }, found
        assert header(message, "To") == address[member_id]
        assert header(message, "Reply-To") == relay_address
        assert header(message, "List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
        link = header(message, "List-Unsubscribe").strip("<>")
        assert link.startswith("http://127.0.0.1:8001/v1/unsubscribe/")
        assert link in message["text"]
        unsubscribe = read_unsubscribe(
            link.rsplit("/", 1)[1], secret=platform.jwt_secret
        )
        assert (unsubscribe.member_id, unsubscribe.message_id) == (member_id, mail_id)
        assert sorted(
            (a["filename"], a["content_type"]) for a in message["attachments"]
        ) == [("flyer.pdf", "application/pdf"), ("plan.png", "image/png")]
    assert "Fête de quartier" in by_member[adviser]["subject"]
    assert "Buurtfeest" in by_member[private]["subject"]

    def handed_over() -> dict[str, Any] | None:
        body = as_coordinator.get(f"/v1/mail/{mail_id}").json()
        done = body["by_channel"].get("email", {}).get("handed_over", 0)
        return body if done == len(expected) else None

    status = await wait_for(handed_over, what="the mail's status")
    assert "@" not in str(status) and status["category"] == "coordinator_mail"
    with httpx.Client(base_url=api, headers=token("coordinator", bin_b)) as foreign:
        assert foreign.get(f"/v1/mail/{mail_id}").status_code == 403
    assert as_zone.get(f"/v1/mail/{mail_id}").status_code == 200

    # Refusals: other BINs, zones and provinces; attachments by content and size.
    refusals = [
        (as_coordinator, build.mail_body(to=bin_b), 403, "to"),
        (
            as_coordinator,
            build.mail_body(audience="zone_coordinators"),
            403,
            "audience",
        ),
        (
            as_zone,
            build.mail_body(audience="zone_coordinators", to=other_zone),
            403,
            "to",
        ),
        (
            as_zone,
            build.mail_body(audience="province_coordinators", to="10000"),
            403,
            "to",
        ),
        (as_zone, build.mail_body(audience="bin", to=bin_a), 403, "to"),
        (as_operator, build.mail_body(audience="province_coordinators"), 422, "to"),
        (
            as_coordinator,
            build.mail_body(attachments=[("notes.txt", b"plain text")]),
            422,
            "attachments.0.content",
        ),
        (
            as_coordinator,
            build.mail_body(attachments=[("cut.pdf", b"%PDF-1.4\n")]),
            422,
            "attachments.0.content",
        ),
        (
            as_coordinator,
            build.mail_body(
                attachments=[("big.png", build.png_bytes(size=(160, 160), noise=True))]
            ),
            413,
            "attachments",
        ),
        (
            as_coordinator,
            {
                **build.mail_body(),
                "attachments": [{"filename": "a.pdf", "content": "not base64!"}],
            },
            422,
            "attachments.0.content",
        ),
        (as_coordinator, {"texts": {}}, 422, "texts"),
    ]
    for client, body, code, field in refusals:
        response = client.post("/v1/mail", json=body)
        assert response.status_code == code, (body.get("audience"), response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        fields = [error["field"] for error in response.json()["errors"]]
        assert field in fields, response.text
    # Alerts and mails share one id space: neither takes over the other's id.
    cap = {"Content-Type": "application/cap+xml"}
    reused = as_zone.post(
        "/v1/alerts", content=build.cap_alert(mail_id, bins=[bin_a]), headers=cap
    )
    assert reused.status_code == 409, reused.text
    alert_id = unique("pzm-alert")  # a mail id is lower case
    sent = as_zone.post(
        "/v1/alerts",
        content=build.cap_alert(alert_id, bins=[bin_a], channels="sms"),
        headers=cap,
    )
    assert sent.status_code == 202, sent.text
    taken = as_coordinator.post("/v1/mail", json=build.mail_body(mail_id=alert_id))
    assert taken.status_code == 409, taken.text
    assert taken.headers["content-type"].startswith("application/problem+json")
    declared = build.mail_body(attachments=[("x.pdf", build.pdf_bytes())])
    declared["attachments"][0]["content_type"] = "image/png"  # type: ignore[index]
    mismatch = as_coordinator.post("/v1/mail", json=declared)
    assert mismatch.status_code == 422
    assert mismatch.json()["errors"][0]["field"] == "attachments.0.content_type"

    # Zone staff write to their cyber advisers (a fraud-wave briefing) and coordinators;
    # an operator to the coordinators of a province.
    audiences = [
        (
            as_zone,
            build.mail_body(audience="zone_cyber_advisers"),
            {adviser, adviser_b},
        ),
        (
            as_zone,
            build.mail_body(audience="zone_coordinators"),
            {coordinator, coordinator_b},
        ),
        (
            as_operator,
            build.mail_body(audience="province_coordinators", to="10000"),
            {coordinator, coordinator_b},
        ),
    ]
    sent = []
    for client, body, reached in audiences:
        response = client.post("/v1/mail", json=body)
        assert response.status_code == 202, response.text
        sent.append((response.json()["mail_id"], {address[m] for m in reached}))
    for sent_id, wanted in sent:
        await wait_for(
            lambda i=sent_id, w=wanted: (
                {m["to"] for m in gateway_messages(env, alert_id=i)} == w
            ),
            what="a mail by role",
        )
    briefing = gateway_messages(env, alert_id=sent[0][0], to=address[adviser])[0]
    assert briefing["subject"].startswith("Vague de fraude")
    await asyncio.sleep(1)
    for sent_id, wanted in sent:
        assert len(gateway_messages(env, alert_id=sent_id)) == len(wanted)

    # Replies: passed to the coordinator, the address withheld unless shared.
    await asyncio.to_thread(
        send_reply,
        env,
        sender=address[private],
        to=relay_address,
        text=f"Ik kom graag.\n\n{address[private]} schreef:\n> {link}\n",
    )
    await asyncio.to_thread(
        send_reply, env, sender=address[sharing], to=relay_address, text="Ik ook!"
    )
    await asyncio.to_thread(
        send_reply,
        env,
        sender="stranger@elsewhere.example",
        to=relay_address,
        text="Wie zijn jullie?",
    )

    def forwarded() -> list[dict[str, Any]] | None:
        found = [
            m
            for m in gateway_messages(env, to=address[coordinator])
            if m["subject"].startswith("Re:")
        ]
        return found if len(found) == 3 else None

    replies = await wait_for(forwarded, what="replies at the coordinator")
    hidden = next(m for m in replies if "Ik kom graag" in m["text"])
    shown = next(m for m in replies if "Ik ook" in m["text"])
    assert address[private] not in header_values(hidden) + hidden["text"]
    assert (
        "[address withheld]" in hidden["text"]
        and "/v1/unsubscribe/" not in hidden["text"]
    )
    assert "Reply-To" not in header_values(hidden)
    stranger = next(m for m in replies if "Wie zijn" in m["text"])
    assert "elsewhere.example" not in header_values(stranger) + stranger["text"]
    assert header(shown, "Reply-To") == address[sharing]
    assert address[sharing] in shown["text"]
    assert not gateway_messages(
        env, to=address[coordinator_b], subject=hidden["subject"]
    )

    for to, code in [
        (f"reply+mail-unknown@{RELAY}", 550),
        (f"reply+{sent[1][0]}@{RELAY}", 550),
    ]:
        try:
            await asyncio.to_thread(
                send_reply, env, sender=address[private], to=to, text="?"
            )
        except smtplib.SMTPRecipientsRefused as error:
            assert error.recipients[to][0] == code
        else:
            raise AssertionError(f"the relay took mail for {to}")
    for client in (as_coordinator, as_zone, as_operator):
        client.close()


def people_ids(people: list[dict[str, Any]]) -> list[str]:
    """The member ids of the seeded people."""
    return [p["id"] for p in people]
