"""The reply relay: members' answers to a coordinator's mail, passed on without leaks.

Every mail carries `Reply-To: reply+<mail id>@<relay domain>`. Mail that reaches that
address is passed to the coordinators of the mail's BIN, at the addresses the
registry's contacts topic holds for them, as a new message from the platform: none
of the reply's own headers travel on, and the replying member's address (also where
the reply's text quotes it) is withheld unless they agreed to share it with their
coordinators. Mail sent by zone staff or an operator takes no replies: its relay
address answers with a permanent bounce that says whom to contact instead.

The relay learns who is who by replaying the memberships, contacts and alerts
topics into memory on every start, like the other views of the service.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from email.message import Message

from services.messaging import mail as mail_rules
from services.messaging.consumers import replay_and_follow
from services.messaging.providers import Outbound, Provider
from services.messaging.settings import MessagingSettings
from shared import crypto
from shared.envelope import Received
from shared.events import (
    AlertAccepted,
    ContactsSnapshot,
    MailDetails,
    MembershipSnapshot,
    Sealed,
)

log = logging.getLogger("bin.messaging.replies")
STARTING = "451 4.3.0 The relay is starting; try again later"
RETRY = "451 4.4.1 The coordinator could not be reached; try again later"
NO_COORDINATOR = "550 5.1.1 This BIN has no coordinator to pass the reply to"
FORWARDED = "250 Reply passed to the coordinators"


@dataclass
class Person:
    """What the relay knows of one member: BIN, role, language, consent, contacts."""

    bin_id: str = ""
    role: str = "member"
    active: bool = False
    language: str = "nl"
    shares_email: bool = False
    contacts: Sealed | None = None


@dataclass
class Directory:
    """Members and mails as the topics tell them, rebuilt on every start."""

    people: dict[str, Person] = field(default_factory=dict)
    mails: dict[str, MailDetails] = field(default_factory=dict)
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)

    def apply(self, received: Received) -> None:
        """Fold one membership, contacts or alert record into the directory."""
        event, key = received.event, received.key or ""
        if isinstance(event, MembershipSnapshot):
            person = self.people.setdefault(key, Person())
            person.bin_id, person.role = event.bin_id, event.role
            person.active = event.status == "active"
            person.language = event.language
            person.shares_email = event.shares_email_with_coordinator
        elif isinstance(event, ContactsSnapshot):
            self.people.setdefault(key, Person()).contacts = event.contacts
        elif isinstance(event, AlertAccepted) and event.mail is not None:
            self.mails.setdefault(event.alert_id, event.mail)
        elif event is None and received.envelope.type == ContactsSnapshot.EVENT_TYPE:
            if key in self.people:
                self.people[key].contacts = None
        elif event is None and received.envelope.type == MembershipSnapshot.EVENT_TYPE:
            self.people.pop(key, None)

    def in_bin(self, bin_id: str) -> dict[str, Person]:
        """The active members of a BIN."""
        return {
            member_id: person
            for member_id, person in self.people.items()
            if person.bin_id == bin_id and person.active
        }


class ReplyRelay:
    """Judges relay addresses and passes replies on to coordinators."""

    def __init__(
        self,
        *,
        settings: MessagingSettings,
        keyring: crypto.KeyRing,
        provider: Provider,
    ) -> None:
        self.settings, self.keyring, self.provider = settings, keyring, provider
        self.domain = settings.mail_relay_domain
        self.directory = Directory()

    def handles(self, address: str) -> bool:
        """Whether an address belongs to the relay rather than to a mailbox."""
        return mail_rules.is_relay_domain(address, domain=self.domain)

    def refusal(self, address: str) -> str | None:
        """The SMTP answer refusing a relay recipient, or None to take the reply."""
        if not self.directory.caught_up.is_set():
            return STARTING
        mail_id = mail_rules.mail_id_of(address, domain=self.domain)
        details = self.directory.mails.get(mail_id or "")
        if details is None:
            return mail_rules.UNKNOWN_RELAY
        if details.sender != "coordinator" or not details.bin_id:
            return mail_rules.NO_REPLIES
        return None

    async def follow(self, stop: asyncio.Event) -> None:
        """Replay and follow memberships, contacts and alerts until `stop` is set."""
        settings = self.settings
        await replay_and_follow(
            settings,
            topics=[
                settings.registry_topic(MembershipSnapshot.TOPIC),
                settings.registry_topic(ContactsSnapshot.TOPIC),
                settings.topic(AlertAccepted.TOPIC),
            ],
            apply=self.directory.apply,
            stop=stop,
            caught_up=self.directory.caught_up,
        )

    def _email_of(self, member_id: str, person: Person) -> str | None:
        """A member's e-mail address, opened from their sealed contacts."""
        if person.contacts is None:
            return None
        try:
            contacts = crypto.open_json(self.keyring, person.contacts, owner=member_id)
        except crypto.SealError:
            return None
        address = contacts.get("email") if isinstance(contacts, dict) else None
        return str(address) if address else None

    async def forward(self, *, address: str, sender: str, message: Message) -> str:
        """Pass one reply to the coordinators of its mail's BIN; the SMTP answer."""
        refused = self.refusal(address)
        if refused:
            return refused
        mail_id = mail_rules.mail_id_of(address, domain=self.domain) or ""
        bin_id = self.directory.mails[mail_id].bin_id or ""
        members = self.directory.in_bin(bin_id)
        coordinators = []
        replying: Person | None = None
        for member_id, person in members.items():
            email = self._email_of(member_id, person)
            if email and email.lower() == sender.strip().lower():
                replying = person
            if person.role == "coordinator" and email:
                coordinators.append((member_id, person, email))
        if not coordinators:
            return NO_COORDINATOR
        shared = sender if replying is not None and replying.shares_email else None
        text = mail_rules.withhold(
            mail_rules.plain_text(message),
            address=None if shared else sender,
            unsubscribe_base=self.settings.registry_public_url,
        )
        reply_key = str(
            message.get("Message-ID") or hashlib.sha256(message.as_bytes()).hexdigest()
        )
        outbound = []
        for member_id, person, email in coordinators:
            subject, body = mail_rules.forwarded_reply(
                subject=str(message.get("Subject", "")),
                text=text,
                language=person.language,
                shared_address=shared,
            )
            digest = hashlib.sha256(
                f"{mail_id}\0{reply_key}\0{member_id}".encode()
            ).hexdigest()
            outbound.append(
                Outbound(
                    key=f"reply-{digest}",
                    alert_id=mail_id,
                    to=email,
                    subject=subject,
                    text=body,
                    reply_to=shared,
                )
            )
        outcomes = await self.provider.send(outbound)
        results = {outcome.result for outcome in outcomes}
        log.info(
            "reply passed on",
            extra={"alert_id": mail_id, "bin_id": bin_id, "count": len(outbound)},
        )
        if results == {"handed_over"}:
            return FORWARDED
        if "temporary" in results:
            return RETRY
        return "550 5.1.1 The coordinator's mailbox refused the reply"
