"""The registry's rules: BINs, members, consent and bulk import, free of I/O."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import re
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from shared.events import (
    BinKind,
    BinSnapshot,
    BinStatus,
    Channel,
    Language,
    ListedField,
    MembershipSnapshot,
    Role,
)

MEMBER_BUCKETS = 256
PURPOSES = ("bin_messages", "coordinator_mail", "directory_listing")
LISTING_PURPOSE = "directory_listing"
BIN_TRANSITIONS: dict[str, set[str]] = {
    "proposed": {"active", "dissolved"},
    "active": {"dormant", "dissolved"},
    "dormant": {"active", "dissolved"},
    "dissolved": set(),
}
CSV_COLUMNS = (
    "given_name",
    "family_name",
    "street",
    "postcode",
    "municipality",
    "phone",
    "email",
    "app_token",
    "language",
    "channels",
    "role",
    "consent_notice_version",
    "consent_given_on",
)
CSV_MAX_BYTES = 2 * 1024 * 1024
CSV_MAX_ROWS = 5000


class RuleError(ValueError):
    """Input that breaks a rule of the register; names the field, never its value."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def normalize_phone(value: str) -> str:
    """The number in E.164, read as Belgian unless it says otherwise."""
    try:
        number = phonenumbers.parse(value, "BE")
    except phonenumbers.NumberParseException:
        raise ValueError("is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(value: str) -> str:
    """The address in its normalized form; deliverability is not checked here."""
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        raise ValueError("is not a valid e-mail address") from None


# An optional phone number, stored as E.164, and an optional e-mail address, checked
# and normalised; an empty value is none.
Phone = Annotated[
    str | None,
    Field(max_length=40),
    AfterValidator(lambda value: normalize_phone(value) if value else None),
]
Email = Annotated[
    str | None,
    Field(max_length=254),
    AfterValidator(lambda value: normalize_email(value) if value else None),
]


class Strict(BaseModel):
    """Input models refuse fields they do not know, so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ContactsIn(Strict):
    """How to reach a member: a phone for SMS and voice, an e-mail, an app token."""

    phone: Phone = None
    email: Email = None
    app_token: str | None = Field(default=None, max_length=512)

    def by_channel(self) -> dict[str, str]:
        """The address to use on each channel."""
        found = {"sms": self.phone, "voice": self.phone, "email": self.email}
        found["app"] = self.app_token
        return {channel: address for channel, address in found.items() if address}


class ConsentIn(Strict):
    """What the member agreed to: which privacy notice, when, for which purposes."""

    notice_version: str = Field(min_length=1, max_length=40)
    purposes: list[Literal["bin_messages", "coordinator_mail", "directory_listing"]] = (
        Field(min_length=1)
    )
    given_at: datetime | None = None
    method: Literal["online", "paper"] = "online"

    @field_validator("purposes")
    @classmethod
    def _needs_messages(cls, value: list[str]) -> list[str]:
        if "bin_messages" not in value:
            raise ValueError("must include bin_messages: membership is for messages")
        return sorted(set(value))


class PersonIn(Strict):
    """Who the member is and where they live."""

    given_name: str = Field(min_length=1, max_length=80)
    family_name: str = Field(min_length=1, max_length=80)
    street: str | None = Field(default=None, max_length=120)
    postcode: str | None = Field(default=None, pattern=r"^\d{4}$")
    municipality: str | None = Field(default=None, max_length=80)


class MemberIn(Strict):
    """A registration: the person, contacts, language, channels, role and consent."""

    person: PersonIn
    contacts: ContactsIn
    language: Language
    channels: list[Channel] = Field(min_length=1, max_length=4)
    role: Role = "member"
    consent: ConsentIn
    share_email_with_coordinator: bool = False
    directory_listing: list[ListedField] = Field(default=[], max_length=3)

    @field_validator("directory_listing")
    @classmethod
    def _listing_once(cls, value: list[str], info: ValidationInfo) -> list[str]:
        # Listed fields without the consent to be listed would be a listing nobody
        # agreed to; the consent comes first in the body, so it is known here.
        consent = info.data.get("consent")
        if value and consent is not None and LISTING_PURPOSE not in consent.purposes:
            raise ValueError(f"needs the consent purpose {LISTING_PURPOSE}")
        return sorted(set(value))

    @field_validator("channels")
    @classmethod
    def _channels_have_addresses(
        cls, value: list[str], info: ValidationInfo
    ) -> list[str]:
        # A field validator (not a model one) so that the error names `channels`.
        if len(set(value)) != len(value):
            raise ValueError("each channel at most once")
        contacts = info.data.get("contacts")
        if contacts is not None:
            missing = [c for c in value if c not in contacts.by_channel()]
            if missing:
                raise ValueError(f"no address for {', '.join(missing)}")
        return value


class MemberPatch(Strict):
    """A correction by the member or their coordinator: only what is sent changes."""

    person: PersonIn | None = None
    contacts: ContactsIn | None = None
    language: Language | None = None
    channels: list[Channel] | None = Field(default=None, min_length=1, max_length=4)
    role: Role | None = None
    bin_id: str | None = None
    share_email_with_coordinator: bool | None = None
    directory_listing: list[ListedField] | None = Field(default=None, max_length=3)

    @field_validator("directory_listing")
    @classmethod
    def _listing_once(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else sorted(set(value))


# What only the member may decide about themselves, never their coordinator or staff.
MEMBER_OWN_CHOICES = ("share_email_with_coordinator", "directory_listing")


class BinIn(Strict):
    """A new BIN."""

    zone: str = Field(min_length=1, max_length=20)
    name: str = Field(min_length=1, max_length=120)
    kind: BinKind
    territory: list[str] = Field(min_length=1, max_length=5000)
    status: BinStatus = "proposed"
    coordinators: list[str] = Field(default=[], max_length=20)
    founded_on: date | None = None


class BinPatch(Strict):
    """A change to a BIN: only what is sent changes."""

    name: str | None = Field(default=None, min_length=1, max_length=120)
    kind: BinKind | None = None
    territory: list[str] | None = Field(default=None, min_length=1, max_length=5000)
    status: BinStatus | None = None
    coordinators: list[str] | None = Field(default=None, max_length=20)
    founded_on: date | None = None

    @field_validator("name", "kind", "territory", "status", "coordinators", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Leaving a field out keeps it; sending null would blank a required one.
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep it")
        return value


def check_territory(*, territory: list[str], zone_units: set[str]) -> list[str]:
    """The territory, sorted and without repeats, if every unit lies in the zone."""
    outside = [unit for unit in territory if unit not in zone_units]
    if outside:
        raise RuleError(
            "territory", f"{len(outside)} sector(s) do not lie in the zone, e.g. {outside[0]}"
        )
    return sorted(set(territory))


def check_bin_transition(*, current: str, new: str) -> None:
    """Refuse a status change the BIN lifecycle does not allow."""
    if new != current and new not in BIN_TRANSITIONS[current]:
        raise RuleError("status", f"a {current} BIN cannot become {new}")


def new_bin_id() -> str:
    """A fresh BIN id."""
    return f"bin-{uuid.uuid4().hex[:16]}"


def member_bucket(member_id: str) -> int:
    """The storage bucket a member id names (its first two hex digits after `m`)."""
    try:
        return int(member_id[1:3], 16)
    except ValueError:
        raise RuleError("member_id", "is not a member id") from None


def new_member_id(*, bin_id: str, stable_key: str | None = None) -> str:
    """A member id that names its storage bucket; stable for the same import row.

    Members of one BIN start in the same bucket, so that a BIN's import is one
    insert; the id never changes when the member moves.
    """
    bucket = int(hashlib.sha256(bin_id.encode()).hexdigest()[:2], 16) % MEMBER_BUCKETS
    if stable_key is None:
        tail = uuid.uuid4().hex[:20]
    else:
        tail = hashlib.sha256(f"{bin_id}\x1f{stable_key}".encode()).hexdigest()[:20]
    return f"m{bucket:02x}-{tail}"


def blind_index(*, secret: bytes, value: str) -> str:
    """A keyed hash of an address, to find duplicates without storing it in clear."""
    return hmac.new(secret, value.lower().encode(), hashlib.sha256).hexdigest()


def personal_record(member: MemberIn) -> bytes:
    """The personal data to seal: person and addresses, as JSON."""
    return json.dumps(
        {"person": member.person.model_dump(), "contacts": member.contacts.model_dump()}
    ).encode()


def contacts_record(contacts: dict[str, str]) -> bytes:
    """The per-channel addresses that messaging receives, as JSON."""
    return json.dumps(contacts, sort_keys=True).encode()


def consent_record(
    consent: ConsentIn, *, now: datetime, recorded_by: str | None
) -> dict[str, Any]:
    """What is stored of a consent: no personal data beyond the fact of consenting."""
    return {
        "notice_version": consent.notice_version,
        "purposes": consent.purposes,
        "given_at": consent.given_at or now,
        "method": consent.method,
        "recorded_by": recorded_by,
        "withdrawn_at": None,
    }


class RowError(BaseModel):
    """One problem of one CSV row: the row number, the field, why."""

    row: int
    field: str
    reason: str


def parse_member_csv(
    data: bytes, *, notice_version_default: str = "paper-1"
) -> tuple[list[MemberIn], list[RowError]]:
    """Members from a coordinator's CSV; every problem of every row is reported."""
    if len(data) > CSV_MAX_BYTES:
        raise RuleError("file", f"is larger than {CSV_MAX_BYTES // 1024} KiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RuleError("file", "is not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text), delimiter=_delimiter(text))
    columns = [c.strip() for c in reader.fieldnames or []]
    missing = [c for c in ("given_name", "family_name", "language", "channels")
               if c not in columns]
    if missing:
        raise RuleError("file", f"lacks the column(s) {', '.join(missing)}")
    unknown = [c for c in columns if c not in CSV_COLUMNS]
    if unknown:
        raise RuleError("file", f"has unknown column(s) {', '.join(unknown[:5])}")
    members: list[MemberIn] = []
    errors: list[RowError] = []
    try:
        rows = list(reader)
    except csv.Error as error:
        raise RuleError("file", f"is not valid CSV ({error})") from None
    if len(rows) > CSV_MAX_ROWS:
        raise RuleError("file", f"has more than {CSV_MAX_ROWS} rows")
    if not rows:
        raise RuleError("file", "has no rows")
    for number, row in enumerate(rows, start=2):
        if None in row:
            errors.append(RowError(row=number, field="row",
                                   reason="has more fields than the header"))
            continue
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        try:
            members.append(_member_from_row(row, notice_version_default))
        except ValidationError as error:
            errors.extend(
                RowError(row=number, field=_field_name(item), reason=_reason(item))
                for item in error.errors()
            )
    return members, errors


def _delimiter(text: str) -> str:
    """The header's separator: Excel writes `;` in Belgian locales, `,` elsewhere.

    csv.Sniffer guesses wrong when a quoted field holds the separator (a channel
    list such as "sms;email"); the header line has no quotes to mislead it.
    """
    header = text.split("\n", 1)[0]
    return max(",;\t", key=header.count)


def _member_from_row(row: dict[str, str], notice_default: str) -> MemberIn:
    given_on = row.get("consent_given_on") or None
    return MemberIn.model_validate(
        {
            "person": {
                "given_name": row.get("given_name", ""),
                "family_name": row.get("family_name", ""),
                "street": row.get("street") or None,
                "postcode": row.get("postcode") or None,
                "municipality": row.get("municipality") or None,
            },
            "contacts": {
                "phone": row.get("phone") or None,
                "email": row.get("email") or None,
                "app_token": row.get("app_token") or None,
            },
            "language": row.get("language", ""),
            "channels": [
                c for c in row.get("channels", "").replace(";", " ").replace("|", " ")
                .split() if c
            ],
            "role": row.get("role") or "member",
            "consent": {
                "notice_version": row.get("consent_notice_version") or notice_default,
                "purposes": ["bin_messages"],
                "given_at": f"{given_on}T00:00:00+00:00" if given_on else None,
                "method": "paper",
            },
        }
    )


def _field_name(item: Any) -> str:
    location = [str(part) for part in item.get("loc", ()) if not str(part).isdigit()]
    return location[-1] if location else "row"


def _reason(item: Any) -> str:
    message = str(item.get("msg", "is invalid"))
    return message.removeprefix("Value error, ")


def stable_row_key(*, member: MemberIn, secret: bytes) -> str:
    """What identifies an imported person on a re-run: their e-mail or phone, hashed."""
    address = member.contacts.email or member.contacts.phone or (
        f"{member.person.given_name}\x1f{member.person.family_name}"
        f"\x1f{member.person.street or ''}"
    )
    return blind_index(secret=secret, value=address)


def utcnow() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


def bin_event(document: dict[str, Any]) -> BinSnapshot:
    """The full snapshot of a stored BIN."""
    founded = document.get("founded_on")
    return BinSnapshot(
        bin_id=document["_id"],
        zone=document["zone"],
        name=document["name"],
        kind=document["kind"],
        status=document["status"],
        territory=document["territory"],
        coordinators=document.get("coordinators", []),
        founded_on=date.fromisoformat(founded) if founded else None,
        version=document["version"],
        updated_at=document["updated_at"],
    )


def membership_event(document: dict[str, Any]) -> MembershipSnapshot:
    """Who is in which BIN, without contact details."""
    return MembershipSnapshot(
        member_id=document["_id"],
        bin_id=document["bin_id"],
        zone=document["zone"],
        role=document["role"],
        status=document["status"],
        language=document["language"],
        channels=document["channels"],
        shares_email_with_coordinator=document.get("share_email_with_coordinator", False),
        version=document["version"],
        updated_at=document["updated_at"],
    )


def public_member(document: dict[str, Any]) -> dict[str, Any]:
    """What a list of members shows: no personal data."""
    return {
        "member_id": document["_id"],
        "bin_id": document["bin_id"],
        "role": document["role"],
        "status": document["status"],
        "language": document["language"],
        "channels": document["channels"],
        "version": document["version"],
    }


def public_bin(document: dict[str, Any]) -> dict[str, Any]:
    """A BIN as the API shows it."""
    return {
        "bin_id": document["_id"],
        **{k: document.get(k) for k in ("zone", "name", "kind", "status", "territory",
                                        "coordinators", "founded_on", "version")},
        "created_at": document.get("created_at"),
        "updated_at": document.get("updated_at"),
    }


# Unsubscribe links ------------------------------------------------------------

UNSUBSCRIBED_TEXTS: dict[str, tuple[str, str, str]] = {
    "nl": ("Uitgeschreven", "U ontvangt geen BIN-berichten meer per e-mail.",
           "Uw andere kanalen blijven ongewijzigd."),
    "fr": ("Désinscription", "Vous ne recevrez plus de messages PLP par e-mail.",
           "Vos autres canaux restent inchangés."),
    "de": ("Abgemeldet", "Sie erhalten keine BIN-Nachrichten mehr per E-Mail.",
           "Ihre anderen Kanäle bleiben unverändert."),
    "en": ("Unsubscribed", "You will no longer receive BIN messages by e-mail.",
           "Your other channels stay as they are."),
}


def without_channel(channels: list[str], channel: str) -> list[str]:
    """The chosen channels with one taken off (unchanged if it was not chosen)."""
    return [c for c in channels if c != channel]


def unsubscribed_page(*, language: str) -> str:
    """The confirmation page of an unsubscribe link, in the member's language."""
    title, done, rest = UNSUBSCRIBED_TEXTS.get(language, UNSUBSCRIBED_TEXTS["en"])
    return (
        f'<!doctype html>\n<html lang="{language}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title></head>\n<body><main><h1>{title}</h1>"
        f"<p>{done}</p><p>{rest}</p></main></body></html>\n"
    )


# Directory of BIN actors --------------------------------------------------------

DIRECTORY_COLUMNS = ("kind", "province_nis", "zone", "municipalities", "bin_id",
                     "bin_name", "name", "email", "phone")


class ListedContactIn(Strict):
    """A police contact or prevention officer: a name and the addresses to list."""

    name: str = Field(min_length=1, max_length=160)
    email: Email = None
    phone: Phone = None

    def details(self) -> dict[str, str]:
        """The fields to list, only those given."""
        return {k: v for k, v in self.model_dump().items() if v}


class DirectoryFilter(Strict):
    """Which part of the directory to read."""

    province: str | None = Field(default=None, pattern=r"^\d{5}$")
    zone: str | None = Field(default=None, min_length=1, max_length=20)
    municipality: str | None = Field(default=None, pattern=r"^\d{5}$")

    def audit_fields(self) -> list[str]:
        """The filter as the audit trail records it: no personal data in it."""
        return [f"{k}={v}" for k, v in self.model_dump().items() if v]


def coordinator_listing_id(member_id: str) -> str:
    """The listing id of a coordinator."""
    return f"coordinator:{member_id}"


def police_listing_id(bin_id: str) -> str:
    """The listing id of a BIN's police contact."""
    return f"police:{bin_id}"


def prevention_listing_id(nis: str) -> str:
    """The listing id of a municipality's prevention officer."""
    return f"prevention:{nis}"


def is_listed_coordinator(document: dict[str, Any]) -> bool:
    """Whether a member belongs in the directory: an active coordinator who chose to.

    Choosing needs both: the fields to list and the consent to be listed (a
    withdrawn consent leaves the member no longer active).
    """
    consent = document.get("consent") or {}
    return (document.get("role") == "coordinator" and document.get("status") == "active"
            and bool(document.get("directory_listing"))
            and LISTING_PURPOSE in consent.get("purposes", ()))


def with_listing_consent(consent: dict[str, Any], *, listed: bool) -> dict[str, Any]:
    """The consent after a member chose (or stopped) to be listed in the directory."""
    purposes = set(consent.get("purposes", ())) - {LISTING_PURPOSE}
    if listed:
        purposes.add(LISTING_PURPOSE)
    return {**consent, "purposes": sorted(purposes)}


def coordinator_details(
    *, personal: dict[str, Any], fields: list[str]
) -> dict[str, str]:
    """The contact details a coordinator chose to list, taken from their record."""
    person, contacts = personal["person"], personal["contacts"]
    found = {
        "name": f"{person['given_name']} {person['family_name']}",
        "email": contacts.get("email"),
        "phone": contacts.get("phone"),
    }
    return {k: v for k, v in found.items() if k in fields and v}


def bin_municipalities(territory: list[str]) -> list[str]:
    """The municipalities (NIS codes) a BIN lies in: a sector code starts with one."""
    return sorted({unit[:5] for unit in territory})


def directory_rows(
    *,
    zones: dict[str, dict[str, Any]],
    bins: dict[str, dict[str, Any]],
    coordinators: set[str],
    listings: list[dict[str, Any]],
    details: Any,
    wanted: DirectoryFilter,
) -> list[dict[str, Any]]:
    """The directory from the projection's state: who is listed where, with what.

    A coordinator is listed while their membership says active coordinator and their
    BIN is not dissolved; a police contact while their BIN is; a prevention officer
    while their municipality belongs to a known zone. `details` opens a listing's
    sealed details; only the fields it holds reach the row.
    """
    rows = []
    for listing in listings:
        zone_code, bin_doc = listing["zone"], None
        if listing["kind"] in ("coordinator", "police_contact"):
            bin_doc = bins.get(listing.get("bin_id") or "")
            if bin_doc is None or bin_doc["status"] == "dissolved":
                continue
            zone_code = bin_doc["zone"]
            municipalities = bin_doc["municipalities"]
        else:
            municipalities = [listing["municipality_nis"]]
        if listing["kind"] == "coordinator" and listing.get("member_id") not in coordinators:
            continue
        zone = zones.get(zone_code)
        if zone is None:
            continue
        if wanted.zone and wanted.zone != zone_code:
            continue
        if wanted.province and wanted.province != zone["province_nis"]:
            continue
        if wanted.municipality and wanted.municipality not in municipalities:
            continue
        opened = details(listing)
        row: dict[str, Any] = {
            "kind": listing["kind"], "province_nis": zone["province_nis"],
            "zone": zone_code, "municipalities": municipalities,
        }
        if bin_doc is not None:
            row.update(bin_id=bin_doc["_id"], bin_name=bin_doc["name"])
        row.update({k: opened[k] for k in listing["fields"] if opened.get(k)})
        rows.append(row)
    return sorted(rows, key=lambda r: (r["province_nis"], r["zone"], r["kind"],
                                       r.get("bin_id", ""), r["municipalities"]))


def directory_csv(rows: list[dict[str, Any]]) -> str:
    """The directory as CSV: one column per possible field, empty where not listed."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=DIRECTORY_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        cells = {**row, "municipalities": ";".join(row["municipalities"])}
        writer.writerow({name: spreadsheet_safe(value) for name, value in cells.items()})
    return out.getvalue()


# A cell starting with one of these is a formula to a spreadsheet (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A text cell that a spreadsheet shows as text, never runs as a formula; an
    E.164 phone number, which only a number can be made of, stays as it is."""
    if (isinstance(value, str) and value.startswith(FORMULA_STARTS)
            and not re.fullmatch(r"\+[0-9]{6,15}", value)):
        return "'" + value
    return value
