"""What the registry does, route by route: checks scope, applies rules, stores events."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any, get_args

from pymongo.asynchronous.database import AsyncDatabase

from services.registry import domain, reference, store
from services.registry.settings import RegistrySettings
from shared import outbox
from shared.auth import Principal, forbid, issue_token, require_role, require_zone
from shared.crypto import KeyRing, keyring_from_settings, open_json, seal_json
from shared.events import BinSnapshot, Channel, ContactsSnapshot, DirectoryListing, Sealed
from shared.http import Problem
from shared.links import InvalidLink, read_unsubscribe

BINS_TOPIC = "registry.bins.v1"
ZONES_TOPIC = "registry.zones.v1"
MEMBERSHIPS_TOPIC = "registry.memberships.v1"
CONTACTS_TOPIC = "registry.contacts.v1"
LISTINGS_TOPIC = "registry.directory-listings.v1"
CHANNELS: tuple[str, ...] = get_args(Channel)
# A version conflict on an unsubscribe is retried this often: the link must just work.
UNSUBSCRIBE_ATTEMPTS = 3


def not_found(what: str) -> Problem:
    """The 404 for something that does not exist (or is not yours to know of)."""
    return Problem(404, "Not found", f"No such {what}.")


class Registry:
    """The registry's operations over its database, with its keys."""

    def __init__(self, *, db: AsyncDatabase, settings: RegistrySettings) -> None:
        self.db = db
        self.settings = settings
        self.keyring: KeyRing = keyring_from_settings(
            settings.contacts_keys, settings.contacts_active_key_id
        )
        self.index_secret = settings.blind_index_secret.encode()

    # Reference data -----------------------------------------------------------

    async def import_reference(self, *, directory: Path) -> dict[str, int]:
        """Load zones, municipalities and sectors from CSV files and publish changes."""
        zones = reference.load_zones(directory=directory)
        outcomes = {"created": 0, "changed": 0, "unchanged": 0}
        for zone in zones:
            event_of = _zone_entries(zone)
            document = reference.zone_to_event(zone, 0).model_dump(
                exclude={"version"}, mode="json"
            )
            outcome = await store.save_zone(self.db, zone=document, entries_for=event_of)
            outcomes[outcome] += 1
        await store.save_postcodes(self.db, index=reference.postcode_index(zones))
        return {"zones": len(zones), **outcomes}

    async def list_zones(self, *, province: str | None) -> list[dict[str, Any]]:
        """Zones, optionally of one province."""
        return await store.list_zones(self.db, province=province)

    async def audit_trail(self, *, principal: Principal, target: str | None) -> list:
        """Who read or changed whose data (operators only)."""
        require_role(principal, "operator")
        return await store.list_audit(self.db, target_id=target)

    async def zone_or_404(self, zone: str) -> dict[str, Any]:
        """A stored zone, or 404."""
        found = await store.find_zone(self.db, zone=zone)
        if found is None:
            raise not_found("zone")
        return found

    async def postcode(self, postcode: str) -> dict[str, Any]:
        """The municipalities of a postcode, each with its zone."""
        municipalities = await store.find_postcode(self.db, postcode=postcode)
        if not municipalities:
            raise not_found("postcode")
        zones = await store.list_zones(self.db, province=None)
        found = []
        for nis in municipalities:
            for zone in zones:
                for municipality in zone["municipalities"]:
                    if municipality["nis"] == nis:
                        found.append({**municipality, "zone": zone["_id"],
                                      "zone_name": zone["name"]})
        return {"postcode": postcode, "municipalities": found}

    # BINs ---------------------------------------------------------------------

    async def create_bin(self, *, principal: Principal, data: domain.BinIn) -> dict[str, Any]:
        """Found a BIN in a zone, with a territory inside that zone."""
        require_role(principal, "operator", "zone")
        require_zone(principal, data.zone)
        zone = await store.find_zone(self.db, zone=data.zone)
        if zone is None:
            raise domain.RuleError("zone", "is not a known police zone")
        territory = domain.check_territory(
            territory=data.territory, zone_units=set(zone["units"])
        )
        now = domain.utcnow()
        document = {
            "_id": domain.new_bin_id(),
            "zone": data.zone,
            "name": data.name,
            "kind": data.kind,
            "status": data.status,
            "territory": territory,
            "coordinators": data.coordinators,
            "founded_on": (data.founded_on or now.date()).isoformat(),
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        await store.insert_bin(self.db, document=document, entries=[_bin_entry(document)])
        return domain.public_bin(document)

    async def bin_for(self, *, principal: Principal, bin_id: str) -> dict[str, Any]:
        """A BIN the caller may see: operator, its zone's staff, its coordinators."""
        found = await store.find_bin(self.db, bin_id=bin_id)
        if found is None:
            raise not_found("BIN")
        if principal.role == "coordinator" and principal.scope == bin_id:
            return found
        if principal.role in ("operator", "zone"):
            require_zone(principal, found["zone"])
            return found
        raise forbid("Your token does not reach this BIN.")

    async def list_bins(self, *, principal: Principal, zone: str | None) -> list[dict]:
        """The BINs of a zone (zone staff) or of any zone (operator)."""
        require_role(principal, "operator", "zone")
        if principal.role == "zone":
            if zone not in (None, principal.scope):
                raise forbid("Your token does not reach this zone.")
            zone = principal.scope
        return [domain.public_bin(b) for b in await store.list_bins(self.db, zone=zone)]

    async def change_bin(
        self, *, principal: Principal, bin_id: str, patch: domain.BinPatch
    ) -> dict[str, Any]:
        """Rename, re-kind, re-draw the territory or move a BIN through its lifecycle."""
        require_role(principal, "operator", "zone")
        current = await self.bin_for(principal=principal, bin_id=bin_id)
        changes = patch.model_dump(exclude_unset=True)
        if "status" in changes:
            domain.check_bin_transition(current=current["status"], new=changes["status"])
        if "territory" in changes:
            zone = await self.zone_or_404(current["zone"])
            changes["territory"] = domain.check_territory(
                territory=changes["territory"], zone_units=set(zone["units"])
            )
        if "founded_on" in changes and changes["founded_on"] is not None:
            changes["founded_on"] = changes["founded_on"].isoformat()
        updated = {**current, **changes, "version": current["version"] + 1,
                   "updated_at": domain.utcnow()}
        await self._update_bin(current, updated, [_bin_entry(updated)])
        return domain.public_bin(updated)

    async def remove_bin(self, *, principal: Principal, bin_id: str) -> None:
        """Remove a BIN: a tombstone on its topic, its record kept only as removed."""
        require_role(principal, "operator", "zone")
        current = await self.bin_for(principal=principal, bin_id=bin_id)
        updated = {**current, "removed": True, "version": current["version"] + 1,
                   "updated_at": domain.utcnow()}
        entry = outbox.tombstone_entry(
            topic=BINS_TOPIC, key=bin_id, event_type=BinSnapshot.EVENT_TYPE
        )
        await self._update_bin(current, updated, [entry])

    async def _update_bin(self, current: dict, updated: dict, entries: list) -> None:
        changes = _stored_fields(updated)
        try:
            await store.update_bin(
                self.db, bin_id=current["_id"], version=current["version"],
                changes=changes, entries=entries,
            )
        except store.Conflict:
            raise Problem(409, "Conflict", "The BIN changed meanwhile; read it again.")

    # Members ------------------------------------------------------------------

    async def register_member(
        self, *, principal: Principal | None, bin_id: str, data: domain.MemberIn
    ) -> dict[str, Any]:
        """Register a member who consented: themselves online, or on paper via staff."""
        found = await store.find_bin(self.db, bin_id=bin_id)
        if found is None or found["status"] == "dissolved":
            raise not_found("BIN")
        recorded_by = principal.ref if principal else None
        if data.consent.method == "paper" or data.role != "member":
            if principal is None:
                raise Problem(401, "Unauthorized",
                              "Paper consent and roles are recorded by staff only.",
                              headers={"WWW-Authenticate": "Bearer"})
            await self._require_bin_staff(principal, found)
            recorded_by = principal.ref
        document = self._member_document(bin_doc=found, data=data, recorded_by=recorded_by,
                                         member_id=domain.new_member_id(bin_id=bin_id))
        await store.insert_member(self.db, document=document)
        await store.append_audit(
            self.db, actor=principal.ref if principal else f"member:{document['_id']}",
            action="member.register", target_kind="member", target_ids=[document["_id"]],
        )
        answer = {"member_id": document["_id"], "bin_id": bin_id}
        if principal is not None:
            # Whoever registered someone else gets no token to act as that member.
            return answer
        token = issue_token(
            secret=self.settings.jwt_secret, role="member", scope=document["_id"],
            subject=document["_id"],
            ttl=timedelta(hours=self.settings.member_token_hours),
        )
        return {**answer, "token": token}

    async def import_members(
        self, *, principal: Principal, bin_id: str, data: bytes
    ) -> dict[str, Any]:
        """Import a coordinator's CSV: all rows or none, idempotent on a re-run."""
        found = await store.find_bin(self.db, bin_id=bin_id)
        if found is None:
            raise not_found("BIN")
        await self._require_bin_staff(principal, found)
        if found["status"] == "dissolved":
            raise domain.RuleError("bin_id", "is a dissolved BIN; nobody can join it")
        members, errors = domain.parse_member_csv(
            data, notice_version_default=self.settings.privacy_notice_version
        )
        if errors:
            raise Problem(
                422, "Invalid rows", f"{len({e.row for e in errors})} row(s) are invalid; "
                "nothing was imported.",
                errors=[e.model_dump() for e in errors],
            )
        documents = [
            self._member_document(
                bin_doc=found, data=member, recorded_by=principal.ref,
                member_id=domain.new_member_id(
                    bin_id=bin_id,
                    stable_key=domain.stable_row_key(member=member, secret=self.index_secret),
                ),
            )
            for member in members
        ]
        inserted, present = await store.insert_members(self.db, documents=documents)
        await store.append_audit(
            self.db, actor=principal.ref, action="member.import", target_kind="member",
            target_ids=[d["_id"] for d in documents],
        )
        return {"bin_id": bin_id, "rows": len(documents), "imported": inserted,
                "already_present": present}

    def _member_document(
        self, *, bin_doc: dict, data: domain.MemberIn, recorded_by: str | None,
        member_id: str,
    ) -> dict[str, Any]:
        now = domain.utcnow()
        contacts = seal_json(self.keyring, data.contacts.by_channel(), owner=member_id)
        document = {
            "_id": member_id,
            "bin_id": bin_doc["_id"],
            "zone": bin_doc["zone"],
            "role": data.role,
            "status": "active",
            "language": data.language,
            "channels": data.channels,
            "share_email_with_coordinator": data.share_email_with_coordinator,
            "directory_listing": data.directory_listing,
            "consent": domain.consent_record(data.consent, now=now, recorded_by=recorded_by),
            "personal": seal_json(
                self.keyring, json.loads(domain.personal_record(data)), owner=member_id
            ).model_dump(),
            "contacts": contacts.model_dump(),
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        return outbox.with_outbox(document, self._member_entries(document, contacts=True))

    def _member_entries(self, document: dict, *, contacts: bool) -> list[dict[str, Any]]:
        """The events of a member's change; marks on `document` whether it is listed."""
        entries = [outbox.entry(topic=MEMBERSHIPS_TOPIC, key=document["_id"],
                                event=domain.membership_event(document))]
        listing = self._coordinator_listing_entry(document)
        if listing is not None:
            entries.append(listing)
        if contacts:
            entries.append(outbox.entry(
                topic=CONTACTS_TOPIC, key=document["_id"],
                event=ContactsSnapshot(member_id=document["_id"],
                                       contacts=Sealed(**document["contacts"]),
                                       version=document["version"]),
            ))
        return entries

    def _coordinator_listing_entry(self, document: dict) -> dict[str, Any] | None:
        """The directory event of a member's change: a listing, a tombstone or none."""
        listing_id = domain.coordinator_listing_id(document["_id"])
        was_listed = document.get("directory_listed", False)
        document["directory_listed"] = domain.is_listed_coordinator(document)
        if not document["directory_listed"]:
            if not was_listed:
                return None
            return outbox.tombstone_entry(topic=LISTINGS_TOPIC, key=listing_id,
                                          event_type=DirectoryListing.EVENT_TYPE)
        personal = open_json(self.keyring, Sealed(**document["personal"]),
                             owner=document["_id"])
        details = domain.coordinator_details(
            personal=personal, fields=document["directory_listing"]
        )
        event = DirectoryListing(
            listing_id=listing_id, kind="coordinator", zone=document["zone"],
            bin_id=document["bin_id"], member_id=document["_id"], fields=sorted(details),
            details=seal_json(self.keyring, details, owner=listing_id),
            version=document["version"], updated_at=document["updated_at"],
        )
        return outbox.entry(topic=LISTINGS_TOPIC, key=listing_id, event=event)

    async def _require_bin_staff(self, principal: Principal, bin_doc: dict) -> None:
        if principal.role == "coordinator" and principal.scope == bin_doc["_id"]:
            return
        if principal.role in ("operator", "zone"):
            require_zone(principal, bin_doc["zone"])
            return
        raise forbid("Your token does not reach this BIN.")

    async def _member_for(self, *, principal: Principal, member_id: str) -> dict[str, Any]:
        """A member the caller may see: themselves, their coordinator, zone, operator."""
        try:
            found = await store.find_member(self.db, member_id=member_id)
        except domain.RuleError:
            found = None
        if found is None or found["status"] == "erased":
            raise not_found("member")
        if principal.role == "member":
            if principal.scope != member_id:
                raise forbid("A member token reaches only its own member.")
            return found
        if principal.role == "coordinator" and principal.scope == found["bin_id"]:
            return found
        if principal.role in ("operator", "zone"):
            require_zone(principal, found["zone"])
            return found
        raise forbid("Your token does not reach this member.")

    def _open(
        self, found: dict[str, Any], *, principal: Principal | None = None
    ) -> dict[str, Any]:
        """A member's record opened; a coordinator sees the e-mail only if shared."""
        personal = open_json(self.keyring, Sealed(**found["personal"]), owner=found["_id"])
        contacts = personal["contacts"]
        shares = found.get("share_email_with_coordinator", False)
        if principal is not None and principal.role == "coordinator" and not shares:
            contacts = {**contacts, "email": None}
        return {
            "member_id": found["_id"],
            "bin_id": found["bin_id"],
            "zone": found["zone"],
            "role": found["role"],
            "status": found["status"],
            "language": found["language"],
            "channels": found["channels"],
            "person": personal["person"],
            "contacts": contacts,
            "share_email_with_coordinator": shares,
            "directory_listing": found.get("directory_listing", []),
            "consent": found["consent"],
            "version": found["version"],
            "created_at": found["created_at"],
            "updated_at": found["updated_at"],
        }

    async def read_member(self, *, principal: Principal, member_id: str) -> dict[str, Any]:
        """Everything held on a member, opened for a caller who may see it (audited)."""
        found = await self._member_for(principal=principal, member_id=member_id)
        await store.append_audit(self.db, actor=principal.ref, action="member.read",
                                 target_kind="member", target_ids=[member_id])
        return self._open(found, principal=principal)

    async def export_member(self, *, principal: Principal, member_id: str) -> dict:
        """A member's own export: their record and the audit trail about them."""
        if principal.role not in ("member", "operator"):
            raise forbid("Only the member themselves or an operator can export.")
        record = await self.read_member(principal=principal, member_id=member_id)
        trail = await store.list_audit(self.db, target_id=member_id)
        await store.append_audit(self.db, actor=principal.ref, action="member.export",
                                 target_kind="member", target_ids=[member_id])
        return {"member": record, "audit_trail": trail,
                "exported_at": domain.utcnow()}

    async def correct_member(
        self, *, principal: Principal, member_id: str, patch: domain.MemberPatch
    ) -> dict[str, Any]:
        """Correct a member's data; roles and moves only by their coordinator or staff."""
        found = await self._member_for(principal=principal, member_id=member_id)
        opened = self._open(found)
        sent = patch.model_dump(exclude_unset=True)
        if ("role" in sent or "bin_id" in sent) and principal.role == "member":
            raise forbid("A member cannot change their own role or BIN.")
        own = [field for field in domain.MEMBER_OWN_CHOICES if field in sent]
        if own and principal.role != "member":
            raise forbid(f"Only the member themselves can change {', '.join(own)}.")
        if (principal.role == "coordinator" and "email" in (sent.get("contacts") or {})
                and not found.get("share_email_with_coordinator")):
            raise forbid("The member does not share their e-mail address with their "
                         "coordinator; only they or zone staff can change it.")
        if not sent:
            return self._open(found, principal=principal)
        changes: dict[str, Any] = {}
        if "bin_id" in sent and sent["bin_id"] != found["bin_id"]:
            target = await store.find_bin(self.db, bin_id=sent["bin_id"])
            if target is None or target["status"] == "dissolved":
                raise domain.RuleError("bin_id", "is not a BIN one can join")
            await self._require_bin_staff(principal, target)
            changes.update(bin_id=target["_id"], zone=target["zone"])
        for field in ("role", "language", *domain.MEMBER_OWN_CHOICES):
            if sent.get(field) is not None:
                changes[field] = sent[field]
        if sent.get("directory_listing") is not None:
            # The member's own choice of what to list is their consent to be listed.
            changes["consent"] = domain.with_listing_consent(
                found["consent"], listed=bool(sent["directory_listing"]))
        person = {**opened["person"], **(sent.get("person") or {})}
        contacts_in = domain.ContactsIn.model_validate(
            {**opened["contacts"], **(patch.contacts.model_dump(exclude_unset=True)
                                      if patch.contacts else {})}
        )
        channels = sent.get("channels") or found["channels"]
        missing = [c for c in channels if c not in contacts_in.by_channel()]
        if missing:
            raise domain.RuleError("channels", f"no address for {', '.join(missing)}")
        changes["channels"] = channels
        # Contacts reach messaging only while the member consents to messages.
        contacts_changed = patch.contacts is not None and found["status"] == "active"
        changes["personal"] = seal_json(
            self.keyring, {"person": person, "contacts": contacts_in.model_dump()},
            owner=member_id,
        ).model_dump()
        if patch.contacts is not None:
            changes["contacts"] = seal_json(
                self.keyring, contacts_in.by_channel(), owner=member_id
            ).model_dump()
        updated = {**found, **changes, "version": found["version"] + 1,
                   "updated_at": domain.utcnow()}
        await self._update_member(found, updated,
                                  self._member_entries(updated, contacts=contacts_changed))
        await store.append_audit(self.db, actor=principal.ref, action="member.correct",
                                 target_kind="member", target_ids=[member_id],
                                 fields=sorted(sent))
        return self._open(updated, principal=principal)

    async def withdraw_consent(self, *, principal: Principal, member_id: str) -> dict:
        """Withdraw consent: no more messages; the contacts leave Kafka."""
        found = await self._member_for(principal=principal, member_id=member_id)
        if principal.role not in ("member", "operator"):
            raise forbid("Only the member themselves can withdraw their consent.")
        consent = {**found["consent"], "withdrawn_at": domain.utcnow()}
        updated = {**found, "status": "withdrawn", "consent": consent,
                   "version": found["version"] + 1, "updated_at": domain.utcnow()}
        entries = self._member_entries(updated, contacts=False) + [
            outbox.tombstone_entry(topic=CONTACTS_TOPIC, key=member_id,
                                   event_type=ContactsSnapshot.EVENT_TYPE)
        ]
        await self._update_member(found, updated, entries)
        await store.append_audit(self.db, actor=principal.ref, action="member.withdraw",
                                 target_kind="member", target_ids=[member_id])
        return domain.public_member(updated)

    async def erase_member(self, *, principal: Principal, member_id: str) -> None:
        """Erase a member's personal data everywhere the registry reaches."""
        found = await self._member_for(principal=principal, member_id=member_id)
        if principal.role == "coordinator":
            raise forbid("A coordinator cannot erase a member; the member or staff can.")
        updated = {**found, "status": "erased", "version": found["version"] + 1,
                   "updated_at": domain.utcnow(),
                   "consent": {**found["consent"], "withdrawn_at": domain.utcnow()}}
        for field in ("personal", "contacts"):
            updated.pop(field, None)
        entries = self._member_entries(updated, contacts=False) + [
            outbox.tombstone_entry(topic=CONTACTS_TOPIC, key=member_id,
                                   event_type=ContactsSnapshot.EVENT_TYPE)
        ]
        await self._update_member(found, updated, entries,
                                  removals=["personal", "contacts"])
        await store.append_audit(self.db, actor=principal.ref, action="member.erase",
                                 target_kind="member", target_ids=[member_id])

    async def list_members(self, *, principal: Principal, bin_id: str) -> list[dict]:
        """The members of a BIN, without personal data."""
        found = await store.find_bin(self.db, bin_id=bin_id)
        if found is None:
            raise not_found("BIN")
        await self._require_bin_staff(principal, found)
        members = await store.list_members_of_bin(self.db, bin_id=bin_id)
        return [domain.public_member(m) for m in members if m["status"] != "erased"]

    # Unsubscribe links -------------------------------------------------------

    async def unsubscribe(self, *, token: str) -> dict[str, Any]:
        """Take the link's channel off the member's channels; a repeat changes nothing."""
        try:
            link = read_unsubscribe(token, secret=self.settings.jwt_secret)
        except InvalidLink:
            raise _bad_link("is not valid or has expired") from None
        if link.channel not in CHANNELS:
            raise _bad_link("names no known channel")
        for _ in range(UNSUBSCRIBE_ATTEMPTS):
            try:
                found = await store.find_member(self.db, member_id=link.member_id)
            except domain.RuleError:
                raise _bad_link("names no member") from None
            if found is None:
                raise not_found("member")
            if found["status"] == "erased":
                raise Problem(410, "Gone", "This member's data has been erased.")
            answer = {"status": "unsubscribed", "channel": link.channel,
                      "language": found["language"]}
            channels = domain.without_channel(found["channels"], link.channel)
            if channels == found["channels"]:
                return {**answer, "changed": False}
            updated = {**found, "channels": channels, "version": found["version"] + 1,
                       "updated_at": domain.utcnow()}
            try:
                await store.update_member(
                    self.db, member_id=found["_id"], version=found["version"],
                    changes=_stored_fields(updated),
                    entries=self._member_entries(updated, contacts=False),
                )
            except store.Conflict:
                continue
            await store.append_audit(
                self.db, actor=f"member:{found['_id']}", action="member.unsubscribe",
                target_kind="member", target_ids=[found["_id"]], fields=["channels"],
            )
            return {**answer, "changed": True}
        raise Problem(409, "Conflict", "The member changed meanwhile; open the link again.")

    # Directory of BIN actors ---------------------------------------------------

    async def set_police_contact(
        self, *, principal: Principal, bin_id: str, data: domain.ListedContactIn
    ) -> dict[str, Any]:
        """List a BIN's police contact (operators and the BIN's zone staff)."""
        require_role(principal, "operator", "zone")
        found = await self.bin_for(principal=principal, bin_id=bin_id)
        return await self._save_listing(
            principal=principal, listing_id=domain.police_listing_id(bin_id),
            kind="police_contact", zone=found["zone"], data=data,
            place={"bin_id": bin_id},
        )

    async def remove_police_contact(self, *, principal: Principal, bin_id: str) -> None:
        """Take a BIN's police contact out of the directory."""
        require_role(principal, "operator", "zone")
        await self.bin_for(principal=principal, bin_id=bin_id)
        await self._remove_listing(principal=principal,
                                   listing_id=domain.police_listing_id(bin_id))

    async def set_prevention_officer(
        self, *, principal: Principal, nis: str, data: domain.ListedContactIn
    ) -> dict[str, Any]:
        """List a municipality's prevention officer (operators and its zone's staff)."""
        zone = await self._zone_of_municipality(principal=principal, nis=nis)
        return await self._save_listing(
            principal=principal, listing_id=domain.prevention_listing_id(nis),
            kind="prevention_officer", zone=zone, data=data,
            place={"municipality_nis": nis},
        )

    async def remove_prevention_officer(self, *, principal: Principal, nis: str) -> None:
        """Take a municipality's prevention officer out of the directory."""
        await self._zone_of_municipality(principal=principal, nis=nis)
        await self._remove_listing(principal=principal,
                                   listing_id=domain.prevention_listing_id(nis))

    async def _zone_of_municipality(self, *, principal: Principal, nis: str) -> str:
        require_role(principal, "operator", "zone")
        for zone in await store.list_zones(self.db, province=None):
            if any(m["nis"] == nis for m in zone["municipalities"]):
                require_zone(principal, zone["_id"])
                return zone["_id"]
        raise not_found("municipality")

    async def _save_listing(
        self, *, principal: Principal, listing_id: str, kind: str, zone: str,
        data: domain.ListedContactIn, place: dict[str, str],
    ) -> dict[str, Any]:
        current = await store.find_listing(self.db, listing_id=listing_id)
        version = 0 if current is None else current["version"]
        details = data.details()
        document = {
            "_id": listing_id, "kind": kind, "zone": zone, **place,
            "fields": sorted(details),
            "details": seal_json(self.keyring, details, owner=listing_id).model_dump(),
            "removed": False, "version": version + 1, "updated_at": domain.utcnow(),
        }
        event = DirectoryListing(listing_id=listing_id, **{
            k: v for k, v in document.items() if k not in ("_id", "removed")})
        try:
            await store.save_listing(
                self.db, document=document, version=version,
                entries=[outbox.entry(topic=LISTINGS_TOPIC, key=listing_id, event=event)],
            )
        except store.Conflict:
            raise Problem(409, "Conflict", "The listing changed meanwhile; send it again.")
        await store.append_audit(self.db, actor=principal.ref, action="listing.set",
                                 target_kind=kind, target_ids=[listing_id],
                                 fields=sorted(details))
        return {"listing_id": listing_id, "kind": kind, "zone": zone, **place,
                **details, "version": version + 1}

    async def _remove_listing(self, *, principal: Principal, listing_id: str) -> None:
        current = await store.find_listing(self.db, listing_id=listing_id)
        if current is None or current.get("removed"):
            raise not_found("listing")
        document = {"_id": listing_id, "removed": True,
                    "version": current["version"] + 1, "updated_at": domain.utcnow()}
        entry = outbox.tombstone_entry(topic=LISTINGS_TOPIC, key=listing_id,
                                       event_type=DirectoryListing.EVENT_TYPE)
        try:
            await store.save_listing(self.db, document=document,
                                     version=current["version"], entries=[entry])
        except store.Conflict:
            raise Problem(409, "Conflict", "The listing changed meanwhile; try again.")
        await store.append_audit(self.db, actor=principal.ref, action="listing.remove",
                                 target_kind=current["kind"], target_ids=[listing_id])

    async def read_directory(
        self, *, principal: Principal, wanted: domain.DirectoryFilter
    ) -> list[dict[str, Any]]:
        """The directory of BIN actors (operators and study services; audited)."""
        require_role(principal, "operator", "study")
        state = await store.read_directory_state(self.db)
        rows = domain.directory_rows(
            zones={z["_id"]: z for z in state[store.DIRECTORY_ZONES]},
            bins={b["_id"]: b for b in state[store.DIRECTORY_BINS]},
            coordinators={c["_id"] for c in state[store.DIRECTORY_COORDINATORS]},
            listings=state[store.DIRECTORY_LISTINGS],
            details=lambda listing: open_json(
                self.keyring, Sealed(**listing["details"]), owner=listing["_id"]),
            wanted=wanted,
        )
        await store.append_audit(self.db, actor=principal.ref, action="directory.read",
                                 target_kind="directory", target_ids=[],
                                 fields=wanted.audit_fields(), rows=len(rows))
        return rows

    async def _update_member(
        self, current: dict, updated: dict, entries: list, removals: list | None = None
    ) -> None:
        changes = _stored_fields(updated)
        try:
            await store.update_member(
                self.db, member_id=current["_id"], version=current["version"],
                changes=changes, removals=removals, entries=entries,
            )
        except store.Conflict:
            raise Problem(409, "Conflict", "The member changed meanwhile; read again.")


def _bad_link(reason: str) -> Problem:
    """The 400 for an unsubscribe link that cannot be honoured."""
    return Problem(400, "Invalid link", "This unsubscribe link cannot be used.",
                   errors=[{"field": "token", "reason": reason}])


def _stored_fields(document: dict[str, Any]) -> dict[str, Any]:
    """The fields a change sets: everything but the id and the outbox bookkeeping."""
    skip = ("_id", "outbox", "outbox_pending", "outbox_seq")
    return {k: v for k, v in document.items() if k not in skip}


def _zone_entries(zone: reference.Zone):
    def entries(version: int) -> list[dict[str, Any]]:
        return [outbox.entry(topic=ZONES_TOPIC, key=zone.code,
                             event=reference.zone_to_event(zone, version))]
    return entries


def _bin_entry(document: dict[str, Any]) -> dict[str, Any]:
    return outbox.entry(topic=BINS_TOPIC, key=document["_id"],
                        event=domain.bin_event(document))
