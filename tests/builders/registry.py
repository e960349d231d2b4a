"""Test data of the registry service: tokens, BINs, registrations and CSV files.

Everything is generated. Names come from Faker's nl_BE locale; e-mail addresses use
the domains reserved for documentation (RFC 2606); phone numbers come from the
London range that Ofcom keeps for drama (020 7946 0000-0999), which no subscriber
holds and which libphonenumber accepts as valid.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from faker import Faker

from services.registry.reference import SECTORS_FILE, ZONES_FILE
from shared.auth import issue_token
from shared.links import unsubscribe_token
from shared.settings import ServiceSettings

fake = Faker("nl_BE")
EMAIL_DOMAINS = ("example.org", "example.com", "example.net")
CSV_HEADER = ("given_name", "family_name", "street", "postcode", "municipality",
              "phone", "email", "language", "channels")


def token(role: str, scope: str = "", *, ttl_s: float = 3600, secret: str = "") -> str:
    """A token signed with the development key (or another `secret`)."""
    return issue_token(
        secret=secret or ServiceSettings().jwt_secret, role=role, scope=scope,
        ttl=timedelta(seconds=ttl_s),
    )


def expired_token(role: str = "operator", scope: str = "") -> str:
    """A token that expired an hour ago."""
    issued = datetime.now(UTC) - timedelta(hours=2)
    return issue_token(secret=ServiceSettings().jwt_secret, role=role, scope=scope,
                       ttl=timedelta(hours=1), now=issued)


def foreign_token(role: str = "operator", scope: str = "") -> str:
    """A token signed with a key the platform does not know."""
    return token(role, scope, secret="someone-elses-key-" + uuid.uuid4().hex)


def bearer(value: str) -> dict[str, str]:
    """The Authorization header of a token."""
    return {"Authorization": f"Bearer {value}"}


def phone() -> str:
    """A phone number of Ofcom's drama range, written as a person would type it."""
    return f"+44 20 7946 0{fake.random_int(0, 999):03d}"


def email() -> str:
    """A unique address on a reserved domain."""
    user = f"{fake.user_name()}.{uuid.uuid4().hex[:8]}"
    return f"{user}@{fake.random_element(EMAIL_DOMAINS)}"


def bin_in(zone: str, territory: list[str], **overrides: Any) -> dict[str, Any]:
    """The body of `POST /v1/bins`."""
    body = {"zone": zone, "name": f"BIN {fake.street_name()}", "kind": "residential",
            "territory": territory}
    return {**body, **overrides}


def person(**overrides: Any) -> dict[str, Any]:
    """Who a member is."""
    body = {"given_name": fake.first_name(), "family_name": fake.last_name(),
            "street": fake.street_address(), "postcode": "2900",
            "municipality": "Schoten"}
    return {**body, **overrides}


def member_in(
    *,
    channels: tuple[str, ...] = ("sms", "email"),
    method: str = "online",
    role: str = "member",
    language: str = "nl",
    contacts: dict[str, Any] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """The body of a registration with explicit consent."""
    body = {
        "person": person(),
        "contacts": contacts if contacts is not None else {"phone": phone(),
                                                           "email": email()},
        "language": language,
        "channels": list(channels),
        "role": role,
        "consent": {"notice_version": "2026-01",
                    "purposes": ["bin_messages", "coordinator_mail"], "method": method},
    }
    if overrides.get("directory_listing"):
        body["consent"]["purposes"].append("directory_listing")  # type: ignore[index]
    return {**body, **overrides}


def csv_row(**overrides: str) -> dict[str, str]:
    """One row of a coordinator's member list."""
    row = {"given_name": fake.first_name(), "family_name": fake.last_name(),
           "street": fake.street_address(), "postcode": "2900",
           "municipality": "Schoten", "phone": phone(), "email": email(),
           "language": fake.random_element(("nl", "nl", "fr", "en")),
           "channels": "sms;email"}
    return {**row, **overrides}


def member_csv(rows: list[dict[str, str]], *, delimiter: str = ",") -> bytes:
    """A CSV file of rows as coordinators keep them (header first, UTF-8)."""
    out = io.StringIO()
    columns = list(CSV_HEADER)
    for row in rows:
        columns += [c for c in row if c not in columns]
    writer = csv.DictWriter(out, fieldnames=columns, delimiter=delimiter)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def reference_subset(*zones: str) -> dict[str, tuple[str, bytes, str]]:
    """The reference files cut down to some zones, as multipart uploads."""
    directory = ServiceSettings().reference_dir
    files = {}
    for part, name in (("zones", ZONES_FILE), ("sectors", SECTORS_FILE)):
        lines = (directory / name).read_text(encoding="utf-8").splitlines(True)
        kept = [lines[0]] + [
            line for line in lines[1:]
            if any(line.startswith(f"{zone},") or f",{zone}," in line for zone in zones)
        ]
        files[part] = (name, "".join(kept).encode(), "text/csv")
    return files


def unsubscribe(member_id: str, *, secret: str = "", **claims: Any) -> str:
    """The token of the unsubscribe link messaging puts in a mail to a member."""
    return unsubscribe_token(secret=secret or ServiceSettings().jwt_secret,
                             member_id=member_id, message_id=f"alert-{uuid.uuid4().hex}",
                             **claims)


def listed_contact(**overrides: Any) -> dict[str, Any]:
    """A police contact or prevention officer with every field listed."""
    body = {"name": fake.name(), "email": email(), "phone": phone()}
    return {**body, **overrides}
