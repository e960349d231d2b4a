"""The registry on the real stack: reference data, BINs and members through HTTP,
their events on Kafka, and the personal data that must stay out of sight.

One api and one relay process with their own database serve the whole module;
the reference data is imported once, from the configured directory.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared.catalogue import CONTACTS_CONFIGS
from shared.crypto import keyring_from_settings, open_json
from shared.events import Sealed
from shared.settings import ServiceSettings
from tests.builders import registry as b
from tests.integration.test_registry_support import (
    Registry,
    TopicLog,
    assert_problem,
    body,
    count,
    distinct,
    header,
    raw_bytes,
    raw_documents,
)

pytestmark = pytest.mark.timeout(600)
OPERATOR = b.bearer(b.token("operator"))
ZONE_A, ZONE_B = "ipz10", "ipz21"  # PZ Schoten, PZ Geel - Laakdal - Meerhout


@pytest.fixture(scope="module")
async def imported(registry: Registry, topics: TopicLog) -> dict[str, Any]:
    """The answer of the module's reference import."""
    async with httpx.AsyncClient(base_url=registry.url, timeout=120) as client:
        response = await client.post("/v1/reference/import", headers=OPERATOR)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
async def api(registry: Registry, imported: dict) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the registry, the reference data loaded."""
    async with httpx.AsyncClient(base_url=registry.url, timeout=60) as client:
        yield client


async def sectors(api: httpx.AsyncClient, zone: str) -> list[str]:
    """The statistical sectors of a zone."""
    response = await api.get(f"/v1/zones/{zone}/sectors")
    assert response.status_code == 200
    return response.json()["sectors"]


async def new_bin(
    api: httpx.AsyncClient, zone: str = ZONE_A, *, status: str = "active", **body: Any
) -> dict[str, Any]:
    """A BIN founded by the zone's staff, covering two of its sectors."""
    territory = (await sectors(api, zone))[:2]
    response = await api.post("/v1/bins", headers=b.bearer(b.token("zone", zone)),
                              json=b.bin_in(zone, territory, status=status, **body))
    assert response.status_code == 201, response.text
    return response.json()


async def register(api: httpx.AsyncClient, bin_id: str, **body: Any) -> dict[str, Any]:
    """A member who registered themselves online."""
    response = await api.post(f"/v1/bins/{bin_id}/members", json=b.member_in(**body))
    assert response.status_code == 201, response.text
    return response.json()


def versions(records: list) -> list[int | None]:
    """The versions of distinct snapshots in order, None for a tombstone."""
    return [None if body(r) is None else body(r)["version"] for r in distinct(records)]


# Reference data ---------------------------------------------------------------


async def test_reference_import_loads_zones_and_publishes_them(
    api: httpx.AsyncClient, imported: dict, topics: TopicLog
) -> None:
    assert imported["zones"] == 107
    assert imported["created"] + imported["changed"] + imported["unchanged"] == 107
    codes = [z["zone"] for z in (await api.get("/v1/zones")).json()]
    assert len(codes) == 107
    records = await topics.wait("registry.zones.v1", codes,
                                lambda rs: {r.key for r in rs} >= {c.encode()
                                                                   for c in codes})
    schoten = [body(r) for r in records if r.key == b"ipz10"][-1]
    assert len(schoten["units"]) == 38
    assert schoten["municipalities"][0]["nis"] == "11040"
    assert header(records[0], "ce_source") == "registry"
    assert header(records[0], "ce_type") == "be.bin.registry.zone.v1"

    again = await api.post("/v1/reference/import", headers=OPERATOR)
    assert again.json() == {"zones": 107, "created": 0, "changed": 0, "unchanged": 107}
    assert_problem(await api.post("/v1/reference/import"), 401)
    assert_problem(await api.post("/v1/reference/import",
                                  headers=b.bearer(b.token("zone", ZONE_A))), 403)


async def test_a_malformed_reference_upload_is_refused_and_changes_nothing(
    api: httpx.AsyncClient,
) -> None:
    zones = (b"zone_code,zone_name,municipality_nis,municipality_name,"
             b"arrondissement_nis,arrondissement_name,province_nis,province_name,"
             b"region\n"
             b"ipz10,PZ Schoten,1104X,Schoten,11000,Antwerpen,10000,Antwerpen,Vlaams\n")
    sectors_csv = (b"sector_code,sector_name,municipality_nis,municipality_name,"
                   b"zone_code,zone_name,province_name\n")
    response = await api.post("/v1/reference/import", headers=OPERATOR,
                              files={"zones": ("z.csv", zones, "text/csv"),
                                     "sectors": ("s.csv", sectors_csv, "text/csv")})
    assert_problem(response, 422, "municipality_nis")
    only_one = await api.post("/v1/reference/import", headers=OPERATOR,
                              files={"zones": ("z.csv", zones, "text/csv")})
    assert_problem(only_one, 422)
    zone = (await api.get("/v1/zones/ipz10")).json()
    assert zone["version"] == 1 and zone["sector_count"] == 38


async def test_public_read_api_lists_zones_by_province_zone_and_postcode(
    api: httpx.AsyncClient,
) -> None:
    antwerp = (await api.get("/v1/zones", params={"province": "10000"})).json()
    assert len(antwerp) == 22
    assert {z["province_name"] for z in antwerp} == {"Antwerpen"}
    by_code = {z["zone"]: z for z in antwerp}
    assert {c: by_code[c]["sector_count"] for c in ("ipz21", "ipz10", "ipz9")} == {
        "ipz21": 92, "ipz10": 38, "ipz9": 70}
    assert sum(z["municipality_count"] for z in antwerp) == 67

    zone = (await api.get("/v1/zones/ipz21")).json()
    assert zone["name"] == "PZ Geel - Laakdal - Meerhout"
    assert zone["sector_count"] == 92
    assert {m["name_nl"] for m in zone["municipalities"]} == {"Geel", "Laakdal",
                                                             "Meerhout"}
    postcode = (await api.get("/v1/postcodes/2900")).json()
    assert [(m["nis"], m["zone"]) for m in postcode["municipalities"]] == [
        ("11040", "ipz10")]
    assert_problem(await api.get("/v1/zones/ipz99999"), 404)
    assert_problem(await api.get("/v1/postcodes/0000"), 404)
    assert_problem(await api.get("/v1/postcodes/29x0"), 404)
    short = await api.get("/v1/zones", params={"province": "1"})
    assert_problem(short, 422, "province")


# BINs -------------------------------------------------------------------------


async def test_bin_lifecycle_publishes_snapshots_and_a_tombstone(
    api: httpx.AsyncClient, topics: TopicLog, registry: Registry,
    platform: ServiceSettings,
) -> None:
    staff = b.bearer(b.token("zone", ZONE_A))
    units = await sectors(api, ZONE_A)
    created = await api.post("/v1/bins", headers=staff, json=b.bin_in(
        ZONE_A, units[:3], kind="business", founded_on="2024-05-01"))
    assert created.status_code == 201, created.text
    bin_ = created.json()
    assert (bin_["status"], bin_["version"]) == ("proposed", 1)
    assert bin_["kind"] == "business"
    url = f"/v1/bins/{bin_['bin_id']}"

    for change, version in (({"status": "active"}, 2),
                            ({"territory": units[2:6] + units[2:3]}, 3),
                            ({"status": "dormant", "name": "BIN Centrum"}, 4),
                            ({"status": "dissolved"}, 5)):
        response = await api.patch(url, headers=staff, json=change)
        assert response.status_code == 200, response.text
        assert response.json()["version"] == version
    shown = (await api.get(url, headers=staff)).json()
    assert shown["territory"] == sorted(units[2:6])
    assert (shown["status"], shown["name"]) == ("dissolved", "BIN Centrum")
    assert_problem(await api.patch(url, headers=staff, json={"status": "active"}), 422,
                   "status")

    assert (await api.delete(url, headers=staff)).status_code == 204
    assert_problem(await api.get(url, headers=staff), 404)
    records = distinct(await topics.wait("registry.bins.v1", [bin_["bin_id"]], count(6)))
    assert versions(records) == [1, 2, 3, 4, 5, None]
    assert [body(r)["status"] for r in records[:5]] == [
        "proposed", "active", "active", "dormant", "dissolved"]
    assert body(records[2])["territory"] == sorted(units[2:6])
    assert header(records[5], "ce_type") == "be.bin.registry.bin.v1"
    assert len({header(r, "ce_id") for r in records}) == 6


# Members ----------------------------------------------------------------------


async def test_member_lifecycle_from_registration_to_erasure(
    api: httpx.AsyncClient, topics: TopicLog, registry: Registry,
    platform: ServiceSettings,
) -> None:
    bin_ = await new_bin(api)
    bin_id = bin_["bin_id"]
    coordinator = b.bearer(b.token("coordinator", bin_id))
    phone, email = b.phone(), b.email()
    body_in = b.member_in(contacts={"phone": phone, "email": email},
                          channels=("sms", "email", "voice"), language="fr")
    family = body_in["person"]["family_name"]
    created = await api.post(f"/v1/bins/{bin_id}/members", json=body_in)
    assert created.status_code == 201, created.text
    member_id, me = created.json()["member_id"], b.bearer(created.json()["token"])

    mine = (await api.get(f"/v1/members/{member_id}", headers=me)).json()
    e164 = phone.replace(" ", "")
    assert mine["contacts"] == {"phone": e164, "email": email, "app_token": None}
    assert mine["person"]["family_name"] == family
    assert (mine["status"], mine["language"], mine["version"]) == ("active", "fr", 1)
    assert mine["consent"]["method"] == "online"
    assert mine["consent"]["purposes"] == ["bin_messages", "coordinator_mail"]
    assert mine["consent"]["recorded_by"] is None

    # Paper consent, recorded by the coordinator and by the zone's staff.
    paper = await api.post(f"/v1/bins/{bin_id}/members", headers=coordinator,
                           json=b.member_in(method="paper", channels=("email",)))
    assert paper.status_code == 201, paper.text
    by_staff = await api.post(f"/v1/bins/{bin_id}/members",
                              headers=b.bearer(b.token("zone", ZONE_A)),
                              json=b.member_in(method="paper", role="coordinator"))
    assert by_staff.status_code == 201, by_staff.text
    assert "token" not in paper.json() and "token" not in by_staff.json()
    paper_id = paper.json()["member_id"]
    shown = (await api.get(f"/v1/members/{paper_id}", headers=coordinator)).json()
    assert shown["consent"]["method"] == "paper"
    assert shown["consent"]["recorded_by"].startswith("coordinator:")
    assert_problem(await api.post(f"/v1/bins/{bin_id}/members",
                                  json=b.member_in(method="paper")), 401)
    listed = (await api.get(f"/v1/bins/{bin_id}/members", headers=coordinator)).json()
    assert {m["member_id"] for m in listed} == {
        member_id, paper_id, by_staff.json()["member_id"]}
    assert all("contacts" not in m and "person" not in m for m in listed)

    # The member corrects their address and e-mail, then exports everything.
    new_email = b.email()
    corrected = await api.patch(f"/v1/members/{member_id}", headers=me, json={
        "contacts": {"email": new_email}, "person": {**body_in["person"],
                                                     "street": "Kerkstraat 1"}})
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["contacts"]["email"] == new_email
    assert corrected.json()["contacts"]["phone"] == e164
    assert corrected.json()["version"] == 2
    export = await api.get(f"/v1/members/{member_id}/export", headers=me)
    assert export.status_code == 200
    assert "attachment" in export.headers["content-disposition"]
    exported = json.loads(export.content)
    assert exported["member"]["person"]["street"] == "Kerkstraat 1"
    assert {"member.register", "member.read", "member.correct"} <= {
        e["action"] for e in exported["audit_trail"]}

    # The contacts on the topic are sealed, and open to the new address.
    contacts = distinct(await topics.wait("registry.contacts.v1", [member_id], count(2)))
    ring = keyring_from_settings(platform.contacts_keys,
                                 platform.contacts_active_key_id)
    sealed = Sealed(**body(contacts[-1])["contacts"])
    assert open_json(ring, sealed, owner=member_id) == {
        "sms": e164, "voice": e164, "email": new_email}
    assert versions(contacts) == [1, 2]

    # Withdrawing consent: status withdrawn, contacts leave the topic.
    withdrawn = await api.post(f"/v1/members/{member_id}/consent/withdraw", headers=me)
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    # A later correction stays in the registry: nothing goes back to messaging.
    later = await api.patch(f"/v1/members/{member_id}", headers=me,
                            json={"contacts": {"email": b.email()}})
    assert later.status_code == 200, later.text

    # Erasure: gone from the store and from the topics.
    assert (await api.delete(f"/v1/members/{member_id}", headers=me)).status_code == 204
    assert_problem(await api.get(f"/v1/members/{member_id}", headers=me), 404)
    memberships = distinct(
        await topics.wait("registry.memberships.v1", [member_id], count(5)))
    assert [body(r)["status"] for r in memberships] == [
        "active", "active", "withdrawn", "withdrawn", "erased"]
    assert versions(memberships) == [1, 2, 3, 4, 5]
    contacts = distinct(await topics.wait("registry.contacts.v1", [member_id], count(4)))
    assert versions(contacts) == [1, 2, None, None]
    for record in memberships:
        assert set(body(record)) >= {"member_id", "bin_id", "status", "version"}
        assert "contacts" not in body(record)

    raw = await raw_documents(platform, registry.database)
    stored = b"".join(raw.values())
    assert member_id.encode() in stored
    for secret in (e164, email, new_email, family, "Kerkstraat"):
        assert secret.encode() not in stored, secret
    audit = (await api.get("/v1/audit", params={"target": member_id},
                           headers=OPERATOR)).json()
    assert [e["action"] for e in reversed(audit)] == [
        "member.register", "member.read", "member.correct", "member.read",
        "member.export", "member.withdraw", "member.correct", "member.erase"]
    assert all(set(e) == {"at", "actor", "action", "target_kind", "target_ids",
                          "fields"} for e in audit)


async def test_contact_details_are_unreadable_in_the_database_kafka_and_logs(
    api: httpx.AsyncClient, topics: TopicLog, registry: Registry,
    platform: ServiceSettings,
) -> None:
    bin_ = await new_bin(api)
    people = [b.member_in(contacts={"phone": b.phone(), "email": b.email()})
              for _ in range(3)]
    ids = []
    for person in people:
        response = await api.post(f"/v1/bins/{bin_['bin_id']}/members", json=person)
        ids.append(response.json()["member_id"])
    secrets = [s.encode() for p in people for s in (
        p["contacts"]["phone"].replace(" ", ""), p["contacts"]["email"],
        p["person"]["family_name"], p["person"]["street"])]

    raw = await raw_documents(platform, registry.database)
    assert any(i.encode() in stored for stored in raw.values() for i in ids)
    for name, stored in raw.items():
        for secret in secrets:
            assert secret not in stored, (name, secret)
    await topics.wait("registry.contacts.v1", ids, count(3))
    await topics.wait("registry.memberships.v1", ids, count(3))
    for topic in ("registry.memberships.v1", "registry.contacts.v1",
                  "registry.bins.v1"):
        for record in await topics.read(topic):
            for secret in secrets:
                assert secret not in raw_bytes(record), (topic, secret)
    logs = registry.logs().encode()
    assert logs, "the processes log something"
    assert not [s for s in secrets if s in logs]


async def test_the_contacts_topic_bounds_how_long_erased_records_stay(
    platform: ServiceSettings,
) -> None:
    admin = AIOKafkaAdminClient(**platform.kafka_client_options())
    await admin.start()
    try:
        [described] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, "registry.contacts.v1")])
    finally:
        await admin.close()
    _, _, _, _, entries = described.resources[0]
    configs = {name: value for name, value, *_ in entries}
    assert configs["cleanup.policy"] == "compact"
    for name, value in CONTACTS_CONFIGS.items():
        assert configs[name] == value, name
