"""Issue 9 in the registry: cyber advisers, the e-mail a member shares with their
coordinator, unsubscribe links, and the directory of BIN actors that the registry's
own topics keep current.

The module's own api, relay and directory projection load just two zones.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from shared.settings import ServiceSettings
from tests.builders import registry as b
from tests.integration.test_registry_support import (
    Registry,
    TopicLog,
    assert_problem,
    body,
    raw_documents,
)

pytestmark = pytest.mark.timeout(600)
OPERATOR = b.bearer(b.token("operator"))
STUDY = b.bearer(b.token("study"))
ZONE_A, ZONE_B = "ipz10", "ipz21"  # PZ Schoten, PZ Geel - Laakdal - Meerhout
SCHOTEN = "11040"
MEMBERSHIPS = "registry.memberships.v1"
FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
async def zones(registry: Registry, topics: TopicLog) -> dict[str, list[str]]:
    """Two zones uploaded by an operator, with their sectors; the projection runs."""
    registry.start_directory()
    async with httpx.AsyncClient(base_url=registry.url, timeout=60) as client:
        response = await client.post("/v1/reference/import", headers=OPERATOR,
                                     files=b.reference_subset(ZONE_A, ZONE_B))
        assert response.status_code == 200, response.text
        return {
            zone: (await client.get(f"/v1/zones/{zone}/sectors")).json()["sectors"]
            for zone in (ZONE_A, ZONE_B)
        }


@pytest.fixture
async def api(registry: Registry, zones: dict) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the registry."""
    async with httpx.AsyncClient(base_url=registry.url, timeout=60) as client:
        yield client


async def found_bin(api: httpx.AsyncClient, zones: dict, zone: str = ZONE_A) -> str:
    """A new active BIN of a zone, founded by an operator."""
    response = await api.post("/v1/bins", headers=OPERATOR, json=b.bin_in(
        zone, zones[zone][:2], status="active"))
    assert response.status_code == 201, response.text
    return response.json()["bin_id"]


async def join(api: httpx.AsyncClient, bin_id: str, *, staff: dict | None = None,
               **body_in: Any) -> tuple[str, dict[str, str], dict[str, Any]]:
    """A registered member, their token header (online only) and what was sent."""
    sent = b.member_in(method="paper" if staff else "online", **body_in)
    response = await api.post(f"/v1/bins/{bin_id}/members", json=sent, headers=staff)
    assert response.status_code == 201, response.text
    answer = response.json()
    # Staff who register someone get no token to act as them.
    assert ("token" in answer) is (staff is None)
    own = b.bearer(answer["token"]) if staff is None else {}
    return answer["member_id"], own, sent


async def directory_until(
    api: httpx.AsyncClient, check: Callable[[list[dict]], bool], *,
    params: dict[str, str] | None = None, timeout_s: float = 60,
) -> list[dict[str, Any]]:
    """Reads the directory until `check` holds for its rows."""
    deadline = time.monotonic() + timeout_s
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        response = await api.get("/v1/directory", headers=OPERATOR, params=params)
        assert response.status_code == 200, response.text
        rows = response.json()
        if check(rows):
            return rows
        await asyncio.sleep(0.5)
    raise AssertionError(f"the directory never got there: {len(rows)} rows")


def of_bin(rows: list[dict], bin_id: str, kind: str) -> list[dict]:
    """The rows of one kind for one BIN."""
    return [r for r in rows if r.get("bin_id") == bin_id and r["kind"] == kind]


# Unsubscribe ------------------------------------------------------------------


async def test_an_unsubscribe_link_stops_email_once_and_is_published(
    api: httpx.AsyncClient, zones: dict, topics: TopicLog, registry: Registry,
    platform: ServiceSettings,
) -> None:
    bin_id = await found_bin(api, zones)
    member_id, me, sent = await join(api, bin_id, channels=("sms", "email"),
                                     language="fr")
    link = f"/v1/unsubscribe/{b.unsubscribe(member_id)}"

    page = await api.get(link, headers={"accept": "text/html"})
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert '<html lang="fr">' in page.text and "e-mail" in page.text
    assert page.headers["cache-control"] == "no-store"
    again = await api.get(link, headers={"accept": "application/json"})
    assert again.json() == {"status": "unsubscribed", "channel": "email",
                            "language": "fr", "changed": False}
    clicked = await api.post(link, content="List-Unsubscribe=One-Click", headers=FORM)
    assert clicked.status_code == 200 and clicked.json()["changed"] is False
    mine = (await api.get(f"/v1/members/{member_id}", headers=me)).json()
    assert (mine["channels"], mine["version"]) == (["sms"], 2)
    assert mine["contacts"]["email"] == sent["contacts"]["email"]

    records = await topics.wait(MEMBERSHIPS, [member_id], lambda rs: len(rs) >= 2)
    assert [body(r)["channels"] for r in records] == [["sms", "email"], ["sms"]]
    audit = (await api.get("/v1/audit", params={"target": member_id},
                           headers=OPERATOR)).json()
    assert [e["action"] for e in audit].count("member.unsubscribe") == 1
    unsubscribed = next(e for e in audit if e["action"] == "member.unsubscribe")
    assert unsubscribed["fields"] == ["channels"]
    assert sent["contacts"]["email"] not in str(audit)

    # A second link of another mail works the same, once more without a change.
    other = await api.post(f"/v1/unsubscribe/{b.unsubscribe(member_id)}")
    assert other.status_code == 200 and other.json()["changed"] is False


async def test_a_bad_or_stale_unsubscribe_link_is_refused_without_a_500(
    api: httpx.AsyncClient, zones: dict, registry: Registry, platform: ServiceSettings,
) -> None:
    bin_id = await found_bin(api, zones)
    member_id, me, _ = await join(api, bin_id, channels=("email",))
    foreign = "someone-elses-key-" + "0" * 32
    for token in ("not-a-token", b.unsubscribe(member_id, secret=foreign),
                  b.token("member", member_id), b.unsubscribe(member_id, channel="fax"),
                  b.unsubscribe("zzz")):
        for method in ("GET", "POST"):
            response = await api.request(method, f"/v1/unsubscribe/{token}")
            assert_problem(response, 400, "token")
    assert_problem(await api.get(f"/v1/unsubscribe/{b.unsubscribe('m00-' + '0' * 20)}"),
                   404)
    not_one_click = await api.post(f"/v1/unsubscribe/{b.unsubscribe(member_id)}",
                                   content="List-Unsubscribe=Yes", headers=FORM)
    assert_problem(not_one_click, 422, "List-Unsubscribe")

    # The only channel can go: the member stays registered and gets no e-mail.
    done = await api.post(f"/v1/unsubscribe/{b.unsubscribe(member_id)}")
    assert done.status_code == 200 and done.json()["changed"] is True
    assert (await api.get(f"/v1/members/{member_id}", headers=me)).json()[
        "channels"] == []
    assert (await api.delete(f"/v1/members/{member_id}", headers=me)).status_code == 204
    assert_problem(await api.get(f"/v1/unsubscribe/{b.unsubscribe(member_id)}"), 410)
    assert "Traceback" not in registry.logs()


# Cyber advisers ---------------------------------------------------------------


async def test_cyber_advisers_are_registered_imported_corrected_and_published(
    api: httpx.AsyncClient, zones: dict, topics: TopicLog, registry: Registry,
    platform: ServiceSettings,
) -> None:
    bin_id = await found_bin(api, zones)
    coordinator = b.bearer(b.token("coordinator", bin_id))
    staff = b.bearer(b.token("zone", ZONE_A))
    by_staff, _, _ = await join(api, bin_id, staff=staff, role="cyber_adviser")
    by_coordinator, _, _ = await join(api, bin_id, staff=coordinator,
                                      role="cyber_adviser")
    assert_problem(await api.post(f"/v1/bins/{bin_id}/members",
                                  json=b.member_in(role="cyber_adviser")), 401)
    imported = await api.post(
        f"/v1/bins/{bin_id}/members/import", headers={**coordinator,
                                                       "content-type": "text/csv"},
        content=b.member_csv([b.csv_row(role="cyber_adviser"), b.csv_row()]))
    assert imported.status_code == 200 and imported.json()["imported"] == 2
    assert_problem(await api.post(
        f"/v1/bins/{bin_id}/members/import", headers={**coordinator,
                                                       "content-type": "text/csv"},
        content=b.member_csv([b.csv_row(role="cyber-adviser")])), 422, "role")
    plain, me, _ = await join(api, bin_id)
    assert_problem(await api.patch(f"/v1/members/{plain}", headers=me,
                                   json={"role": "cyber_adviser"}), 403)
    promoted = await api.patch(f"/v1/members/{plain}", headers=staff,
                               json={"role": "cyber_adviser"})
    assert promoted.status_code == 200 and promoted.json()["role"] == "cyber_adviser"

    listed = (await api.get(f"/v1/bins/{bin_id}/members", headers=coordinator)).json()
    advisers = {m["member_id"] for m in listed if m["role"] == "cyber_adviser"}
    assert {by_staff, by_coordinator, plain} <= advisers and len(advisers) == 4
    records = await topics.wait(MEMBERSHIPS, advisers,
                                lambda rs: len(rs) >= len(advisers) + 1)
    latest = {r.key.decode(): body(r) for r in records}
    assert {m["role"] for m in latest.values()} == {"cyber_adviser"}


# Sharing the e-mail with the coordinator -----------------------------------------


async def test_a_coordinator_sees_an_email_only_when_the_member_shares_it(
    api: httpx.AsyncClient, zones: dict, topics: TopicLog, registry: Registry,
    platform: ServiceSettings,
) -> None:
    bin_id = await found_bin(api, zones)
    coordinator = b.bearer(b.token("coordinator", bin_id))
    sharing, _, shared_in = await join(api, bin_id, share_email_with_coordinator=True)
    private, me, private_in = await join(api, bin_id)

    shown = (await api.get(f"/v1/members/{sharing}", headers=coordinator)).json()
    assert shown["contacts"]["email"] == shared_in["contacts"]["email"]
    hidden = await api.get(f"/v1/members/{private}", headers=coordinator)
    assert hidden.json()["contacts"]["email"] is None
    assert hidden.json()["contacts"]["phone"] is not None
    assert private_in["contacts"]["email"] not in hidden.text
    assert hidden.json()["share_email_with_coordinator"] is False
    own = (await api.get(f"/v1/members/{private}", headers=me)).json()
    assert own["contacts"]["email"] == private_in["contacts"]["email"]

    for who in (coordinator, b.bearer(b.token("zone", ZONE_A)), OPERATOR):
        assert_problem(await api.patch(f"/v1/members/{private}", headers=who,
                                       json={"share_email_with_coordinator": True}), 403)
    # Nor can the coordinator overwrite the address they are not shown.
    assert_problem(await api.patch(f"/v1/members/{private}", headers=coordinator,
                                   json={"contacts": {"email": b.email()}}), 403)
    changed = await api.patch(f"/v1/members/{private}", headers=coordinator,
                              json={"language": "en"})
    assert changed.status_code == 200
    assert private_in["contacts"]["email"] not in changed.text
    agreed = await api.patch(f"/v1/members/{private}", headers=me,
                             json={"share_email_with_coordinator": True})
    assert agreed.status_code == 200, agreed.text
    shown = (await api.get(f"/v1/members/{private}", headers=coordinator)).json()
    assert shown["contacts"]["email"] == private_in["contacts"]["email"]
    assert_problem(await api.patch(f"/v1/members/{private}", headers=me,
                                   json={"share_email_with_coordinator": "maybe"}),
                   422, "share_email_with_coordinator")

    records = await topics.wait(MEMBERSHIPS, [sharing, private],
                                lambda rs: len(rs) >= 4)
    flags = [(r.key.decode(), body(r)["shares_email_with_coordinator"]) for r in records]
    assert [f for k, f in flags if k == private] == [False, False, True]
    assert [f for k, f in flags if k == sharing] == [True]


# Directory --------------------------------------------------------------------


async def test_the_directory_holds_only_what_each_actor_agreed_to_list(
    api: httpx.AsyncClient, zones: dict, registry: Registry, platform: ServiceSettings,
) -> None:
    bin_id = await found_bin(api, zones)
    staff = b.bearer(b.token("zone", ZONE_A))
    _, _, listed_in = await join(
        api, bin_id, role="coordinator", staff=staff, directory_listing=["name", "email"])
    unlisted, _, _ = await join(api, bin_id, role="coordinator", staff=staff)
    # Fields to list without the consent to be listed are refused.
    unconsented = b.member_in(method="paper", role="coordinator")
    unconsented["directory_listing"] = ["name", "phone"]
    assert_problem(await api.post(f"/v1/bins/{bin_id}/members", json=unconsented,
                                  headers=staff), 422, "directory_listing")
    police = b.listed_contact(email=None)
    response = await api.put(f"/v1/bins/{bin_id}/police-contact", headers=staff,
                             json=police)
    assert response.status_code == 200, response.text
    assert set(response.json()) >= {"listing_id", "name", "phone"}
    assert "email" not in response.json()
    officer = b.listed_contact(phone=None)
    response = await api.put(f"/v1/municipalities/{SCHOTEN}/prevention-officer",
                             headers=staff, json=officer)
    assert response.status_code == 200, response.text

    def complete(rows: list[dict]) -> bool:
        return (len(of_bin(rows, bin_id, "coordinator")) == 1
                and len(of_bin(rows, bin_id, "police_contact")) == 1
                and any(r["kind"] == "prevention_officer"
                        and r.get("name") == officer["name"] for r in rows))

    rows = await directory_until(api, complete, params={"zone": ZONE_A})
    [coordinator_row] = of_bin(rows, bin_id, "coordinator")
    person = listed_in["person"]
    assert coordinator_row == {
        "kind": "coordinator", "province_nis": "10000", "zone": ZONE_A,
        "municipalities": [SCHOTEN], "bin_id": bin_id,
        "bin_name": coordinator_row["bin_name"],
        "name": f"{person['given_name']} {person['family_name']}",
        "email": listed_in["contacts"]["email"]}
    [police_row] = of_bin(rows, bin_id, "police_contact")
    assert {k: police_row.get(k) for k in ("name", "phone", "email")} == {
        "name": police["name"], "phone": police["phone"].replace(" ", ""),
        "email": None}
    assert "email" not in police_row
    [officer_row] = [r for r in rows if r["kind"] == "prevention_officer"
                     and r["name"] == officer["name"]]
    assert set(officer_row) == {"kind", "province_nis", "zone", "municipalities",
                                "name", "email"}
    assert officer_row["municipalities"] == [SCHOTEN]
    everything = str(rows)
    assert listed_in["contacts"]["phone"].replace(" ", "") not in everything
    assert listed_in["person"]["street"] not in everything

    # Filters: by province and municipality it is there, in the other zone not.
    for params in ({"province": "10000"}, {"municipality": SCHOTEN}):
        found = (await api.get("/v1/directory", headers=STUDY, params=params)).json()
        assert of_bin(found, bin_id, "coordinator"), params
    other = (await api.get("/v1/directory", headers=OPERATOR,
                           params={"zone": ZONE_B})).json()
    assert not [r for r in other if r.get("bin_id") == bin_id]

    # CSV, by query and by Accept: every column, empty where nothing is listed.
    for how in ({"params": {"format": "csv", "zone": ZONE_A}},
                {"params": {"zone": ZONE_A}, "headers": {**STUDY, "accept": "text/csv"}}):
        how.setdefault("headers", OPERATOR)
        response = await api.get("/v1/directory", **how)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        table = list(csv.DictReader(io.StringIO(response.text)))
        [line] = [r for r in table if r["bin_id"] == bin_id and r["kind"] == "coordinator"]
        assert line["email"] == listed_in["contacts"]["email"] and line["phone"] == ""
        assert line["municipalities"] == SCHOTEN
    assert unlisted not in everything

    # The reads are audited: who, which filter, how many rows, no personal data.
    audit = [e for e in (await api.get("/v1/audit", headers=OPERATOR)).json()
             if e["action"] == "directory.read"]
    assert any(e["fields"] == [f"zone={ZONE_A}"] and e["actor"].startswith("study:")
               and e["rows"] >= 3 for e in audit)
    assert person["family_name"] not in str(audit)
    assert officer["name"] not in str(audit) and police["name"] not in str(audit)

    # Encrypted at rest: the projection and the listings hold no clear details.
    raw = b"".join((await raw_documents(platform, registry.database)).values())
    for secret in (police["name"], officer["email"], person["family_name"]):
        assert secret.encode() not in raw, secret


async def test_the_directory_follows_coordinators_stepping_down_erasure_and_bins(
    api: httpx.AsyncClient, zones: dict, registry: Registry, platform: ServiceSettings,
) -> None:
    bin_id = await found_bin(api, zones)
    staff = b.bearer(b.token("zone", ZONE_A))
    leaving, _, _ = await join(api, bin_id, role="coordinator", staff=staff,
                               directory_listing=["name"])
    # A member who registered online is made coordinator by staff, then chooses
    # what the directory lists of them: only they can.
    erased, erased_me, erased_in = await join(api, bin_id)
    promoted = await api.patch(f"/v1/members/{erased}", headers=staff,
                               json={"role": "coordinator"})
    assert promoted.status_code == 200
    assert_problem(await api.patch(f"/v1/members/{erased}", headers=staff,
                                   json={"directory_listing": ["phone"]}), 403)
    assert_problem(await api.patch(f"/v1/members/{erased}", headers=erased_me,
                                   json={"directory_listing": ["fax"]}), 422,
                   "directory_listing")
    chosen = await api.patch(f"/v1/members/{erased}", headers=erased_me,
                             json={"directory_listing": ["phone"]})
    assert chosen.status_code == 200, chosen.text
    assert (await api.put(f"/v1/bins/{bin_id}/police-contact", headers=OPERATOR,
                          json=b.listed_contact())).status_code == 200

    rows = await directory_until(api, lambda rows: len(
        of_bin(rows, bin_id, "coordinator")) == 2 and of_bin(rows, bin_id,
                                                              "police_contact"))
    phones = [r for r in of_bin(rows, bin_id, "coordinator") if "phone" in r]
    assert phones == [{**phones[0], "phone": erased_in["contacts"]["phone"].replace(
        " ", "")}] and "name" not in phones[0]

    stepped = await api.patch(f"/v1/members/{leaving}", headers=staff,
                              json={"role": "member"})
    assert stepped.status_code == 200
    rows = await directory_until(api, lambda rows: len(
        of_bin(rows, bin_id, "coordinator")) == 1)
    assert "phone" in of_bin(rows, bin_id, "coordinator")[0]

    assert (await api.delete(f"/v1/members/{erased}",
                             headers=erased_me)).status_code == 204
    await directory_until(api, lambda rows: not of_bin(rows, bin_id, "coordinator"))

    response = await api.patch(f"/v1/bins/{bin_id}", headers=staff,
                               json={"status": "dissolved"})
    assert response.status_code == 200
    await directory_until(api, lambda rows: not of_bin(rows, bin_id, "police_contact"))


async def test_the_directory_and_its_contacts_are_refused_outside_their_scope(
    api: httpx.AsyncClient, zones: dict,
) -> None:
    bin_id = await found_bin(api, zones)
    _, me, _ = await join(api, bin_id)
    for who in (b.bearer(b.token("zone", ZONE_A)), b.bearer(b.token("coordinator",
                                                                      bin_id)), me):
        assert_problem(await api.get("/v1/directory", headers=who), 403)
        assert_problem(await api.get("/v1/directory", headers=who,
                                     params={"format": "csv"}), 403)
    assert_problem(await api.get("/v1/directory"), 401)
    other_zone = b.bearer(b.token("zone", ZONE_B))
    assert_problem(await api.put(f"/v1/bins/{bin_id}/police-contact", headers=other_zone,
                                 json=b.listed_contact()), 403)
    assert_problem(await api.put(f"/v1/municipalities/{SCHOTEN}/prevention-officer",
                                 headers=other_zone, json=b.listed_contact()), 403)
    assert_problem(await api.delete(f"/v1/bins/{bin_id}/police-contact",
                                    headers=other_zone), 403)
    for who in (b.bearer(b.token("coordinator", bin_id)), me, STUDY):
        assert_problem(await api.put(f"/v1/bins/{bin_id}/police-contact", headers=who,
                                     json=b.listed_contact()), 403)

    # Bad input names the field; nothing is listed.
    url = f"/v1/bins/{bin_id}/police-contact"
    for sent, field in (({"name": "X", "phone": "12"}, "phone"),
                        ({"name": "X", "email": "nobody@"}, "email"),
                        ({"email": b.email()}, "name"),
                        ({"name": "X", "fax": "1"}, "fax")):
        assert_problem(await api.put(url, headers=OPERATOR, json=sent), 422, field)
    assert_problem(await api.delete(url, headers=OPERATOR), 404)
    assert_problem(await api.put("/v1/municipalities/99999/prevention-officer",
                                 headers=OPERATOR, json=b.listed_contact()), 404)
    assert_problem(await api.put("/v1/municipalities/schoten/prevention-officer",
                                 headers=OPERATOR, json=b.listed_contact()), 422, "nis")
    for params, field in (({"province": "Antwerp"}, "province"),
                          ({"municipality": "1"}, "municipality"),
                          ({"format": "xml"}, "format")):
        assert_problem(await api.get("/v1/directory", headers=OPERATOR, params=params),
                       422, field)
