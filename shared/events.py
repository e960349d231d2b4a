"""The versioned event schemas carried on the catalogue's topics.

Each model names its CloudEvents `type`; a breaking change makes a new model and a
new topic version, an additive change keeps both.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

Language = Literal["nl", "fr", "de", "en"]
Channel = Literal["sms", "email", "voice", "app"]
BinKind = Literal["residential", "business", "farming"]
BinStatus = Literal["proposed", "active", "dormant", "dissolved"]
Role = Literal["member", "coordinator", "cyber_adviser"]
MembershipStatus = Literal["active", "withdrawn", "left", "erased"]
ListingKind = Literal["coordinator", "police_contact", "prevention_officer"]
ListedField = Literal["name", "email", "phone"]
AlertCategory = Literal[
    "burglary",
    "suspicious_behaviour",
    "missing_person",
    "fraud_wave",
    "drug_related",
    "general_information",
    "coordinator_mail",
]
ReportCategory = Literal["plantation", "laboratory", "waste_dumping", "other"]


class Event(BaseModel):
    """Base of every event body: strict about unknown fields' types, open to new ones."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    EVENT_TYPE: ClassVar[str]
    TOPIC: ClassVar[str]


class Municipality(BaseModel):
    """A municipality of a zone, with its NIS code and names."""

    model_config = ConfigDict(frozen=True)
    nis: str
    name_nl: str
    name_fr: str | None = None
    name_de: str | None = None


class ZoneSnapshot(Event):
    """A police zone with its municipalities and territory units."""

    EVENT_TYPE: ClassVar[str] = "be.bin.registry.zone.v1"
    TOPIC: ClassVar[str] = "registry.zones.v1"
    zone: str
    name: str
    province_nis: str
    province_name: str
    municipalities: list[Municipality]
    units: list[str] = Field(description="statistical sector codes of the zone")
    version: int


class BinSnapshot(Event):
    """A BIN's full current state."""

    EVENT_TYPE: ClassVar[str] = "be.bin.registry.bin.v1"
    TOPIC: ClassVar[str] = "registry.bins.v1"
    bin_id: str
    zone: str
    name: str
    kind: BinKind
    status: BinStatus
    territory: list[str]
    coordinators: list[str] = []
    founded_on: date | None = None
    version: int
    updated_at: datetime


class MembershipSnapshot(Event):
    """Who is in which BIN, with role, channels and language: no contact details."""

    EVENT_TYPE: ClassVar[str] = "be.bin.registry.membership.v1"
    TOPIC: ClassVar[str] = "registry.memberships.v1"
    member_id: str
    bin_id: str
    zone: str
    role: Role
    status: MembershipStatus
    language: Language
    channels: list[Channel]
    # Additive: whether the member lets their BIN's coordinators see their e-mail.
    shares_email_with_coordinator: bool = False
    version: int
    updated_at: datetime


class Sealed(BaseModel):
    """A value encrypted with AES-GCM; `key_id` names the key so keys can rotate."""

    model_config = ConfigDict(frozen=True)
    key_id: str
    nonce: str
    ciphertext: str


class ContactsSnapshot(Event):
    """A member's addresses per channel, sealed as one encrypted JSON object."""

    EVENT_TYPE: ClassVar[str] = "be.bin.registry.contacts.v1"
    TOPIC: ClassVar[str] = "registry.contacts.v1"
    member_id: str
    contacts: Sealed
    version: int


class DirectoryListing(Event):
    """One BIN actor in the directory: where they act and their listed details, sealed.

    The key is the listing id (`coordinator:<member id>`, `police:<BIN id>`,
    `prevention:<NIS code>`); a tombstone when the actor leaves the directory.
    """

    EVENT_TYPE: ClassVar[str] = "be.bin.registry.directory-listing.v1"
    TOPIC: ClassVar[str] = "registry.directory-listings.v1"
    listing_id: str
    kind: ListingKind
    zone: str
    bin_id: str | None = None
    municipality_nis: str | None = None
    member_id: str | None = None
    fields: list[ListedField] = Field(description="the contact fields listed, sealed")
    details: Sealed
    version: int
    updated_at: datetime


class AlertText(BaseModel):
    """The text of an alert in one language."""

    model_config = ConfigDict(frozen=True)
    headline: str
    body: str


class AttachmentRef(BaseModel):
    """An attachment of a mail: messaging keeps its bytes, events carry this."""

    model_config = ConfigDict(frozen=True)
    attachment_id: str
    filename: str
    content_type: str
    size: int


class MailDetails(BaseModel):
    """What makes an alert a mail: who wrote it, its relay address, its attachments."""

    model_config = ConfigDict(frozen=True)
    sender: Literal["coordinator", "zone", "operator"]
    bin_id: str | None = None
    province_nis: str | None = None
    reply_to: str
    attachments: list[AttachmentRef] = []


class AlertTarget(BaseModel):
    """Whom an alert is for: a whole zone, some municipalities or some BINs."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["zone", "municipalities", "bins"]
    values: list[str] = []


class AlertAccepted(Event):
    """An alert, update or cancellation accepted from a police zone."""

    EVENT_TYPE: ClassVar[str] = "be.bin.messaging.alert.v1"
    TOPIC: ClassVar[str] = "messaging.alerts.v1"
    alert_id: str
    zone: str
    action: Literal["alert", "update", "cancel"]
    references: str | None = None
    category: AlertCategory
    urgency: str
    severity: str
    texts: dict[Language, AlertText]
    channels: list[Channel]
    target: AlertTarget
    expires_at: datetime
    accepted_at: datetime
    # Only members with one of these roles get it; empty means every member.
    roles: list[Role] = []
    mail: MailDetails | None = None


class AlertForBin(Event):
    """Internal: an accepted alert addressed to one BIN (fan-out stage 1)."""

    EVENT_TYPE: ClassVar[str] = "be.bin.messaging.alert-bin.v1"
    TOPIC: ClassVar[str] = "messaging.alert-bins.v1"
    alert_id: str
    bin_id: str
    zone: str
    action: Literal["alert", "update", "cancel"]
    category: AlertCategory
    urgency: str
    texts: dict[Language, AlertText]
    channels: list[Channel]
    roles: list[Role] = []
    expires_at: datetime
    accepted_at: datetime
    mail: MailDetails | None = None


class Delivery(Event):
    """One message to one member on one channel."""

    EVENT_TYPE: ClassVar[str] = "be.bin.messaging.delivery.v1"
    TOPIC: ClassVar[str] = "messaging.deliveries.{channel}.v1"
    idempotency_key: str
    alert_id: str
    member_id: str
    bin_id: str
    zone: str
    channel: Channel
    fallbacks: list[Channel] = []
    language: Language
    category: AlertCategory
    urgency: str
    text: AlertText
    address: Sealed
    expires_at: datetime
    accepted_at: datetime
    mail: MailDetails | None = None


class DeliveryStatus(Event):
    """What happened to one delivery: handed over, failed, given up or cancelled."""

    EVENT_TYPE: ClassVar[str] = "be.bin.messaging.delivery-status.v1"
    TOPIC: ClassVar[str] = "messaging.delivery-status.v1"
    alert_id: str
    member_id: str
    zone: str
    channel: Channel
    status: Literal["pending", "handed_over", "failed", "gave_up", "cancelled"]
    attempt: int = 0
    reason: str | None = None
    segments: int | None = None
    accepted_at: datetime
    at: datetime


class DeliveriesPending(Event):
    """The deliveries the fan-out wrote for one BIN of an alert, pending until a
    sender reports on them: one record for up to a few thousand deliveries, where
    a DeliveryStatus per delivery would double what the fan-out writes."""

    EVENT_TYPE: ClassVar[str] = "be.bin.messaging.deliveries-pending.v1"
    TOPIC: ClassVar[str] = "messaging.delivery-status.v1"
    alert_id: str
    zone: str
    bin_id: str
    # channel -> the ids of the members a delivery on that channel was written for
    members: dict[Channel, list[str]]
    accepted_at: datetime
    at: datetime


class ReportSubmitted(Event):
    """An anonymous report: nothing that could identify the reporter."""

    EVENT_TYPE: ClassVar[str] = "be.bin.reports.submitted.v1"
    TOPIC: ClassVar[str] = "reports.submitted.v1"
    report_id: str
    zone: str | None
    province_nis: str | None
    municipality_nis: str | None
    category: ReportCategory
    submitted_hour: datetime


class ReportStatusChanged(Event):
    """A triage status change of a report."""

    EVENT_TYPE: ClassVar[str] = "be.bin.reports.status.v1"
    TOPIC: ClassVar[str] = "reports.status.v1"
    report_id: str
    zone: str | None
    category: ReportCategory
    status: Literal["received", "under_review", "forwarded", "closed"]
    outcome: str | None = None
    changed_hour: datetime


class CoverageFigures(Event):
    """The figures every coverage record carries, for a zone or a wider area."""

    active_bins: int
    active_bins_by_kind: dict[str, int]
    active_members: int
    units_total: int
    units_covered: int
    coverage_ratio: float
    updated_at: datetime


class ZoneCoverage(CoverageFigures):
    """Live coverage of one police zone."""

    EVENT_TYPE: ClassVar[str] = "be.bin.analytics.zone-coverage.v1"
    TOPIC: ClassVar[str] = "analytics.coverage.v1"
    zone: str
    name: str
    province_nis: str
    fully_covered: bool


class AreaCoverage(CoverageFigures):
    """Coverage summed over a province, or over the country (`BE`)."""

    EVENT_TYPE: ClassVar[str] = "be.bin.analytics.area-coverage.v1"
    TOPIC: ClassVar[str] = "analytics.coverage-province.v1"
    area: str
    name: str
    zones: int
    fully_covered_zones: list[str]


EVENT_MODELS: tuple[type[Event], ...] = (
    ZoneSnapshot,
    BinSnapshot,
    MembershipSnapshot,
    ContactsSnapshot,
    DirectoryListing,
    AlertAccepted,
    AlertForBin,
    Delivery,
    DeliveryStatus,
    DeliveriesPending,
    ReportSubmitted,
    ReportStatusChanged,
    ZoneCoverage,
    AreaCoverage,
)
BY_TYPE = {model.EVENT_TYPE: model for model in EVENT_MODELS}
BY_NAME = {model.__name__: model for model in EVENT_MODELS}
