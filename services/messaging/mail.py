"""Coordinators' mail without I/O: audiences, attachments, relay addresses, footers.

A mail is an alert of low urgency on the e-mail channel only, addressed by role:
a coordinator writes to every member of their BIN, zone staff to the coordinators
or the cyber advisers of their zone, an operator to the coordinators of a province.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from email.message import Message
from typing import Literal

from PIL import Image, UnidentifiedImageError

AudienceKind = Literal[
    "bin", "zone_coordinators", "zone_cyber_advisers", "province_coordinators"
]
URGENCY = "Future"
MAIL_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
RELAY_LOCAL_PREFIX = "reply+"


@dataclass(frozen=True)
class Audience:
    """Whom a kind of mail reaches, who may send it, and as which category."""

    senders: tuple[str, ...]
    roles: tuple[str, ...]
    category: str
    scope: Literal["bin", "zone", "province"]


AUDIENCES: dict[str, Audience] = {
    "bin": Audience(("coordinator",), (), "coordinator_mail", "bin"),
    "zone_coordinators": Audience(
        ("zone", "operator"), ("coordinator",), "coordinator_mail", "zone"
    ),
    "zone_cyber_advisers": Audience(
        ("zone", "operator"), ("cyber_adviser",), "fraud_wave", "zone"
    ),
    "province_coordinators": Audience(
        ("operator",), ("coordinator",), "coordinator_mail", "province"
    ),
}


def sender_problem(*, role: str, scope: str, kind: str, value: str) -> str | None:
    """Why a caller may not write to an audience, or None when they may."""
    audience = AUDIENCES[kind]
    if role not in audience.senders:
        return f"{role} tokens cannot write to the audience {kind}"
    if role in ("coordinator", "zone") and value != scope:
        return f"the {audience.scope} {value} is not yours"
    return None


# --- Attachments ---------------------------------------------------------------

IMAGE_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "GIF": "image/gif",
    "WEBP": "image/webp",
}
PDF_TYPE = "application/pdf"
ALLOWED_TYPES = (PDF_TYPE, *IMAGE_TYPES.values())
FILENAME_MAX = 200


def sniff_content_type(data: bytes) -> str | None:
    """The type the bytes really are, when it is a PDF or an image we accept."""
    if data.startswith(b"%PDF-"):
        # A PDF ends with %%EOF, give or take a line break or some trailing bytes.
        return PDF_TYPE if b"%%EOF" in data[-1024:] else None
    try:
        with warnings.catch_warnings():
            # A decompression bomb is refused, not merely warned about.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                found = image.format
                image.verify()
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        OSError,
        SyntaxError,
        ValueError,
    ):
        return None
    return IMAGE_TYPES.get(found or "")


def clean_filename(name: str) -> str | None:
    """The name without any folder part, or None when nothing usable is left."""
    base = re.split(r"[\\/]", name)[-1].strip()
    if not base or base in (".", "..") or len(base) > FILENAME_MAX:
        return None
    if any(ord(ch) < 32 or ord(ch) == 127 or ch in '"' for ch in base):
        return None
    return base


def attachment_problems(
    *, filename: str, declared_type: str | None, data: bytes
) -> tuple[str | None, list[tuple[str, str]]]:
    """The attachment's real type, and (field, reason) pairs for what is wrong."""
    problems: list[tuple[str, str]] = []
    if clean_filename(filename) is None:
        problems.append(("filename", "is empty, too long or has control characters"))
    found = sniff_content_type(data)
    if found is None:
        problems.append(("content", "is neither a PDF nor a PNG, JPEG, GIF or WebP"))
    elif declared_type and declared_type.lower() != found:
        problems.append(("content_type", f"the content is {found}"))
    return found, problems


# --- Addresses and links ---------------------------------------------------------


def relay_address(*, mail_id: str, domain: str) -> str:
    """The platform's address that replies to one mail go to."""
    return f"{RELAY_LOCAL_PREFIX}{mail_id}@{domain}"


def mail_id_of(address: str, *, domain: str) -> str | None:
    """The mail a relay address stands for; None for any other address."""
    local, at, host = address.strip().strip("<>").rpartition("@")
    if not at or host.lower() != domain.lower():
        return None
    local = local.lower()
    if not local.startswith(RELAY_LOCAL_PREFIX):
        return None
    mail_id = local[len(RELAY_LOCAL_PREFIX) :]
    return mail_id if MAIL_ID.match(mail_id) else None


def is_relay_domain(address: str, *, domain: str) -> bool:
    """Whether an address lies in the relay's domain (known mail or not)."""
    return address.strip().strip("<>").rpartition("@")[2].lower() == domain.lower()


def unsubscribe_url(*, base_url: str, token: str) -> str:
    """The registry's one-click unsubscribe link for a token."""
    return f"{base_url.rstrip('/')}/v1/unsubscribe/{token}"


UNSUBSCRIBE_LINE = {
    "nl": "Geen e-mails van je BIN meer ontvangen? Schrijf je hier uit:",
    "fr": "Ne plus recevoir d'e-mails de votre PLP ? Désinscrivez-vous ici :",
    "de": "Keine E-Mails Ihres BIN mehr erhalten? Hier abmelden:",
    "en": "No more e-mails from your BIN? Unsubscribe here:",
}


def with_footer(body: str, *, language: str, link: str) -> str:
    """The mail's text with the unsubscribe link under a signature separator."""
    line = UNSUBSCRIBE_LINE.get(language, UNSUBSCRIBE_LINE["en"])
    return f"{body.rstrip()}\n\n-- \n{line}\n{link}\n"


# --- Replies -----------------------------------------------------------------------

REPLY_INTRO = {
    "nl": "Een lid van je BIN antwoordde op je bericht.",
    "fr": "Un membre de votre PLP a répondu à votre message.",
    "de": "Ein Mitglied Ihres BIN hat auf Ihre Nachricht geantwortet.",
    "en": "A member of your BIN replied to your message.",
}
ADDRESS_WITHHELD = {
    "nl": "Het lid deelt zijn e-mailadres niet met de coördinatoren.",
    "fr": "Ce membre ne partage pas son adresse e-mail avec les coordinateurs.",
    "de": "Das Mitglied teilt seine E-Mail-Adresse nicht mit den Koordinatoren.",
    "en": "The member does not share their e-mail address with coordinators.",
}
ADDRESS_SHARED = {
    "nl": "Het lid deelt zijn e-mailadres:",
    "fr": "Ce membre partage son adresse e-mail :",
    "de": "Das Mitglied teilt seine E-Mail-Adresse:",
    "en": "The member shares their e-mail address:",
}
NO_REPLIES = (
    "550 5.7.1 This message from the police takes no replies; "
    "contact your police zone through its usual channels"
)
UNKNOWN_RELAY = "550 5.1.1 No such relay address"


def forwarded_reply(
    *, subject: str, text: str, language: str, shared_address: str | None
) -> tuple[str, str]:
    """Subject and body of a member's reply as the coordinator receives it."""
    intro = REPLY_INTRO.get(language, REPLY_INTRO["en"])
    if shared_address:
        line = f"{ADDRESS_SHARED.get(language, ADDRESS_SHARED['en'])} {shared_address}"
    else:
        line = ADDRESS_WITHHELD.get(language, ADDRESS_WITHHELD["en"])
    subject = re.sub(r"\s+", " ", subject).strip() or "(no subject)"
    if not subject.lower().startswith("re:"):
        subject = f"Re: {subject}"
    return subject, f"{intro}\n{line}\n\n{text.strip()}\n"


def plain_text(message: Message) -> str:
    """The first text/plain part of a message, decoded; empty when there is none."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                charset = part.get_content_charset() or "utf-8"
                try:
                    return payload.decode(charset, errors="replace")
                except LookupError:
                    return payload.decode("utf-8", errors="replace")
    return ""


def withhold(text: str, *, address: str | None, unsubscribe_base: str) -> str:
    """The text without the member's address (when withheld) or unsubscribe links.

    A reply mostly quotes the mail it answers, whose unsubscribe link would let the
    coordinator unsubscribe the member, and its "x@y wrote:" line names the member.
    """
    link = re.escape(unsubscribe_base.rstrip("/")) + r"/v1/unsubscribe/\S+"
    text = re.sub(link, "[link removed]", text)
    if address:
        text = re.sub(
            re.escape(address.strip()), "[address withheld]", text, flags=re.I
        )
    return text
