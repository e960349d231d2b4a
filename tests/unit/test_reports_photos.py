"""Unit tests of photo intake: only real JPEG/PNG, re-encoded without metadata."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image, ImageCms, PngImagePlugin

from services.reports import photos
from services.reports.photos import PhotoRejected

GPS_IFD = 0x8825
EXIF_IFD = 0x8769
ORIENTATION = 0x0112


def _srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def jpeg_with_metadata(*, size=(64, 32), orientation: int | None = None) -> bytes:
    """Builds a JPEG carrying EXIF with GPS, XMP, an ICC profile and a comment."""
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"
    exif[0x0110] = "Model-Serial-12345"
    if orientation:
        exif[ORIENTATION] = orientation
    gps = exif.get_ifd(GPS_IFD)
    gps[1] = "N"
    gps[2] = (51.0, 13.0, 7.5)
    gps[3] = "E"
    gps[4] = (4.0, 24.0, 1.25)
    exif.get_ifd(EXIF_IFD)[0x9003] = "2026:03:14 15:09:26"
    image = Image.new("RGB", size, (200, 30, 30))
    out = io.BytesIO()
    image.save(
        out,
        format="JPEG",
        exif=exif.tobytes(),
        icc_profile=_srgb_profile(),
        comment=b"taken at my home",
        xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/">GPSLatitude 51,13</x:xmpmeta>',
    )
    return out.getvalue()


def png_with_metadata(mode: str = "RGBA") -> bytes:
    """Builds a PNG carrying tEXt, zTXt and iTXt chunks, EXIF and an ICC profile."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jan Janssens")
    info.add_text("Comment", "my address", zip=True)
    info.add_itxt("Description", "GPS 51.2194 4.4025", lang="nl", tkey="Beschrijving")
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"
    image = Image.new(mode, (20, 10), (0, 128, 255, 128) if mode == "RGBA" else 0)
    out = io.BytesIO()
    image.save(
        out,
        format="PNG",
        pnginfo=info,
        exif=exif.tobytes(),
        icc_profile=_srgb_profile(),
    )
    return out.getvalue()


def png_chunks(data: bytes) -> list[bytes]:
    """Lists the chunk types of a PNG file."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, kinds = 8, []
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kinds.append(data[position + 4 : position + 8])
        position += 12 + length
    return kinds


def jpeg_segments(data: bytes) -> list[int]:
    """Lists the marker bytes of a JPEG's segments up to the start of scan."""
    assert data[:2] == b"\xff\xd8"
    position, markers = 2, []
    while position < len(data):
        marker = data[position + 1]
        markers.append(marker)
        if marker == 0xDA:
            break
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        position += 2 + length
    return markers


def png_header_only(width: int, height: int) -> bytes:
    """Builds a PNG whose header declares a size its data does not have."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


def test_source_jpeg_really_carries_metadata():
    source = Image.open(io.BytesIO(jpeg_with_metadata()))
    assert source.getexif().get_ifd(GPS_IFD)
    assert {"icc_profile", "comment", "exif"} <= set(source.info)
    assert b"xmpmeta" in jpeg_with_metadata()


def test_jpeg_is_re_encoded_without_any_metadata():
    cleaned = photos.clean_photo(jpeg_with_metadata())
    assert cleaned.content_type == "image/jpeg"
    assert (cleaned.width, cleaned.height) == (64, 32)
    image = Image.open(io.BytesIO(cleaned.data))
    assert image.format == "JPEG"
    assert not image.getexif()
    assert not set(image.info) & {"exif", "icc_profile", "comment", "xmp", "photoshop"}
    # Only JFIF (APP0), tables, frame and scan: no APP1 (EXIF/XMP), APP2 (ICC),
    # APP13 (IPTC) or COM segment.
    assert set(jpeg_segments(cleaned.data)) <= {0xE0, 0xDB, 0xC4, 0xC0, 0xC2, 0xDA}
    for needle in (b"Exif", b"SecretCam", b"xmpmeta", b"taken at", b"GPS"):
        assert needle not in cleaned.data
    assert image.getpixel((10, 10))[0] > 150


def test_exif_orientation_is_applied_before_stripping():
    cleaned = photos.clean_photo(jpeg_with_metadata(size=(40, 20), orientation=6))
    assert (cleaned.width, cleaned.height) == (20, 40)


@pytest.mark.parametrize("mode", ["RGBA", "RGB", "L", "P"])
def test_png_is_re_encoded_without_text_chunks(mode):
    source = png_with_metadata(mode)
    assert {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"iCCP"} <= set(png_chunks(source))
    cleaned = photos.clean_photo(source)
    assert cleaned.content_type == "image/png"
    assert set(png_chunks(cleaned.data)) <= {b"IHDR", b"IDAT", b"IEND"}
    for needle in (b"Jan Janssens", b"SecretCam", b"GPS"):
        assert needle not in cleaned.data
    image = Image.open(io.BytesIO(cleaned.data))
    assert not image.text and not image.getexif()
    if mode == "RGBA":
        assert image.mode == "RGBA" and image.getpixel((0, 0))[3] == 128


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "photo_invalid"),
        (b"not an image at all", "photo_type"),
        (b"GIF89a" + b"\x00" * 40, "photo_type"),
        (b"%PDF-1.7\n", "photo_type"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 200, "photo_invalid"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "photo_invalid"),
    ],
)
def test_fake_images_are_refused(data, reason):
    with pytest.raises(PhotoRejected) as caught:
        photos.clean_photo(data)
    assert caught.value.reason == reason


def test_real_gif_and_truncated_files_are_refused():
    gif = io.BytesIO()
    Image.new("RGB", (4, 4)).save(gif, format="GIF")
    with pytest.raises(PhotoRejected, match="photo_type"):
        photos.clean_photo(gif.getvalue())
    truncated = jpeg_with_metadata()[:-200]
    with pytest.raises(PhotoRejected, match="photo_invalid"):
        photos.clean_photo(truncated)
    with pytest.raises(PhotoRejected, match="photo_invalid"):
        photos.clean_photo(png_header_only(8, 8))


def test_oversize_photos_are_refused_before_decoding():
    with pytest.raises(PhotoRejected, match="photo_too_large"):
        photos.clean_photo(b"\xff\xd8\xff" + b"\x00" * photos.MAX_PHOTO_BYTES)
    small = jpeg_with_metadata()
    with pytest.raises(PhotoRejected, match="photo_too_large"):
        photos.clean_photo(small, max_bytes=len(small) - 1)


@pytest.mark.parametrize(
    "size",
    [
        (8000, 8000),  # above our own limit, below Pillow's
        (10000, 10000),  # Pillow's DecompressionBombWarning
        (20000, 20000),  # Pillow's DecompressionBombError
    ],
)
def test_decompression_bombs_are_refused(size):
    with pytest.raises(PhotoRejected, match="photo_too_many_pixels"):
        photos.clean_photo(png_header_only(*size))


def test_pixel_limit_is_a_parameter():
    with pytest.raises(PhotoRejected, match="photo_too_many_pixels"):
        photos.clean_photo(jpeg_with_metadata(), max_pixels=100)


def test_clean_photos_limits_the_count_and_skips_empty_uploads():
    one = jpeg_with_metadata()
    assert len(photos.clean_photos([one, b"", one])) == 2
    with pytest.raises(PhotoRejected, match="photo_too_many"):
        photos.clean_photos([one] * (photos.MAX_PHOTOS + 1))
