"""Delivery rules without I/O: language choice, SMS encoding, keys, pacing, retries."""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from shared.events import AlertText

LANGUAGES = ("nl", "fr", "de", "en")
CHANNELS = ("sms", "email", "voice", "app")

# Whom to fall back to when the alert lacks the member's language. Belgium's
# police zones write in their region's language, so a member mostly misses a
# text from the other community: a Dutch speaker reads English more readily than
# French, a French speaker likewise English before Dutch, a German speaker (East
# Belgium, inside Wallonia) French first, and an English speaker Dutch first
# because most zones sending through the product are Flemish.
LANGUAGE_FALLBACKS: dict[str, tuple[str, ...]] = {
    "nl": ("nl", "en", "fr", "de"),
    "fr": ("fr", "en", "nl", "de"),
    "de": ("de", "fr", "en", "nl"),
    "en": ("en", "nl", "fr", "de"),
}


def choose_language(*, member_language: str, available: Iterable[str]) -> str:
    """Return the member's language if the alert has it, else the best fallback.

    Fallback orders: nl -> en, fr, de; fr -> en, nl, de; de -> fr, en, nl;
    en -> nl, fr, de. A member language outside these four uses the en order.
    """
    present = set(available)
    if not present:
        raise ValueError("the alert has no text in any language")
    order = LANGUAGE_FALLBACKS.get(member_language, LANGUAGE_FALLBACKS["en"])
    if member_language in present:
        return member_language
    for language in order:
        if language in present:
            return language
    return sorted(present)[0]


# GSM 03.38 default alphabet, in code order (0x1B, the escape, is left out).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Reached through the escape, so each costs two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


@dataclass(frozen=True)
class SmsEncoding:
    """How a text goes over SMS: its alphabet, how many parts, how many units."""

    encoding: Literal["GSM-7", "UCS-2"]
    segments: int
    units: int


def is_gsm7(text: str) -> bool:
    """Tell whether every character is in the GSM-7 basic set or its extension."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def _unit_cost(ch: str, encoding: str) -> int:
    if encoding == "GSM-7":
        return 2 if ch in GSM7_EXTENSION else 1
    # UTF-16 code units: characters beyond the BMP (most emoji) take two.
    return 2 if ord(ch) > 0xFFFF else 1


def _encoding_of(text: str) -> Literal["GSM-7", "UCS-2"]:
    return "GSM-7" if is_gsm7(text) else "UCS-2"


def split_sms(text: str) -> list[str]:
    """Split a text into the parts an SMS carries, keeping escapes and pairs whole."""
    if not text:
        return []
    encoding = _encoding_of(text)
    single, part = (
        (GSM7_SINGLE, GSM7_PART) if encoding == "GSM-7" else (UCS2_SINGLE, UCS2_PART)
    )
    costs = [_unit_cost(ch, encoding) for ch in text]
    if sum(costs) <= single:
        return [text]
    # Python strings index by code point, so an escape pair (ESC + char) or a
    # surrogate pair is one element here and can never be cut in two.
    segments: list[str] = []
    start, used = 0, 0
    for index, cost in enumerate(costs):
        if used + cost > part:
            segments.append(text[start:index])
            start, used = index, 0
        used += cost
    segments.append(text[start:])
    return segments


def encode_sms(text: str) -> SmsEncoding:
    """Count the encoding, parts and units (septets or UTF-16 units) of an SMS."""
    encoding = _encoding_of(text)
    units = sum(_unit_cost(ch, encoding) for ch in text)
    return SmsEncoding(encoding=encoding, segments=len(split_sms(text)), units=units)


def delivery_key(*, alert_id: str, member_id: str, channel: str) -> str:
    """Return the stable idempotency key of one alert to one member on one channel."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel}")
    # JSON keeps the parts apart whatever characters an identifier holds; the hash
    # keeps the key short and free of the member id in clear.
    parts = json.dumps([alert_id, member_id, channel], ensure_ascii=False)
    digest = hashlib.sha256(parts.encode("utf-8")).hexdigest()
    return f"dk1-{channel}-{digest}"


def is_replayed_change(*, seq: int | None, held_seq: int | None) -> bool:
    """Tell whether a member's change is no newer than the one a table holds.

    Changes written before they were numbered carry no number and always apply.
    """
    return seq is not None and held_seq is not None and seq <= held_seq


# Why this order: an SMS is read soonest; a voice call reaches members without a
# mobile phone; e-mail is read late; the app cannot tell whether it was seen.
FALLBACK_ORDER = ("sms", "voice", "email", "app")


def fallback_channels(*, chosen: Iterable[str], failed: str) -> list[str]:
    """Return the member's channels to try after `failed` failed for good, in order."""
    if failed not in FALLBACK_ORDER:
        raise ValueError(f"unknown channel {failed}")
    chosen_set = set(chosen)
    later = FALLBACK_ORDER[FALLBACK_ORDER.index(failed) + 1 :]
    return [channel for channel in later if channel in chosen_set]


@dataclass
class Pacer:
    """A token bucket that says how long to wait before sending; time is given."""

    rate_per_s: float
    burst: float = 1.0
    _tokens: float = field(init=False)
    _last: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.rate_per_s <= 0 or self.burst <= 0:
            raise ValueError("rate and burst must be positive")
        self._tokens = self.burst

    def reserve(self, now: float, n: int = 1) -> float:
        """Take n tokens and return the seconds to wait before using them."""
        if n < 1:
            raise ValueError("n must be at least 1")
        if self._last is not None and now > self._last:
            elapsed = now - self._last
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate_per_s)
        # A clock that steps back refills nothing rather than granting extra.
        self._last = now if self._last is None else max(self._last, now)
        self._tokens -= n
        if self._tokens >= 0:
            return 0.0
        # The deficit is a reservation: later callers queue behind this one.
        return -self._tokens / self.rate_per_s


@dataclass
class Backoff:
    """Exponential retry delays with jitter from an injected random source."""

    base_s: float = 1.0
    factor: float = 2.0
    cap_s: float = 300.0
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s < self.base_s or self.factor < 1:
            raise ValueError("need 0 < base_s <= cap_s and factor >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter is a fraction between 0 and 1")

    def ceiling(self, attempt: int) -> float:
        """Return the delay before attempt+1 without jitter, capped."""
        if attempt < 1:
            raise ValueError("attempts count from 1")
        delay = self.base_s
        for _ in range(attempt - 1):
            delay *= self.factor
            if delay >= self.cap_s:
                return self.cap_s
        return min(delay, self.cap_s)

    def delay(self, attempt: int) -> float:
        """Return the seconds to wait after failed attempt number `attempt`."""
        ceiling = self.ceiling(attempt)
        # The fixed share keeps retries apart; the random share spreads a crowd
        # of deliveries that failed together.
        fixed = ceiling * (1 - self.jitter)
        return fixed + self.rng.random() * (ceiling - fixed)


def should_give_up(
    *, first_attempt_at: datetime, now: datetime, give_up_after_s: float
) -> bool:
    """Tell whether a delivery has been retried for longer than allowed."""
    return (now - first_attempt_at).total_seconds() >= give_up_after_s


CATEGORY_LABELS: dict[str, dict[str, str]] = {
    "nl": {
        "burglary": "Inbraak",
        "suspicious_behaviour": "Verdacht gedrag",
        "missing_person": "Vermiste persoon",
        "fraud_wave": "Fraudegolf",
        "drug_related": "Drugs",
        "general_information": "Info",
        "coordinator_mail": "Coördinator",
    },
    "fr": {
        "burglary": "Cambriolage",
        "suspicious_behaviour": "Comportement suspect",
        "missing_person": "Personne disparue",
        "fraud_wave": "Vague de fraude",
        "drug_related": "Drogue",
        "general_information": "Info",
        "coordinator_mail": "Coordinateur",
    },
    "de": {
        "burglary": "Einbruch",
        "suspicious_behaviour": "Verdächtiges Verhalten",
        "missing_person": "Vermisste Person",
        "fraud_wave": "Betrugswelle",
        "drug_related": "Drogen",
        "general_information": "Info",
        "coordinator_mail": "Koordinator",
    },
    "en": {
        "burglary": "Burglary",
        "suspicious_behaviour": "Suspicious behaviour",
        "missing_person": "Missing person",
        "fraud_wave": "Fraud wave",
        "drug_related": "Drugs",
        "general_information": "Info",
        "coordinator_mail": "Coordinator",
    },
}
URGENT_WORD = {"nl": "DRINGEND", "fr": "URGENT", "de": "DRINGEND", "en": "URGENT"}
SMS_MAX_SEGMENTS = 3
SMS_ELLIPSIS = "..."


def _one_line(value: str) -> str:
    return re.sub(r"\s+", " ", value).strip()


def _sentence(value: str) -> str:
    value = _one_line(value)
    return value if not value or value[-1] in ".!?:" else value + "."


def trim_sms(text: str, *, max_segments: int = SMS_MAX_SEGMENTS) -> str:
    """Shorten a text to fit in max_segments SMS parts, cutting at a word."""
    if len(split_sms(text)) <= max_segments:
        return text
    # Cut a character at a time until the text plus the mark fits; the
    # encoding can only get cheaper as characters go, so this ends.
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if len(split_sms(text[:middle].rstrip() + SMS_ELLIPSIS)) <= max_segments:
            low = middle
        else:
            high = middle - 1
    cut = text[:low]
    space = cut.rfind(" ")
    if space > len(cut) // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + SMS_ELLIPSIS


def render_text(
    *,
    channel: str,
    text: AlertText,
    category: str,
    urgency: str,
    language: str | None = None,
    sms_max_segments: int = SMS_MAX_SEGMENTS,
) -> tuple[str | None, str]:
    """Return the subject (or None) and body of an alert on one channel.

    With a language, the e-mail and app subject start with the category's label
    and an Immediate alert is marked urgent on every channel.
    """
    urgent = URGENT_WORD.get(language or "") if urgency == "Immediate" else None
    headline = _one_line(text.headline)
    if channel in ("email", "app"):
        label = CATEGORY_LABELS.get(language or "", {}).get(category)
        subject = f"{label}: {headline}" if label else headline
        if urgent:
            subject = f"{urgent} - {subject}"
        return subject, text.body.strip()
    if channel == "sms":
        body = f"{_sentence(headline)}\n{_one_line(text.body)}"
        if urgent:
            body = f"{urgent}: {body}"
        return None, trim_sms(body, max_segments=sms_max_segments)
    if channel == "voice":
        # Speech engines read sentences; line breaks and doubled spaces only
        # make pauses in odd places.
        spoken = f"{_sentence(headline)} {_sentence(text.body)}"
        if urgent:
            spoken = f"{_sentence(urgent.capitalize())} {spoken}"
        return None, spoken.strip()
    raise ValueError(f"unknown channel {channel}")


# --- Targeting -------------------------------------------------------------


@dataclass(frozen=True)
class BinInfo:
    """What the fan-out and the API know of a BIN: zone, whether it is active, where."""

    bin_id: str
    zone: str
    active: bool
    municipalities: frozenset[str]


def municipalities_of(territory: Iterable[str]) -> frozenset[str]:
    """Return the NIS codes of the municipalities a list of sector codes lies in."""
    # A statistical sector code starts with its municipality's five-digit NIS code.
    return frozenset(unit[:5] for unit in territory if len(unit) >= 5)


def target_problems(
    *,
    kind: str,
    values: Iterable[str],
    zone_municipalities: Iterable[str],
    zone_bins: Iterable[str],
) -> list[str]:
    """Return why a target does not lie inside the sender's zone (empty if it does)."""
    values = list(values)
    if kind == "zone":
        return []
    if not values:
        return [f"a {kind} target needs at least one value"]
    allowed = set(zone_municipalities if kind == "municipalities" else zone_bins)
    what = "municipality" if kind == "municipalities" else "BIN"
    return [
        f"{what} {value} is not in the zone" for value in values if value not in allowed
    ]


def resolve_bins(
    *, kind: str, values: Iterable[str], bins: Iterable[BinInfo]
) -> list[str]:
    """Return the active BINs an alert's target reaches, sorted."""
    wanted = set(values)
    chosen = []
    for info in bins:
        if not info.active:
            continue
        if (
            kind == "zone"
            or (kind == "bins" and info.bin_id in wanted)
            or (kind == "municipalities" and info.municipalities & wanted)
        ):
            chosen.append(info.bin_id)
    return sorted(chosen)


# --- Fan-out -----------------------------------------------------------------

# CAP urgencies that can wait: their e-mails take the low-urgency lane, which the
# sender drains only while no urgent delivery waits.
LOW_URGENCIES = frozenset({"Future", "Past", "Unknown"})


def is_low_urgency(urgency: str) -> bool:
    """Tell whether an alert of this CAP urgency may wait behind urgent ones."""
    return urgency in LOW_URGENCIES


def reaches_role(*, member_role: str, roles: Iterable[str]) -> bool:
    """Tell whether an alert for some roles (none: everyone) reaches a member."""
    wanted = set(roles)
    return not wanted or member_role in wanted


@dataclass(frozen=True)
class MemberPlan:
    """The deliveries one member gets for one alert: channels, fallbacks, language."""

    language: str
    channels: tuple[str, ...]
    fallbacks: dict[str, tuple[str, ...]]


def plan_member(
    *,
    member_channels: Iterable[str],
    member_language: str,
    alert_channels: Iterable[str],
    alert_languages: Iterable[str],
) -> MemberPlan | None:
    """Return what to send to one member, or None when no chosen channel is used.

    The member's channels that the alert uses each get a delivery; after a
    permanent failure the member's other chosen channels that got no delivery are
    tried in FALLBACK_ORDER.
    """
    chosen = [c for c in dict.fromkeys(member_channels) if c in CHANNELS]
    used = set(alert_channels)
    channels = tuple(c for c in chosen if c in used)
    if not channels:
        return None
    fallbacks = {
        channel: tuple(
            c
            for c in fallback_channels(chosen=chosen, failed=channel)
            if c not in channels
        )
        for channel in channels
    }
    language = choose_language(
        member_language=member_language, available=alert_languages
    )
    return MemberPlan(language=language, channels=channels, fallbacks=fallbacks)


# --- Status --------------------------------------------------------------------

STATUS_RANK = {
    "pending": 0,
    "handed_over": 2,
    "failed": 2,
    "gave_up": 2,
    "cancelled": 1,
}
COUNTED_AS = {
    "pending": "pending",
    "handed_over": "handed_over",
    "failed": "failed",
    "gave_up": "failed",
    "cancelled": "cancelled",
}


@dataclass
class AlertBoard:
    """The status of every delivery of one alert, safe under redelivery and reorder."""

    alert_id: str
    zone: str = ""
    accepted_at: datetime | None = None
    deliveries: dict[tuple[str, str], tuple[str, str | None]] = field(
        default_factory=dict
    )
    first_handover_at: datetime | None = None
    last_handover_at: datetime | None = None

    def apply(
        self,
        *,
        member_id: str,
        channel: str,
        status: str,
        at: datetime,
        reason: str | None = None,
    ) -> bool:
        """Record one status report; return whether anything changed.

        A delivery only moves forward (pending, then cancelled, then a final
        outcome), so a report that arrives twice or late changes nothing.
        """
        key = (member_id, channel)
        current = self.deliveries.get(key)
        if current is not None and STATUS_RANK[current[0]] >= STATUS_RANK[status]:
            return False
        self.deliveries[key] = (status, reason)
        if status == "handed_over":
            if self.first_handover_at is None or at < self.first_handover_at:
                self.first_handover_at = at
            if self.last_handover_at is None or at > self.last_handover_at:
                self.last_handover_at = at
        return True

    def summary(self) -> dict[str, object]:
        """Counts per channel and status, times, and failure reasons; no addresses."""
        by_channel: dict[str, dict[str, int]] = {}
        failures: dict[tuple[str, str], int] = {}
        for (_, channel), (status, reason) in self.deliveries.items():
            counts = by_channel.setdefault(
                channel, {"pending": 0, "handed_over": 0, "failed": 0, "cancelled": 0}
            )
            counts[COUNTED_AS[status]] += 1
            if COUNTED_AS[status] == "failed":
                pair = (channel, reason or status)
                failures[pair] = failures.get(pair, 0) + 1
        members = {member for member, _ in self.deliveries}

        def seconds(at: datetime | None) -> float | None:
            if at is None or self.accepted_at is None:
                return None
            return round((at - self.accepted_at).total_seconds(), 3)

        return {
            "alert_id": self.alert_id,
            "zone": self.zone,
            "targeted_members": len(members),
            "by_channel": by_channel,
            "first_handover_at": self.first_handover_at,
            "last_handover_at": self.last_handover_at,
            "seconds_to_first_handover": seconds(self.first_handover_at),
            "seconds_to_last_handover": seconds(self.last_handover_at),
            "failures": [
                {"channel": channel, "reason": reason, "count": count}
                for (channel, reason), count in sorted(failures.items())
            ],
        }


# --- Alert state as the senders see it ----------------------------------------


@dataclass
class AlertState:
    """The latest word on one alert: its texts, whether it was cancelled."""

    texts: dict[str, AlertText]
    cancelled: bool = False
    revision: int = 0


def apply_alert_action(
    states: dict[str, AlertState],
    *,
    alert_id: str,
    action: str,
    references: str | None,
    texts: dict[str, AlertText],
) -> str | None:
    """Fold one accepted alert, update or cancel into the states; the id changed."""
    if action == "alert":
        states.setdefault(alert_id, AlertState(texts=dict(texts)))
        return alert_id
    if references is None:
        return None
    state = states.setdefault(references, AlertState(texts=dict(texts)))
    if action == "cancel":
        state.cancelled = True
    elif action == "update" and texts:
        state.texts = dict(texts)
        state.revision += 1
    return references
