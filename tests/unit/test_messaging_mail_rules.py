"""Coordinators' mail without I/O: who may write to whom, attachments, addresses."""

from __future__ import annotations

import io
from email import message_from_bytes
from email.policy import default

import pytest
from PIL import Image

from services.messaging import domain
from services.messaging import mail as rules
from services.messaging.providers import MailAttachment, Outbound, SmtpProvider
from tests.builders import messaging as build


@pytest.mark.parametrize(
    ("role", "scope", "kind", "value", "allowed"),
    [
        ("coordinator", "bin-1", "bin", "bin-1", True),
        ("coordinator", "bin-1", "bin", "bin-2", False),
        ("coordinator", "bin-1", "zone_coordinators", "bin-1", False),
        ("zone", "pz1", "zone_coordinators", "pz1", True),
        ("zone", "pz1", "zone_cyber_advisers", "pz1", True),
        ("zone", "pz1", "zone_coordinators", "pz2", False),
        ("zone", "pz1", "province_coordinators", "10000", False),
        ("zone", "pz1", "bin", "bin-1", False),
        ("operator", "", "province_coordinators", "10000", True),
        ("operator", "", "zone_coordinators", "pz2", True),
        ("member", "m1", "bin", "m1", False),
    ],
)
def test_who_may_write_to_which_audience(
    role: str, scope: str, kind: str, value: str, allowed: bool
) -> None:
    problem = rules.sender_problem(role=role, scope=scope, kind=kind, value=value)
    assert (problem is None) is allowed


def test_audiences_address_by_role_and_category() -> None:
    assert rules.AUDIENCES["bin"].roles == ()
    assert rules.AUDIENCES["zone_cyber_advisers"].roles == ("cyber_adviser",)
    assert rules.AUDIENCES["zone_cyber_advisers"].category == "fraud_wave"
    assert rules.AUDIENCES["province_coordinators"].roles == ("coordinator",)
    assert domain.is_low_urgency(rules.URGENCY)
    assert not domain.is_low_urgency("Immediate")
    assert not domain.is_low_urgency("Expected")
    assert domain.reaches_role(member_role="member", roles=[])
    assert domain.reaches_role(member_role="cyber_adviser", roles=["cyber_adviser"])
    assert not domain.reaches_role(member_role="member", roles=["coordinator"])


def image(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4)).save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (build.pdf_bytes(), "application/pdf"),
        (build.png_bytes(), "image/png"),
        (image("JPEG"), "image/jpeg"),
        (image("GIF"), "image/gif"),
        (image("BMP"), None),
        (b"%PDF-1.4\n no end", None),
        (b"MZ\x90\x00 an executable", None),
        (b"<html><script>alert(1)</script></html>", None),
        (build.png_bytes()[:40], None),
        (b"", None),
    ],
)
def test_attachments_are_typed_by_their_content(
    data: bytes, expected: str | None
) -> None:
    assert rules.sniff_content_type(data) == expected


def test_attachment_problems_name_the_field() -> None:
    pdf = build.pdf_bytes()
    assert rules.attachment_problems(
        filename="a.pdf", declared_type=None, data=pdf
    ) == (
        "application/pdf",
        [],
    )
    _, problems = rules.attachment_problems(
        filename="a.pdf", declared_type="image/png", data=pdf
    )
    assert [field for field, _ in problems] == ["content_type"]
    _, problems = rules.attachment_problems(
        filename="bad\nname", declared_type=None, data=b"text"
    )
    assert [field for field, _ in problems] == ["filename", "content"]


def test_filenames_lose_their_folders_and_refuse_control_characters() -> None:
    assert rules.clean_filename("../../etc/passwd") == "passwd"
    assert rules.clean_filename("C:\\Users\\x\\flyer.pdf") == "flyer.pdf"
    assert rules.clean_filename("a\rb.pdf") is None
    assert rules.clean_filename('a".pdf') is None
    assert rules.clean_filename("dir/") is None
    assert rules.clean_filename("x" * 201) is None


def test_relay_addresses_round_trip_and_refuse_others() -> None:
    address = rules.relay_address(mail_id="mail-abc", domain="relay.example")
    assert address == "reply+mail-abc@relay.example"
    assert rules.mail_id_of(address, domain="relay.example") == "mail-abc"
    assert rules.mail_id_of("<REPLY+Mail-ABC@Relay.Example>", domain="relay.example")
    assert (
        rules.mail_id_of("reply+mail-abc@other.example", domain="relay.example") is None
    )
    assert rules.mail_id_of("someone@relay.example", domain="relay.example") is None
    assert rules.mail_id_of("reply+../x@relay.example", domain="relay.example") is None
    assert rules.is_relay_domain("anything@RELAY.example", domain="relay.example")


def test_footer_carries_the_link_in_the_members_language() -> None:
    link = rules.unsubscribe_url(base_url="http://r:8001/", token="t.k.n")
    assert link == "http://r:8001/v1/unsubscribe/t.k.n"
    body = rules.with_footer("Hallo.\n", language="fr", link=link)
    assert body.endswith(f"\n{link}\n") and "Désinscrivez-vous" in body
    assert "-- \n" in body


def test_a_forwarded_reply_withholds_the_address_and_the_unsubscribe_link() -> None:
    text = (
        "Graag!\n\nOp maandag schreef Jan@Members.example:\n"
        "> http://r:8001/v1/unsubscribe/eyJ.abc.def\n"
    )
    cleaned = rules.withhold(
        text, address="jan@members.example", unsubscribe_base="http://r:8001"
    )
    assert "members.example" not in cleaned.lower()
    assert "eyJ" not in cleaned and "[link removed]" in cleaned
    subject, body = rules.forwarded_reply(
        subject="Re:  Buurtfeest", text=cleaned, language="nl", shared_address=None
    )
    assert subject == "Re: Buurtfeest"
    assert "deelt zijn e-mailadres niet" in body and "Graag!" in body
    subject, body = rules.forwarded_reply(
        subject="Feest", text="Ja", language="xx", shared_address="a@b.example"
    )
    assert subject == "Re: Feest" and "a@b.example" in body


def test_a_mail_names_only_its_recipient_and_the_platform() -> None:
    provider = SmtpProvider(
        host="unused", port=1, sender="bin@platform.example", connections=1, timeout_s=1
    )
    link = "http://r:8001/v1/unsubscribe/" + "x" * 300
    message = Outbound(
        key="dk1-email-k",
        alert_id="mail-1",
        to="member@members.example",
        subject="Coördinator: Feest",
        text="Tekst\n.lijn met punt\n",
        reply_to="reply+mail-1@relay.example",
        unsubscribe_url=link,
        attachments=(
            MailAttachment(
                "mail-1/0", "flyer.pdf", "application/pdf", build.pdf_bytes()
            ),
        ),
    )
    parsed = message_from_bytes(provider._mail(message), policy=default)
    assert parsed["To"] == "member@members.example"
    assert parsed["Reply-To"] == "reply+mail-1@relay.example"
    assert parsed["List-Unsubscribe"] == f"<{link}>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Cc"] is None and parsed["Bcc"] is None
    assert parsed["Subject"] == "Coördinator: Feest"
    parts = [part.get_content_type() for part in parsed.walk()]
    assert parts == ["multipart/mixed", "text/plain", "application/pdf"]
    attachment = next(parsed.iter_attachments())
    assert attachment.get_content() == build.pdf_bytes()
    assert attachment.get_filename() == "flyer.pdf"
    with pytest.raises(ValueError):
        provider._mail(
            Outbound(
                key="k",
                alert_id="a",
                to="m@x.example",
                subject="s",
                text="t",
                unsubscribe_url="http://x/>\r\nBcc: evil@x.example",
            )
        )
