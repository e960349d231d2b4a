"""The registry refuses what it must: foreign scopes, bad tokens, bad input and bad
CSV files, each with a 4xx problem+json and nothing changed; and its CSV import is
all-or-nothing and idempotent.

The module's own api and relay load just two zones, uploaded by an operator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.registry.domain import CSV_MAX_BYTES, CSV_MAX_ROWS
from shared.settings import ServiceSettings
from tests.builders import registry as b
from tests.integration.test_registry_support import (
    Registry,
    TopicLog,
    assert_problem,
    body,
    count,
    raw_documents,
)

pytestmark = pytest.mark.timeout(600)
OPERATOR = b.bearer(b.token("operator"))
ZONE_A, ZONE_B = "ipz10", "ipz21"
CSV = {"content-type": "text/csv"}


@pytest.fixture(scope="module")
async def zones(registry: Registry, topics: TopicLog) -> dict[str, list[str]]:
    """Two zones uploaded by an operator, with their sectors."""
    async with httpx.AsyncClient(base_url=registry.url, timeout=60) as client:
        response = await client.post("/v1/reference/import", headers=OPERATOR,
                                     files=b.reference_subset(ZONE_A, ZONE_B))
        assert response.json() == {"zones": 2, "created": 2, "changed": 0,
                                   "unchanged": 0}, response.text
        return {
            zone: (await client.get(f"/v1/zones/{zone}/sectors")).json()["sectors"]
            for zone in (ZONE_A, ZONE_B)
        }


@pytest.fixture
async def api(registry: Registry, zones: dict) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the registry."""
    async with httpx.AsyncClient(base_url=registry.url, timeout=60) as client:
        yield client


async def found_bin(
    api: httpx.AsyncClient, zones: dict[str, list[str]], zone: str = ZONE_A,
    status: str = "active",
) -> str:
    """A new BIN of a zone, founded by an operator."""
    response = await api.post("/v1/bins", headers=OPERATOR, json=b.bin_in(
        zone, zones[zone][:2], status=status))
    assert response.status_code == 201, response.text
    return response.json()["bin_id"]


async def join(api: httpx.AsyncClient, bin_id: str) -> tuple[str, dict[str, str]]:
    """A member who registered online, and their own token as a header."""
    response = await api.post(f"/v1/bins/{bin_id}/members", json=b.member_in())
    assert response.status_code == 201, response.text
    return response.json()["member_id"], b.bearer(response.json()["token"])


async def state(api: httpx.AsyncClient, bin_ids: list[str], member_ids: list[str]):
    """What could have changed: BIN versions, their members, member versions."""
    bins = {i: (await api.get(f"/v1/bins/{i}", headers=OPERATOR)).json()
            for i in bin_ids}
    members = {i: (await api.get(f"/v1/members/{i}", headers=OPERATOR)).json()
               for i in member_ids}
    listed = {i: sorted(m["member_id"] for m in (await api.get(
        f"/v1/bins/{i}/members", headers=OPERATOR)).json()) for i in bin_ids}
    return ({i: (x["version"], x["status"], x["territory"]) for i, x in bins.items()},
            {i: (x["version"], x["status"], x["contacts"]) for i, x in members.items()},
            listed)


# Scope ------------------------------------------------------------------------


async def test_every_role_is_refused_outside_its_scope(
    api: httpx.AsyncClient, zones: dict[str, list[str]], topics: TopicLog
) -> None:
    bin_x, bin_y = await found_bin(api, zones), await found_bin(api, zones)
    bin_b = await found_bin(api, zones, ZONE_B)
    m1, m1_token = await join(api, bin_x)
    m2, _ = await join(api, bin_y)
    before = await state(api, [bin_x, bin_y, bin_b], [m1, m2])
    zone_b = b.bearer(b.token("zone", ZONE_B))
    coord_x = b.bearer(b.token("coordinator", bin_x))
    study = b.bearer(b.token("study"))
    rows = b.member_csv([b.csv_row()])
    paper = b.member_in(method="paper")
    territory_a = b.bin_in(ZONE_A, zones[ZONE_A][:1])

    refused: list[tuple[dict[str, str], str, str, dict[str, Any]]] = [
        # Zone B's staff cannot touch zone A.
        (zone_b, "POST", "/v1/bins", {"json": territory_a}),
        (zone_b, "GET", "/v1/bins", {"params": {"zone": ZONE_A}}),
        (zone_b, "GET", f"/v1/bins/{bin_x}", {}),
        (zone_b, "PATCH", f"/v1/bins/{bin_x}", {"json": {"status": "dormant"}}),
        (zone_b, "DELETE", f"/v1/bins/{bin_x}", {}),
        (zone_b, "GET", f"/v1/bins/{bin_x}/members", {}),
        (zone_b, "POST", f"/v1/bins/{bin_x}/members", {"json": paper}),
        (zone_b, "POST", f"/v1/bins/{bin_x}/members/import",
         {"content": rows, "headers": CSV}),
        (zone_b, "GET", f"/v1/members/{m1}", {}),
        (zone_b, "PATCH", f"/v1/members/{m1}", {"json": {"language": "de"}}),
        (zone_b, "DELETE", f"/v1/members/{m1}", {}),
        # The coordinator of BIN X reaches only BIN X, and cannot erase or export.
        (coord_x, "GET", f"/v1/bins/{bin_y}", {}),
        (coord_x, "GET", f"/v1/bins/{bin_y}/members", {}),
        (coord_x, "POST", f"/v1/bins/{bin_y}/members", {"json": paper}),
        (coord_x, "POST", f"/v1/bins/{bin_y}/members/import",
         {"content": rows, "headers": CSV}),
        (coord_x, "GET", f"/v1/members/{m2}", {}),
        (coord_x, "PATCH", f"/v1/members/{m2}", {"json": {"language": "de"}}),
        (coord_x, "PATCH", f"/v1/members/{m1}", {"json": {"bin_id": bin_y}}),
        (coord_x, "DELETE", f"/v1/members/{m1}", {}),
        (coord_x, "GET", f"/v1/members/{m1}/export", {}),
        (coord_x, "POST", f"/v1/members/{m1}/consent/withdraw", {}),
        (coord_x, "PATCH", f"/v1/bins/{bin_x}", {"json": {"status": "dormant"}}),
        (coord_x, "DELETE", f"/v1/bins/{bin_x}", {}),
        (coord_x, "POST", "/v1/bins", {"json": territory_a}),
        (coord_x, "GET", "/v1/audit", {}),
        # A member reaches only themselves, and cannot change their role or BIN.
        (m1_token, "GET", f"/v1/members/{m2}", {}),
        (m1_token, "PATCH", f"/v1/members/{m2}", {"json": {"language": "de"}}),
        (m1_token, "DELETE", f"/v1/members/{m2}", {}),
        (m1_token, "GET", f"/v1/members/{m2}/export", {}),
        (m1_token, "POST", f"/v1/members/{m2}/consent/withdraw", {}),
        (m1_token, "PATCH", f"/v1/members/{m1}", {"json": {"role": "coordinator"}}),
        (m1_token, "PATCH", f"/v1/members/{m1}", {"json": {"bin_id": bin_y}}),
        (m1_token, "GET", f"/v1/bins/{bin_x}", {}),
        (m1_token, "GET", f"/v1/bins/{bin_x}/members", {}),
        (m1_token, "POST", f"/v1/bins/{bin_x}/members", {"json": paper}),
        (m1_token, "GET", "/v1/audit", {}),
        (m1_token, "POST", "/v1/reference/import", {}),
        # A study service reads aggregates elsewhere, nothing personal here.
        (study, "GET", f"/v1/members/{m1}", {}),
        (study, "GET", f"/v1/bins/{bin_x}", {}),
        (study, "GET", "/v1/bins", {}),
    ]
    for headers, method, url, extra in refused:
        response = await api.request(method, url, headers={
            **headers, **extra.pop("headers", {})}, **extra)
        assert_problem(response, 403)

    bad_tokens = [b.expired_token(), b.foreign_token(), b.expired_token("member", m1),
                  b.foreign_token("zone", ZONE_A), "not-a-jwt"]
    for bad in bad_tokens:
        for method, url in (("GET", f"/v1/members/{m1}"), ("GET", "/v1/bins"),
                            ("DELETE", f"/v1/members/{m1}"),
                            ("PATCH", f"/v1/bins/{bin_x}")):
            response = await api.request(method, url, headers=b.bearer(bad),
                                         json={"status": "dormant"})
            assert_problem(response, 401)
            assert response.headers["www-authenticate"] == "Bearer"
        assert_problem(await api.post(f"/v1/bins/{bin_x}/members",
                                      headers=b.bearer(bad), json=b.member_in()), 401)
    assert_problem(await api.get(f"/v1/members/{m1}"), 401)
    assert_problem(await api.get(f"/v1/members/{m1}",
                                 headers={"Authorization": "Basic x"}), 401)
    assert_problem(await api.get("/v1/members/m00-nobody", headers=OPERATOR), 404)
    assert_problem(await api.get("/v1/members/zz", headers=OPERATOR), 404)

    # What they may do still works, and nothing above changed anything.
    assert (await api.get(f"/v1/members/{m1}", headers=m1_token)).status_code == 200
    assert (await api.get(f"/v1/bins/{bin_x}", headers=coord_x)).status_code == 200
    own = (await api.get("/v1/bins", headers=zone_b)).json()
    assert [x["bin_id"] for x in own] == [bin_b]
    assert await state(api, [bin_x, bin_y, bin_b], [m1, m2]) == before
    records = await topics.wait("registry.bins.v1", [bin_x, bin_y, bin_b], count(3))
    assert sorted(r.key.decode() for r in records) == sorted([bin_x, bin_y, bin_b])
    records = await topics.wait("registry.memberships.v1", [m1, m2], count(2))
    assert [body(r)["version"] for r in records] == [1, 1]


# Bad input --------------------------------------------------------------------


async def test_bad_input_is_a_4xx_naming_the_field_and_changes_nothing(
    api: httpx.AsyncClient, zones: dict[str, list[str]]
) -> None:
    bin_id = await found_bin(api, zones)
    member_id, me = await join(api, bin_id)
    before = await state(api, [bin_id], [member_id])
    staff = b.bearer(b.token("zone", ZONE_A))
    join_url = f"/v1/bins/{bin_id}/members"

    def member(**overrides: Any) -> dict[str, Any]:
        return b.member_in(**overrides)

    wrong_members = [
        (member(contacts={"phone": "12", "email": b.email()}), "phone"),
        (member(contacts={"phone": "+32 2 12", "email": b.email()}), "phone"),
        (member(contacts={"phone": b.phone(), "email": "not-an-address"}), "email"),
        (member(contacts={"phone": b.phone(), "email": "a@b@example.org"}), "email"),
        (member(contacts={"email": b.email()}, channels=("sms",)), "channels"),
        (member(channels=("sms", "sms")), "channels"),
        (member(channels=("pigeon",)), "channels"),
        (member(language="xx"), "language"),
        ({**member(), "consent": {"notice_version": "2026-01",
                                  "purposes": ["directory_listing"]}}, "purposes"),
        ({k: v for k, v in member().items() if k != "consent"}, "consent"),
        ({**member(), "shoe_size": 44}, "shoe_size"),
        ({**member(), "person": {"given_name": "", "family_name": "X"}}, "given_name"),
    ]
    for sent, field in wrong_members:
        assert_problem(await api.post(join_url, json=sent), 422, field)
    assert_problem(await api.post("/v1/bins/bin-nothere/members", json=member()), 404)
    assert_problem(await api.patch(f"/v1/members/{member_id}", headers=me,
                                   json={"contacts": {"phone": "0000"}}), 422, "phone")
    assert_problem(await api.patch(f"/v1/members/{member_id}", headers=me,
                                   json={"channels": ["app"]}), 422, "channels")

    outside = zones[ZONE_B][:1]
    wrong_bins = [
        (b.bin_in(ZONE_A, zones[ZONE_A][:1] + outside), "territory"),
        (b.bin_in(ZONE_A, ["99999Z99-"]), "territory"),
        (b.bin_in(ZONE_A, []), "territory"),
        (b.bin_in(ZONE_A, zones[ZONE_A][:1], kind="castle"), "kind"),
        (b.bin_in(ZONE_A, zones[ZONE_A][:1], status="sleeping"), "status"),
    ]
    for sent, field in wrong_bins:
        assert_problem(await api.post("/v1/bins", headers=staff, json=sent), 422, field)
    assert_problem(await api.post("/v1/bins", headers=OPERATOR, json=b.bin_in(
        "ipz99999", zones[ZONE_A][:1])), 422, "zone")
    for patch, field in (({"territory": outside}, "territory"),
                         ({"territory": None}, "territory"),
                         ({"name": None}, "name"), ({"kind": None}, "kind"),
                         ({"status": None}, "status"),
                         ({"status": "proposed"}, "status"),
                         ({"founded_on": "yesterday"}, "founded_on")):
        assert_problem(await api.patch(f"/v1/bins/{bin_id}", headers=staff, json=patch),
                       422, field)
    assert_problem(await api.post("/v1/bins", headers=staff, content=b"{not json"), 422)
    assert await state(api, [bin_id], [member_id]) == before


async def test_bad_csv_files_are_refused_whole(
    api: httpx.AsyncClient, zones: dict[str, list[str]]
) -> None:
    bin_id = await found_bin(api, zones)
    url = f"/v1/bins/{bin_id}/members/import"
    coordinator = b.bearer(b.token("coordinator", bin_id))
    good = [b.csv_row() for _ in range(3)]

    def send(content: bytes, headers: dict[str, str] = CSV) -> Any:
        return api.post(url, headers={**coordinator, **headers}, content=content)

    assert_problem(await send(b.member_csv(good), {"content-type": "image/png"}), 415)
    filler = b.member_csv(good) + b"#" * (CSV_MAX_BYTES + 1)
    assert_problem(await send(filler), 413, "file")
    assert_problem(await send(b"\xff\xfe\x00broken"), 422, "file")
    assert_problem(await send(b"given_name,family_name\nA,B\n"), 422, "file")
    assert_problem(await send(b.member_csv([b.csv_row(shoe_size="44")])), 422, "file")
    assert_problem(await send(b.member_csv([])), 422, "file")
    assert_problem(await send(b""), 422, "file")
    assert_problem(await send(b'given_name,family_name,language,channels\n"A\x00,B\n'),
                   422)
    many = "given_name,family_name,language,channels,email\n" + "".join(
        f"A,B,nl,email,a{i}@example.org\n" for i in range(CSV_MAX_ROWS + 1))
    assert_problem(await send(many.encode()), 422, "file")
    extra = b.member_csv(good) + b"Jan,Peeters,,,,,,nl,email,surplus,fields\n"
    problem = assert_problem(await send(extra), 422, "row")
    assert problem["errors"] == [{"row": 5, "field": "row",
                                  "reason": "has more fields than the header"}]
    listed = (await api.get(f"/v1/bins/{bin_id}/members", headers=coordinator)).json()
    assert listed == []


# CSV import -------------------------------------------------------------------


async def test_csv_import_reports_every_bad_row_then_imports_all_once(
    api: httpx.AsyncClient, zones: dict[str, list[str]], topics: TopicLog,
    registry: Registry, platform: ServiceSettings,
) -> None:
    bin_id = await found_bin(api, zones)
    url = f"/v1/bins/{bin_id}/members/import"
    coordinator = {**b.bearer(b.token("coordinator", bin_id)), **CSV}
    rows = [b.csv_row() for _ in range(6)]
    wrong = [dict(r) for r in rows]
    wrong[1]["phone"] = "+32 12"
    wrong[4]["email"] = "nobody-at-example.org"
    wrong[4]["language"] = "tlh"
    wrong[5]["channels"] = "sms"
    wrong[5]["phone"] = ""
    problem = assert_problem(await api.post(url, headers=coordinator,
                                            content=b.member_csv(wrong)), 422)
    assert sorted((e["row"], e["field"]) for e in problem["errors"]) == [
        (3, "phone"), (6, "email"), (6, "language"), (7, "channels")]
    assert "nothing was imported" in problem["detail"]
    for secret in ("+32 12", "nobody-at-example.org"):
        assert secret not in str(problem)
    members = f"/v1/bins/{bin_id}/members"
    assert (await api.get(members, headers=coordinator)).json() == []

    first = await api.post(url, headers=coordinator, content=b.member_csv(rows))
    assert first.json() == {"bin_id": bin_id, "rows": 6, "imported": 6,
                            "already_present": 0}, first.text
    again = await api.post(url, headers=coordinator, content=b.member_csv(rows))
    assert again.json()["imported"] == 0 and again.json()["already_present"] == 6
    more = [rows[0], rows[3], b.csv_row(channels="email")]
    mixed = await api.post(url, headers=coordinator,
                           content=b.member_csv(more, delimiter=";"))
    assert (mixed.json()["imported"], mixed.json()["already_present"]) == (1, 2)

    listed = (await api.get(members, headers=coordinator)).json()
    ids = [m["member_id"] for m in listed]
    assert len(ids) == 7 and {m["status"] for m in listed} == {"active"}
    shown = (await api.get(f"/v1/members/{ids[0]}", headers=coordinator)).json()
    assert shown["consent"]["method"] == "paper"
    assert shown["consent"]["recorded_by"].startswith("coordinator:")
    memberships = await topics.wait("registry.memberships.v1", ids, count(7))
    contacts = await topics.wait("registry.contacts.v1", ids, count(7))
    assert sorted(r.key.decode() for r in memberships) == sorted(ids)
    assert sorted(r.key.decode() for r in contacts) == sorted(ids)

    imports = []
    for member_id in ids:
        audit = (await api.get("/v1/audit", params={"target": member_id},
                               headers=OPERATOR)).json()
        imports.append([e["action"] for e in audit].count("member.import"))
    assert sorted(imports) == [1, 2, 2, 2, 2, 3, 3]
    raw = await raw_documents(platform, registry.database)
    secrets = [s for r in rows + more for s in (r["family_name"], r["email"],
                                                r["phone"].replace(" ", ""))]
    for name, stored in raw.items():
        assert not [s for s in secrets if s.encode() in stored], name

    assert (await api.patch(f"/v1/bins/{bin_id}", headers=OPERATOR,
                            json={"status": "dissolved"})).status_code == 200
    late = await api.post(url, headers=coordinator, content=b.member_csv([b.csv_row()]))
    assert_problem(late, 422, "bin_id")
