"""The registry's pure logic of issue 9: unsubscribe, e-mail sharing, the directory."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from services.registry import domain
from shared.events import MembershipSnapshot
from tests.builders import registry as b

ZONES = {"ipz10": {"_id": "ipz10", "province_nis": "10000"},
         "ipz21": {"_id": "ipz21", "province_nis": "10000"},
         "ipz99": {"_id": "ipz99", "province_nis": "20001"}}


def a_bin(bin_id: str, zone: str = "ipz10", status: str = "active",
          municipalities: tuple[str, ...] = ("11040",)) -> dict[str, Any]:
    return {"_id": bin_id, "zone": zone, "name": f"BIN {bin_id}", "status": status,
            "municipalities": list(municipalities)}


def listing(listing_id: str, kind: str, fields: list[str], **place: str) -> dict:
    return {"_id": listing_id, "kind": kind, "zone": place.pop("zone", "ipz10"),
            "fields": fields, **place}


DETAILS = {"name": "Ann Peeters", "email": "ann@example.org", "phone": "+442079460001"}


def rows(listings: list[dict], *, coordinators: set[str] = frozenset({"m1"}),
         bins: dict | None = None, **wanted: str) -> list[dict]:
    return domain.directory_rows(
        zones=ZONES, bins=bins or {"b1": a_bin("b1")}, coordinators=set(coordinators),
        listings=listings, details=lambda _: DETAILS,
        wanted=domain.DirectoryFilter(**wanted),
    )


def test_taking_a_channel_off_keeps_the_others_and_is_idempotent() -> None:
    assert domain.without_channel(["sms", "email", "app"], "email") == ["sms", "app"]
    assert domain.without_channel(["sms"], "email") == ["sms"]
    assert domain.without_channel(["email"], "email") == []


@pytest.mark.parametrize("language", ["nl", "fr", "de", "en"])
def test_the_confirmation_page_speaks_the_members_language(language: str) -> None:
    page = domain.unsubscribed_page(language=language)
    title = domain.UNSUBSCRIBED_TEXTS[language][0]
    assert f'<html lang="{language}">' in page and f"<h1>{title}</h1>" in page


def test_a_coordinator_row_holds_only_the_fields_they_chose() -> None:
    [row] = rows([listing("coordinator:m1", "coordinator", ["email"], bin_id="b1",
                          member_id="m1")])
    assert row == {"kind": "coordinator", "province_nis": "10000", "zone": "ipz10",
                   "municipalities": ["11040"], "bin_id": "b1", "bin_name": "BIN b1",
                   "email": "ann@example.org"}


def test_who_leaves_the_directory() -> None:
    coordinator = listing("coordinator:m1", "coordinator", ["name"], bin_id="b1",
                          member_id="m1")
    police = listing("police:b1", "police_contact", ["name", "phone"], bin_id="b1")
    assert len(rows([coordinator, police])) == 2
    # Stepped down or erased: the membership is no longer an active coordinator.
    assert [r["kind"] for r in rows([coordinator, police], coordinators=set())] == [
        "police_contact"]
    # A dissolved or removed BIN takes its coordinators and police contact along.
    assert rows([coordinator, police], bins={"b1": a_bin("b1", status="dissolved")}) == []
    assert rows([coordinator, police], bins={"b2": a_bin("b2")}) == []


def test_filters_by_province_zone_and_municipality() -> None:
    officer = listing("prevention:21004", "prevention_officer", ["name", "email"],
                      zone="ipz99", municipality_nis="21004")
    police = listing("police:b1", "police_contact", ["phone"], bin_id="b1")
    both = [officer, police]
    assert [r["kind"] for r in rows(both, province="20001")] == ["prevention_officer"]
    assert [r["kind"] for r in rows(both, zone="ipz10")] == ["police_contact"]
    assert [r["kind"] for r in rows(both, municipality="21004")] == [
        "prevention_officer"]
    assert rows(both, municipality="11002") == []
    assert set(rows([officer])[0]) == {"kind", "province_nis", "zone", "municipalities",
                                       "name", "email"}


def test_the_csv_has_every_column_and_blanks_what_is_not_listed() -> None:
    found = rows([listing("police:b1", "police_contact", ["name"], bin_id="b1")],
                 bins={"b1": a_bin("b1", municipalities=("11040", "11002"))})
    table = list(csv.DictReader(io.StringIO(domain.directory_csv(found))))
    assert list(table[0]) == list(domain.DIRECTORY_COLUMNS)
    assert table[0]["name"] == "Ann Peeters" and table[0]["phone"] == ""
    assert table[0]["municipalities"] == "11040;11002"


def test_the_audit_records_the_filter_only() -> None:
    wanted = domain.DirectoryFilter(province="10000", zone="ipz10")
    assert wanted.audit_fields() == ["province=10000", "zone=ipz10"]
    with pytest.raises(ValidationError):
        domain.DirectoryFilter(municipality="Schoten")


def test_a_coordinator_is_listed_only_while_active_and_willing() -> None:
    consent = {"purposes": ["bin_messages", "directory_listing"], "withdrawn_at": None}
    document = {"role": "coordinator", "status": "active", "directory_listing": ["name"],
                "consent": consent}
    assert domain.is_listed_coordinator(document)
    assert not domain.is_listed_coordinator({**document, "directory_listing": []})
    unconsented = domain.with_listing_consent(consent, listed=False)
    assert unconsented["purposes"] == ["bin_messages"]
    assert not domain.is_listed_coordinator({**document, "consent": unconsented})
    assert domain.with_listing_consent(unconsented, listed=True) == consent
    assert not domain.is_listed_coordinator({**document, "role": "member"})
    assert not domain.is_listed_coordinator({**document, "status": "erased"})
    personal = {"person": {"given_name": "Ann", "family_name": "Peeters"},
                "contacts": {"email": "ann@example.org", "phone": None}}
    assert domain.coordinator_details(personal=personal, fields=["name", "phone"]) == {
        "name": "Ann Peeters"}


def test_listed_contacts_are_validated_like_members_contacts() -> None:
    contact = domain.ListedContactIn(name="Inspecteur Jansen", phone="+44 20 7946 0123")
    assert contact.details() == {"name": "Inspecteur Jansen", "phone": "+442079460123"}
    for bad, field in (({"name": "X", "phone": "12"}, "phone"),
                       ({"name": "X", "email": "x@"}, "email"),
                       ({"phone": "+44 20 7946 0123"}, "name"),
                       ({"name": "X", "street": "Kerkstraat"}, "street")):
        with pytest.raises(ValidationError) as caught:
            domain.ListedContactIn.model_validate(bad)
        assert caught.value.errors()[0]["loc"] == (field,)


def test_registration_choices_default_to_sharing_and_listing_nothing() -> None:
    member = domain.MemberIn.model_validate(b.member_in(role="cyber_adviser"))
    assert member.role == "cyber_adviser"
    assert (member.share_email_with_coordinator, member.directory_listing) == (False, [])
    listed = domain.MemberIn.model_validate(
        b.member_in(directory_listing=["phone", "name", "phone"]))
    assert listed.directory_listing == ["name", "phone"]
    snapshot = MembershipSnapshot.model_validate({
        "member_id": "m1", "bin_id": "b1", "zone": "ipz10", "role": "member",
        "status": "active", "language": "nl", "channels": ["sms"], "version": 1,
        "updated_at": datetime.now(UTC).isoformat()})
    assert snapshot.shares_email_with_coordinator is False


def test_a_csv_import_reads_the_cyber_adviser_role() -> None:
    data = b.member_csv([b.csv_row(role="cyber_adviser"), b.csv_row(role="")])
    members, errors = domain.parse_member_csv(data)
    assert errors == [] and [m.role for m in members] == ["cyber_adviser", "member"]
    _, errors = domain.parse_member_csv(b.member_csv([b.csv_row(role="adviser")]))
    assert [e.field for e in errors] == ["role"]


def test_a_bins_municipalities_come_from_its_sector_codes() -> None:
    assert domain.bin_municipalities(["11040A00-", "11040B12-", "11002A011"]) == [
        "11002", "11040"]


@pytest.mark.parametrize("name", ["=HYPERLINK(\"http://x.invalid\")", "+32 3 000", "@SUM(A1)"])
def test_a_csv_cell_never_runs_as_a_spreadsheet_formula(name: str) -> None:
    row = {column: "" for column in domain.DIRECTORY_COLUMNS}
    table = list(csv.DictReader(io.StringIO(domain.directory_csv(
        [{**row, "name": name, "municipalities": ["11002"]}]))))
    assert table[0]["name"] == "'" + name


def test_a_phone_number_in_the_csv_stays_a_phone_number() -> None:
    row = {column: "" for column in domain.DIRECTORY_COLUMNS}
    table = list(csv.DictReader(io.StringIO(domain.directory_csv(
        [{**row, "phone": "+3231234567", "municipalities": ["11002"]}]))))
    assert table[0]["phone"] == "+3231234567"
