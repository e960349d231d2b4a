"""Reading alerts sent as CAP 1.2 XML: safe parsing, schema validation, mapping.

Pure apart from reading the schema file, which is compiled once per path.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal, TypeVar, get_args

from lxml import etree

from shared.events import (
    AlertAccepted,
    AlertCategory,
    AlertTarget,
    AlertText,
    Channel,
    Language,
)

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
MAX_DOCUMENT_BYTES = 256 * 1024
CATEGORY_PARAMETER = "BIN-category"
CHANNELS_PARAMETER = "BIN-channels"
NIS_GEOCODE = "NIS"
BIN_GEOCODE = "BIN"

LANGUAGES: tuple[Language, ...] = get_args(Language)
CHANNELS: tuple[Channel, ...] = get_args(Channel)
# A police zone never sends coordinator mail through CAP.
POLICE_CATEGORIES = tuple(c for c in get_args(AlertCategory) if c != "coordinator_mail")
T = TypeVar("T")
ACTIONS = {"Alert": "alert", "Update": "update", "Cancel": "cancel"}

# Word stems of a CAP <event> in our four languages; checked in this order so that
# a "suspicious burglary" is a burglary and a "missing person, suspect seen" is a
# missing person.
EVENT_STEMS: tuple[tuple[AlertCategory, tuple[str, ...]], ...] = (
    (
        "missing_person",
        (
            "vermist",
            "vermiss",
            "ontvoer",
            "disparu",
            "disparition",
            "enlève",
            "enlev",
            "entführ",
            "missing",
            "abduct",
        ),
    ),
    (
        "drug_related",
        ("drug", "drog", "cannabis", "plantage", "plantation", "narco"),
    ),
    (
        "fraud_wave",
        (
            "phishing",
            "smishing",
            "fraud",
            "oplicht",
            "escroq",
            "arnaque",
            "betrug",
            "scam",
        ),
    ),
    (
        "burglary",
        ("inbra", "inbrek", "cambriol", "einbruch", "einbrech", "burglar", "break-in"),
    ),
    (
        "suspicious_behaviour",
        ("verdacht", "verdächt", "suspect", "suspicious"),
    ),
)

_SAFE_PARSER_OPTIONS = dict(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_pis=True,
)


class CapError(ValueError):
    """A CAP document that cannot be accepted; the message is safe to return."""


@dataclass(frozen=True)
class ParsedAlert:
    """What the product takes from one CAP alert."""

    identifier: str
    sender: str
    sent: datetime
    status: str
    action: Literal["alert", "update", "cancel"]
    references: list[str]
    category: AlertCategory
    urgency: str
    severity: str
    texts: dict[Language, AlertText]
    expires: datetime | None
    channels: list[Channel]
    target: AlertTarget
    skipped_languages: list[str] = field(default_factory=list)


def _safe_parser() -> etree.XMLParser:
    return etree.XMLParser(**_SAFE_PARSER_OPTIONS)


@lru_cache(maxsize=8)
def _schema(path: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(path, _safe_parser()))


def load_schema(*, schema_path: Path | str) -> etree.XMLSchema:
    """Return the compiled CAP schema at this path, compiling it once per path."""
    return _schema(str(Path(schema_path).resolve()))


def parse_cap(
    document: bytes, *, schema_path: Path | str, max_bytes: int = MAX_DOCUMENT_BYTES
) -> ParsedAlert:
    """Parse, validate and map one CAP 1.2 document, or raise CapError."""
    root = _parse_xml(document, max_bytes=max_bytes)
    schema = load_schema(schema_path=schema_path)
    if not schema.validate(root):
        raise CapError(_schema_reason(schema.error_log))
    return _map_alert(root)


def _parse_xml(document: bytes, *, max_bytes: int) -> etree._Element:
    if len(document) > max_bytes:
        raise CapError(f"document is larger than {max_bytes} bytes")
    try:
        root = etree.fromstring(document, _safe_parser())
    except etree.XMLSyntaxError as exc:
        raise CapError(f"not well-formed XML at line {exc.lineno}") from None
    # CAP needs no DTD; refusing any DOCTYPE stops entity expansion (billion
    # laughs) and external entities (XXE) before anything reads the tree.
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise CapError("DOCTYPE declarations are not allowed")
    return root


_ELEMENT = re.compile(r"^Element '(?:\{[^}]*\})?([^']+)'")
_EXPECTED = re.compile(r"\{[^}]*\}([\w.-]+)")


def _schema_reason(error_log: etree._ListErrorLog) -> str:
    """Describe the first schema error by line and element name, never by value."""
    error = error_log[0]
    message = error.message or ""
    match = _ELEMENT.match(message)
    where = f"line {error.line}"
    if match is None:
        return f"{where}: the document is not a CAP 1.2 alert"
    element = match.group(1)
    kind = error.type_name
    if kind == "SCHEMAV_ELEMENT_CONTENT" or "Missing child" in message:
        expected = _EXPECTED.findall(message.partition("Expected is")[2])
        problem = (
            "missing child element(s)"
            if "Missing child" in message
            else "element is not expected here"
        )
        if expected:
            problem += "; expected " + " or ".join(f"<{name}>" for name in expected)
        return f"{where}: <{element}>: {problem}"
    if kind == "SCHEMAV_CVC_ENUMERATION_VALID":
        allowed = message.partition("set ")[2].rstrip(".")
        return f"{where}: <{element}>: value is not one of {allowed}"
    if kind.startswith("SCHEMAV_CVC_DATATYPE") or "PATTERN" in kind:
        return f"{where}: <{element}>: value is not valid for its type"
    if kind == "SCHEMAV_CVC_ELT_1":
        return f"{where}: the document is not a CAP 1.2 alert"
    return f"{where}: <{element}>: does not match the CAP 1.2 schema"


def _child(parent: etree._Element, name: str) -> etree._Element | None:
    return parent.find(f"{{{CAP_NS}}}{name}")


def _children(parent: etree._Element, name: str) -> list[etree._Element]:
    return parent.findall(f"{{{CAP_NS}}}{name}")


def _text(parent: etree._Element, name: str) -> str | None:
    node = _child(parent, name)
    if node is None or node.text is None:
        return None
    return node.text.strip()


def _pairs(parent: etree._Element, name: str) -> list[tuple[str, str]]:
    """Return the (valueName, value) pairs of <parameter>, <geocode> or <eventCode>."""
    return [
        ((_text(node, "valueName") or ""), (_text(node, "value") or ""))
        for node in _children(parent, name)
    ]


def map_language(tag: str | None) -> Language | None:
    """Map an RFC 3066 tag (nl-BE, fr-BE, de-BE, en-US) to ours, or None."""
    # CAP's schema declares en-US as the default of an absent <language>.
    primary = (tag or "en-US").split("-")[0].strip().lower()
    return primary if primary in LANGUAGES else None  # type: ignore[return-value]


def _map_alert(root: etree._Element) -> ParsedAlert:
    identifier = _text(root, "identifier") or ""
    msg_type = _text(root, "msgType") or ""
    if msg_type not in ACTIONS:
        raise CapError(f"msgType {msg_type} is not an alert, update or cancel")
    action = ACTIONS[msg_type]
    references = parse_references(_text(root, "references"))
    if action != "alert" and not references:
        raise CapError(f"a {msg_type} must name the alert it refers to in <references>")

    infos: list[tuple[Language, etree._Element]] = []
    skipped: list[str] = []
    for info in _children(root, "info"):
        tag = _text(info, "language")
        language = map_language(tag)
        if language is None:
            # LIMITATION: texts in other languages are dropped because members
            # can only choose nl, fr, de or en.
            skipped.append(tag or "")
            continue
        if any(language == seen for seen, _ in infos):
            raise CapError(f"two <info> blocks are in language {language}")
        infos.append((language, info))
    if not infos:
        raise CapError("no <info> block is in nl, fr, de or en")

    texts = {language: _info_text(info) for language, info in infos}
    blocks = [info for _, info in infos]
    return ParsedAlert(
        identifier=identifier,
        sender=_text(root, "sender") or "",
        sent=datetime.fromisoformat(_text(root, "sent") or ""),
        status=_text(root, "status") or "",
        action=action,  # type: ignore[arg-type]
        references=references,
        category=_category(blocks),
        urgency=_agreed(blocks, "urgency", lambda b: _text(b, "urgency") or ""),
        severity=_agreed(blocks, "severity", lambda b: _text(b, "severity") or ""),
        texts=texts,
        expires=_agreed(blocks, "expires", _expires),
        channels=_agreed(blocks, "channels", _channels),
        target=_agreed(blocks, "area", _target),
        skipped_languages=skipped,
    )


def parse_references(value: str | None) -> list[str]:
    """Return the identifiers of CAP references ('sender,identifier,sent' ...)."""
    identifiers = []
    for triple in (value or "").split():
        parts = triple.split(",")
        if len(parts) != 3 or not parts[1]:
            raise CapError("<references> must hold sender,identifier,sent triples")
        identifiers.append(parts[1])
    return identifiers


def _info_text(info: etree._Element) -> AlertText:
    headline = _text(info, "headline") or _text(info, "event") or ""
    paragraphs = [
        part
        for part in (_text(info, "description"), _text(info, "instruction"))
        if part
    ]
    return AlertText(headline=headline, body="\n\n".join(paragraphs) or headline)


def _agreed(
    blocks: list[etree._Element], what: str, read: Callable[[etree._Element], T]
) -> T:
    """Read one alert-wide value from every <info> block; they must agree."""
    values = [read(block) for block in blocks]
    if any(value != values[0] for value in values[1:]):
        raise CapError(f"the <info> blocks disagree on {what}")
    return values[0]


def _category(blocks: list[etree._Element]) -> AlertCategory:
    """Take BIN-category if a block has it, else the first event word we know."""
    for block in blocks:
        for name, value in _pairs(block, "parameter"):
            if name == CATEGORY_PARAMETER:
                if value not in POLICE_CATEGORIES:
                    allowed = ", ".join(POLICE_CATEGORIES)
                    raise CapError(f"{CATEGORY_PARAMETER} must be one of {allowed}")
                return value  # type: ignore[return-value]
    for block in blocks:
        event = (_text(block, "event") or "").lower()
        for category, stems in EVENT_STEMS:
            if any(stem in event for stem in stems):
                return category
    # CAP's own categories (Security, Rescue, Met...) are too broad to say more.
    return "general_information"


def _expires(block: etree._Element) -> datetime | None:
    value = _text(block, "expires")
    return datetime.fromisoformat(value) if value else None


def _channels(block: etree._Element) -> list[Channel]:
    for name, value in _pairs(block, "parameter"):
        if name == CHANNELS_PARAMETER:
            chosen = [part.strip().lower() for part in value.split(",") if part.strip()]
            unknown = sorted(set(chosen) - set(CHANNELS))
            if unknown or not chosen:
                allowed = ", ".join(CHANNELS)
                raise CapError(f"{CHANNELS_PARAMETER} must list some of {allowed}")
            return [c for c in CHANNELS if c in chosen]
    return list(CHANNELS)


def _target(block: etree._Element) -> AlertTarget:
    """Return the municipalities or BINs named by geocodes, else the whole zone."""
    municipalities: list[str] = []
    bins: list[str] = []
    for area in _children(block, "area"):
        for name, value in _pairs(area, "geocode"):
            if name == NIS_GEOCODE:
                if not re.fullmatch(r"\d{5}", value):
                    raise CapError("a NIS geocode must be five digits")
                municipalities.append(value)
            elif name == BIN_GEOCODE and value:
                bins.append(value)
    if municipalities and bins:
        raise CapError("an alert targets either municipalities or BINs, not both")
    if bins:
        return AlertTarget(kind="bins", values=sorted(set(bins)))
    if municipalities:
        return AlertTarget(kind="municipalities", values=sorted(set(municipalities)))
    # LIMITATION: polygons and circles are not matched against BIN territories
    # because BINs are known by statistical sectors, not shapes; such an alert
    # goes to the whole zone.
    return AlertTarget(kind="zone", values=[])


def to_event(
    parsed: ParsedAlert,
    *,
    zone: str,
    accepted_at: datetime,
    default_validity: timedelta = timedelta(hours=24),
) -> AlertAccepted:
    """Build the accepted-alert event of a parsed CAP alert for one zone."""
    return AlertAccepted(
        alert_id=parsed.identifier,
        zone=zone,
        action=parsed.action,
        # LIMITATION: the event carries one reference because its schema has one
        # field; CAP lists the chain oldest first, so the latest is kept.
        references=parsed.references[-1] if parsed.references else None,
        category=parsed.category,
        urgency=parsed.urgency,
        severity=parsed.severity,
        texts=parsed.texts,
        channels=parsed.channels,
        target=parsed.target,
        expires_at=parsed.expires or accepted_at + default_validity,
        accepted_at=accepted_at,
    )
