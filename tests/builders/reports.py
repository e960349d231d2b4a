"""Test data for the reports service: zones, places, photos, requests, processes."""

from __future__ import annotations

import base64
import io
import itertools
import random
import string
from typing import Any

import httpx
from PIL import Image, ImageCms, PngImagePlugin

from services.reports import domain
from shared import catalogue
from shared.events import Municipality, ZoneSnapshot
from shared.kafka import ensure_topics, new_producer, publish_event
from shared.settings import ServiceSettings

DISTINCTIVE_IP = "203.0.113.197"
DISTINCTIVE_UA = "Mozilla/5.0 (Tipster-Test-Agent 7.31; zz-QX)"
SECRET_COMMENT = b"TIPSTER-CAMERA-COMMENT"
CAMERA_MAKER = "SpyCam-Model-QX9"
XMP_AUTHOR = "TIPSTER-XMP-AUTHOR"
PNG_AUTHOR = "TIPSTER-PNG-AUTHOR"
XMP = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    'xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="51,13.1N" '
    f'xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="{XMP_AUTHOR}"/>'
    "</rdf:RDF></x:xmpmeta>"
)


# Made-up NIS codes, distinct within a test run: two zones sharing one would route
# each other's reports.
_MUNICIPALITY_NUMBERS = itertools.count(random.randrange(10_000))


def place_name() -> str:
    """A municipality name nobody else uses: letters only, as the form requires."""
    letters = "".join(random.choices(string.ascii_lowercase, k=10))
    return f"Test{letters}dorp"


def zone_snapshot(
    code: str, *, names: list[str], province: str = "10000", version: int = 1
) -> ZoneSnapshot:
    """A registry.zones.v1 snapshot of one zone with made-up municipalities."""
    return ZoneSnapshot(
        zone=code,
        name=f"PZ {code}",
        province_nis=province,
        province_name="Antwerpen",
        municipalities=[
            Municipality(nis=f"9{next(_MUNICIPALITY_NUMBERS) % 10_000:04d}", name_nl=name)
            for name in names
        ],
        units=[],
        version=version,
    )


def jpeg_with_metadata(size: tuple[int, int] = (64, 48)) -> bytes:
    """A JPEG carrying EXIF (camera, GPS position) and a comment."""
    image = Image.new("RGB", size, (200, 40, 40))
    exif = Image.Exif()
    exif[0x010F] = CAMERA_MAKER
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (51.0, 13.0, 7.0), 3: "E", 4: (4.0, 24.0, 9.0)})
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes(), comment=SECRET_COMMENT)
    return out.getvalue()


def icc_profile() -> bytes:
    """An sRGB ICC profile, as cameras and editors embed them."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def jpeg_with_everything(size: tuple[int, int] = (64, 48)) -> bytes:
    """A JPEG carrying EXIF with GPS, XMP, an ICC profile and a comment."""
    plain = Image.open(io.BytesIO(jpeg_with_metadata(size)))
    out = io.BytesIO()
    plain.save(
        out,
        format="JPEG",
        exif=plain.getexif().tobytes(),
        comment=SECRET_COMMENT,
        icc_profile=icc_profile(),
        xmp=XMP.encode(),
    )
    return out.getvalue()


def png_with_metadata() -> bytes:
    """A PNG carrying text chunks, XMP and an ICC profile."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", PNG_AUTHOR)
    info.add_itxt("XML:com.adobe.xmp", XMP)
    out = io.BytesIO()
    Image.new("RGB", (16, 12), (0, 0, 200)).save(
        out, format="PNG", pnginfo=info, icc_profile=icc_profile()
    )
    return out.getvalue()


def png_bytes() -> bytes:
    """A small valid PNG."""
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 128, 0)).save(out, format="PNG")
    return out.getvalue()


def report(place: str, **overrides: Any) -> dict[str, Any]:
    """The `report` part of a POST /v1/reports body."""
    key = "postcode" if place.isdigit() else "municipality"
    body: dict[str, Any] = {
        "category": "plantation",
        "location": {key: place, "street": "Kerkstraat", "description": "loods"},
        "signals": ["smell", "covered_windows"],
        "text": "Sterke geur en afgeplakte ramen.",
    }
    body.update(overrides)
    return body


def solved(client: httpx.Client) -> dict[str, str]:
    """A fresh challenge from the service and the nonce that solves it."""
    challenge = client.get("/v1/challenge").json()["challenge"]
    return {"challenge": challenge, "nonce": domain.solve(challenge)}


def submit(
    client: httpx.Client, place: str, *, photos: list[bytes] = (), **overrides: Any
) -> httpx.Response:
    """POSTs a report through the JSON API with a solved challenge."""
    return client.post(
        "/v1/reports",
        json={
            **solved(client),
            "report": report(place, **overrides),
            "photos": [{"data": base64.b64encode(p).decode()} for p in photos],
        },
    )


def reporter_headers() -> dict[str, str]:
    """Headers that would identify a reporter if anything kept them."""
    return {"X-Forwarded-For": DISTINCTIVE_IP, "User-Agent": DISTINCTIVE_UA}


def service_env(*, port: int, database: str, zones_topic: str, **extra: str) -> dict:
    """Settings for a reports process under test: cheap work, cheap hashes."""
    return {
        "HTTP_PORT": str(port),
        "MONGODB_DATABASE": database,
        "ZONES_TOPIC": zones_topic,
        "POW_DIFFICULTY": "6",
        "NOJS_MIN_AGE_S": "1",
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_KIB": "8",
        "ZONES_REFRESH_S": "0.2",
        "PURGE_INTERVAL_S": "0.5",
        **extra,
    }


async def publish_zones(
    settings: ServiceSettings, *, topic: str, zones: dict[str, list[str]]
) -> None:
    """Creates a private compacted zones topic and publishes a snapshot per zone."""
    await ensure_topics(
        settings,
        topics=[
            catalogue.Topic(
                name=topic,
                key="zone code",
                value="ZoneSnapshot",
                producer="test",
                consumers=(),
                partitions=1,
                cleanup_policy="compact",
                description="",
            )
        ],
    )
    producer = new_producer(settings)
    await producer.start()
    try:
        for code, names in zones.items():
            await publish_event(
                producer, topic=topic, key=code, source="test",
                event=zone_snapshot(code, names=names),
            )
    finally:
        await producer.stop()
