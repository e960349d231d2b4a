"""Photo intake: only real JPEG and PNG images, re-encoded without any metadata.

Decoding to bare pixels and encoding those again drops everything a camera or an
editor puts beside the pixels: EXIF (with GPS), XMP, IPTC, ICC profiles, JPEG
comments and PNG text chunks. The EXIF orientation is applied to the pixels first
so that the cleaned photo still stands the right way up.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PHOTOS = 3
MAX_PHOTO_BYTES = 5 * 1024 * 1024
# A 50-megapixel phone photo is the largest honest input; a decompression bomb
# declares far more pixels than its few bytes suggest.
MAX_PHOTO_PIXELS = 50_000_000
JPEG_QUALITY = 85

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class PhotoRejected(ValueError):
    """A photo that is refused; `reason` is an i18n key suffix."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CleanPhoto:
    """A re-encoded photo with nothing but pixels in it."""

    content_type: str
    data: bytes
    width: int
    height: int


def _sniff(data: bytes) -> str:
    if data.startswith(_JPEG_MAGIC):
        return "JPEG"
    if data.startswith(_PNG_MAGIC):
        return "PNG"
    raise PhotoRejected("photo_type")


def _decode(data: bytes, expected: str, max_pixels: int) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=[expected])
            width, height = image.size
            if width * height > max_pixels:
                raise PhotoRejected("photo_too_many_pixels")
            image.load()
        except PhotoRejected:
            raise
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise PhotoRejected("photo_too_many_pixels") from exc
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise PhotoRejected("photo_invalid") from exc
    if image.format != expected:
        raise PhotoRejected("photo_invalid")
    return image


def _bare_pixels(image: Image.Image, target: str) -> Image.Image:
    upright = ImageOps.exif_transpose(image)
    if target == "JPEG":
        mode = "L" if upright.mode in {"1", "L", "I;16"} else "RGB"
    else:
        has_alpha = upright.mode in {"RGBA", "LA", "PA"} or (
            upright.mode == "P" and "transparency" in upright.info
        )
        mode = "RGBA" if has_alpha else "RGB"
        if upright.mode in {"1", "L"}:
            mode = "L"
    converted = upright.convert(mode)
    # frombytes builds an image with an empty info dict, so no metadata can ride
    # along into the encoder.
    return Image.frombytes(mode, converted.size, converted.tobytes())


def clean_photo(
    data: bytes,
    *,
    max_bytes: int = MAX_PHOTO_BYTES,
    max_pixels: int = MAX_PHOTO_PIXELS,
) -> CleanPhoto:
    """Validates a JPEG or PNG and returns it re-encoded without metadata."""
    if not data:
        raise PhotoRejected("photo_invalid")
    if len(data) > max_bytes:
        raise PhotoRejected("photo_too_large")
    kind = _sniff(data)
    bare = _bare_pixels(_decode(data, kind, max_pixels), kind)
    out = io.BytesIO()
    if kind == "JPEG":
        bare.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
        content_type = "image/jpeg"
    else:
        bare.save(out, format="PNG", optimize=True)
        content_type = "image/png"
    return CleanPhoto(content_type, out.getvalue(), bare.width, bare.height)


def clean_photos(
    photos: Sequence[bytes],
    *,
    max_photos: int = MAX_PHOTOS,
    max_bytes: int = MAX_PHOTO_BYTES,
    max_pixels: int = MAX_PHOTO_PIXELS,
) -> list[CleanPhoto]:
    """Cleans every photo of a report; empty uploads (no file chosen) are skipped."""
    present = [photo for photo in photos if photo]
    if len(present) > max_photos:
        raise PhotoRejected("photo_too_many")
    return [
        clean_photo(photo, max_bytes=max_bytes, max_pixels=max_pixels)
        for photo in present
    ]
