"""Test data of the messaging service: registry snapshots, alerts, CAP documents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer

from shared import crypto
from shared.events import (
    BinSnapshot,
    ContactsSnapshot,
    MembershipSnapshot,
    Municipality,
    ZoneSnapshot,
)
from shared.kafka import publish_event
from shared.settings import ServiceSettings

SOURCE = "tests.registry"


def keyring(settings: ServiceSettings | None = None) -> crypto.KeyRing:
    """The development key ring the services use."""
    settings = settings or ServiceSettings()
    return crypto.keyring_from_settings(
        settings.contacts_keys, settings.contacts_active_key_id
    )


def zone(
    code: str,
    *,
    municipalities: tuple[str, ...] = ("11040",),
    province_nis: str = "10000",
) -> ZoneSnapshot:
    """A police zone with some municipalities."""
    return ZoneSnapshot(
        zone=code,
        name=f"PZ {code}",
        province_nis=province_nis,
        province_name="Antwerpen",
        municipalities=[
            Municipality(nis=nis, name_nl=f"Gemeente {nis}") for nis in municipalities
        ],
        units=[f"{nis}A00-" for nis in municipalities],
        version=1,
    )


def bin_snapshot(
    bin_id: str, *, zone_code: str, nis: str = "11040", status: str = "active"
) -> BinSnapshot:
    """An active BIN covering one sector of a municipality."""
    return BinSnapshot(
        bin_id=bin_id,
        zone=zone_code,
        name=f"BIN {bin_id}",
        kind="residential",
        status=status,
        territory=[f"{nis}A00-"],
        version=1,
        updated_at=datetime.now(UTC),  # type: ignore[arg-type]
    )


def membership(
    member_id: str,
    *,
    bin_id: str,
    zone_code: str,
    channels: list[str],
    language: str = "nl",
    status: str = "active",
    version: int = 1,
    role: str = "member",
    shares_email: bool = False,
) -> MembershipSnapshot:
    """A member of a BIN with chosen channels in order of preference."""
    return MembershipSnapshot(
        member_id=member_id,
        bin_id=bin_id,
        zone=zone_code,
        role=role,  # type: ignore[arg-type]
        shares_email_with_coordinator=shares_email,
        status=status,
        language=language,
        channels=channels,
        version=version,  # type: ignore[arg-type]
        updated_at=datetime.now(UTC),
    )


def addresses(member_id: str) -> dict[str, str]:
    """Made-up addresses of a member on every channel, derived from the id."""
    digits = str(abs(hash(member_id)) % 10**7).zfill(7)
    return {
        "sms": f"+32470{digits}",
        "voice": f"+3232{digits}",
        "email": f"{member_id}@members.example",
        "app": f"push-{member_id}",
    }


def contacts(
    member_id: str, *, ring: crypto.KeyRing, values: dict[str, str] | None = None
) -> ContactsSnapshot:
    """The sealed contacts of a member."""
    sealed = crypto.seal_json(ring, values or addresses(member_id), owner=member_id)
    return ContactsSnapshot(member_id=member_id, contacts=sealed, version=1)


async def publish_registry(
    producer: AIOKafkaProducer,
    *,
    zones: list[ZoneSnapshot] = (),  # type: ignore[assignment]
    bins: list[BinSnapshot] = (),  # type: ignore[assignment]
    members: list[MembershipSnapshot] = (),  # type: ignore[assignment]
    member_contacts: list[ContactsSnapshot] = (),  # type: ignore[assignment]
    prefix: str = "",
) -> None:
    """Publish registry snapshots as the registry would, on `prefix`ed topics."""
    for event in zones:
        await publish_event(
            producer,
            topic=prefix + event.TOPIC,
            key=event.zone,
            event=event,
            source=SOURCE,
        )
    for event in bins:
        await publish_event(
            producer,
            topic=prefix + event.TOPIC,
            key=event.bin_id,
            event=event,
            source=SOURCE,
        )
    for event in [*members, *member_contacts]:
        await publish_event(
            producer,
            topic=prefix + event.TOPIC,
            key=event.member_id,
            event=event,
            source=SOURCE,
        )


def cap_alert(
    identifier: str,
    *,
    bins: list[str] = (),  # type: ignore[assignment]
    nis: list[str] = (),  # type: ignore[assignment]
    msg_type: str = "Alert",
    references: str | None = None,
    channels: str = "sms,email,voice,app",
    headline_nl: str = "Inbraken in de wijk",
    headline_fr: str = "Cambriolages dans le quartier",
) -> bytes:
    """A CAP 1.2 alert in Dutch and French targeting BINs or municipalities."""
    sent = datetime.now(UTC).replace(microsecond=0)
    expires = (sent + timedelta(hours=6)).isoformat()
    geocodes = "".join(
        f"<geocode><valueName>BIN</valueName><value>{b}</value></geocode>" for b in bins
    ) + "".join(
        f"<geocode><valueName>NIS</valueName><value>{n}</value></geocode>" for n in nis
    )
    area = f"<area><areaDesc>Buurt</areaDesc>{geocodes}</area>" if geocodes else ""
    refs = f"<references>{references}</references>" if references else ""

    def info(language: str, headline: str) -> str:
        return (
            f"<info><language>{language}</language><category>Security</category>"
            "<event>Woninginbraken</event><urgency>Immediate</urgency>"
            "<severity>Moderate</severity><certainty>Observed</certainty>"
            f"<expires>{expires}</expires><headline>{headline}</headline>"
            "<description>Sluit ramen en deuren.</description>"
            f"<parameter><valueName>BIN-channels</valueName><value>{channels}</value></parameter>"
            f"{area}</info>"
        )

    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">'
        f"<identifier>{identifier}</identifier><sender>bin@pz.example</sender>"
        f"<sent>{sent.isoformat()}</sent><status>Actual</status><msgType>{msg_type}</msgType>"
        f"<scope>Public</scope>{refs}"
        f"{info('nl-BE', headline_nl)}{info('fr-BE', headline_fr)}</alert>"
    ).encode()


def cap_reference(identifier: str) -> str:
    """A CAP references triple for an alert sent by cap_alert."""
    return f"bin@pz.example,{identifier},2026-01-01T00:00:00+00:00"


def png_bytes(*, size: tuple[int, int] = (8, 8), noise: bool = False) -> bytes:
    """A real PNG image; with noise it barely compresses, to test size limits."""
    import io
    import os

    from PIL import Image

    if noise:
        image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    else:
        image = Image.new("RGB", size, (200, 30, 30))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def pdf_bytes() -> bytes:
    """A minimal one-page PDF document."""
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )


def mail_body(
    *,
    audience: str = "bin",
    to: str | None = None,
    attachments: list[tuple[str, bytes]] = (),  # type: ignore[assignment]
    **extra: object,
) -> dict[str, object]:
    """A JSON mail in Dutch and French, attachments as (filename, bytes)."""
    import base64

    body: dict[str, object] = {
        "audience": audience,
        "texts": {
            "nl": {"subject": "Buurtfeest zaterdag", "body": "Iedereen welkom."},
            "fr": {"subject": "Fête de quartier samedi", "body": "Bienvenue."},
        },
        "attachments": [
            {"filename": name, "content": base64.b64encode(data).decode()}
            for name, data in attachments
        ],
        **extra,
    }
    if to is not None:
        body["to"] = to
    return body
