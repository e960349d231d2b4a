"""Delivery rules: language fallback, SMS encoding, keys, pacing, retries, rendering."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from services.messaging import domain
from services.messaging.domain import encode_sms, split_sms
from shared.events import AlertText

# choose_language


@pytest.mark.parametrize(
    ("member", "available", "chosen"),
    [
        ("fr", ["nl", "fr"], "fr"),
        ("nl", ["nl", "fr"], "nl"),
        ("nl", ["fr", "en"], "en"),
        ("nl", ["fr", "de"], "fr"),
        ("fr", ["nl", "en"], "en"),
        ("fr", ["nl", "de"], "nl"),
        ("de", ["nl", "fr", "en"], "fr"),
        ("de", ["nl", "en"], "en"),
        ("en", ["fr", "nl"], "nl"),
        ("en", ["de"], "de"),
    ],
)
def test_choose_language_follows_the_documented_order(member, available, chosen):
    assert domain.choose_language(member_language=member, available=available) == chosen


def test_choose_language_needs_some_text():
    with pytest.raises(ValueError):
        domain.choose_language(member_language="nl", available=[])


def test_every_fallback_order_lists_every_language_once():
    for language, order in domain.LANGUAGE_FALLBACKS.items():
        assert order[0] == language
        assert sorted(order) == sorted(domain.LANGUAGES)


# GSM-7 and UCS-2


@pytest.mark.parametrize(
    "char", ["é", "è", "ü", "à", "ù", "ì", "ò", "É", "Ç", "ñ", "ß"]
)
def test_these_accents_are_in_the_gsm7_basic_set(char):
    assert encode_sms(char) == domain.SmsEncoding("GSM-7", 1, 1)


@pytest.mark.parametrize(
    "char", ["ê", "ç", "ë", "ï", "ô", "â", "œ", "…", "’"]
)
def test_these_characters_need_ucs2(char):
    assert encode_sms(char).encoding == "UCS-2"


@pytest.mark.parametrize(
    "char", ["€", "[", "]", "{", "}", "\\", "^", "~", "|"]
)
def test_extension_characters_cost_two_septets(char):
    assert encode_sms(char) == domain.SmsEncoding("GSM-7", 1, 2)


def test_a_single_gsm7_sms_holds_160_septets():
    assert encode_sms("a" * 160) == domain.SmsEncoding("GSM-7", 1, 160)
    assert encode_sms("a" * 161) == domain.SmsEncoding("GSM-7", 2, 161)
    assert encode_sms("a" * 306) == domain.SmsEncoding("GSM-7", 2, 306)
    assert encode_sms("a" * 307) == domain.SmsEncoding("GSM-7", 3, 307)


def test_euro_signs_fill_a_single_sms_at_80():
    assert encode_sms("€" * 80) == domain.SmsEncoding("GSM-7", 1, 160)
    assert encode_sms("€" * 81).segments == 2


def test_an_escape_sequence_is_never_split():
    text = "a" * 152 + "€" + "b" * 10
    parts = split_sms(text)
    assert parts[0] == "a" * 152
    assert parts[1].startswith("€")
    assert "".join(parts) == text


def test_a_single_ucs2_sms_holds_70_units():
    assert encode_sms("ê" * 70) == domain.SmsEncoding("UCS-2", 1, 70)
    assert encode_sms("ê" * 71) == domain.SmsEncoding("UCS-2", 2, 71)
    assert encode_sms("ê" * 134) == domain.SmsEncoding("UCS-2", 2, 134)
    assert encode_sms("ê" * 135) == domain.SmsEncoding("UCS-2", 3, 135)


def test_one_non_gsm_character_turns_the_whole_text_ucs2():
    assert encode_sms("a" * 100 + "ç") == domain.SmsEncoding("UCS-2", 2, 101)


def test_emoji_count_two_units_and_are_never_split():
    assert encode_sms("🚨") == domain.SmsEncoding("UCS-2", 1, 2)
    assert encode_sms("🚨" * 35).segments == 1
    text = "x" * 66 + "🚨" + "y" * 5
    parts = split_sms(text)
    assert parts == ["x" * 66, "🚨yyyyy"]
    for part in parts:
        part.encode("utf-16-le")


def test_split_parts_fit_their_limits_and_rejoin():
    text = ("Sluit ramen en deuren [dringend] € " * 20).strip()
    parts = split_sms(text)
    assert "".join(parts) == text
    assert all(encode_sms(part).units <= 153 for part in parts)
    assert encode_sms(text).segments == len(parts)


def test_empty_text_has_no_segments():
    assert encode_sms("") == domain.SmsEncoding("GSM-7", 0, 0)
    assert split_sms("") == []


def test_newlines_are_gsm7():
    assert encode_sms("a\nb\r") == domain.SmsEncoding("GSM-7", 1, 4)


# delivery_key


def test_delivery_key_is_stable_and_distinct():
    key = domain.delivery_key(alert_id="A1", member_id="M1", channel="sms")
    assert key == domain.delivery_key(alert_id="A1", member_id="M1", channel="sms")
    assert key != domain.delivery_key(alert_id="A1", member_id="M1", channel="email")
    assert key != domain.delivery_key(alert_id="A1", member_id="M2", channel="sms")
    assert key.startswith("dk1-sms-")
    assert "M1" not in key


def test_delivery_key_cannot_be_confused_by_separators():
    one = domain.delivery_key(alert_id="a:b", member_id="c", channel="sms")
    two = domain.delivery_key(alert_id="a", member_id="b:c", channel="sms")
    assert one != two


def test_delivery_key_refuses_unknown_channels():
    with pytest.raises(ValueError):
        domain.delivery_key(alert_id="A", member_id="M", channel="fax")


# is_replayed_change


@pytest.mark.parametrize(
    ("seq", "held_seq", "replayed"),
    [
        (3, 5, True),
        (5, 5, True),
        (6, 5, False),
        (1, None, False),
        (None, 5, False),
        (None, None, False),
    ],
)
def test_is_replayed_change_skips_only_numbered_changes_no_newer_than_held(
    seq, held_seq, replayed
):
    assert domain.is_replayed_change(seq=seq, held_seq=held_seq) is replayed


# fallback_channels


@pytest.mark.parametrize(
    ("chosen", "failed", "next_"),
    [
        (["sms", "email", "voice", "app"], "sms", ["voice", "email", "app"]),
        (["app", "email", "sms"], "sms", ["email", "app"]),
        (["sms", "voice", "email"], "voice", ["email"]),
        (["sms", "email"], "email", []),
        (["sms", "app"], "app", []),
        (["email", "app"], "sms", ["email", "app"]),
    ],
)
def test_fallback_follows_sms_voice_email_app(chosen, failed, next_):
    assert domain.fallback_channels(chosen=chosen, failed=failed) == next_


def test_fallback_refuses_unknown_channels():
    with pytest.raises(ValueError):
        domain.fallback_channels(chosen=["sms"], failed="fax")


# Pacer


def test_pacer_allows_the_burst_then_spaces_by_the_rate():
    pacer = domain.Pacer(rate_per_s=100, burst=2)
    assert pacer.reserve(10.0) == 0
    assert pacer.reserve(10.0) == 0
    assert pacer.reserve(10.0) == pytest.approx(0.01)
    assert pacer.reserve(10.0) == pytest.approx(0.02)


def test_pacer_refills_with_time_up_to_the_burst():
    pacer = domain.Pacer(rate_per_s=10, burst=5)
    assert pacer.reserve(0.0, n=5) == 0
    assert pacer.reserve(0.2, n=2) == 0
    assert pacer.reserve(100.0, n=5) == 0
    assert pacer.reserve(100.0) == pytest.approx(0.1)


def test_pacer_holds_100_per_second_over_a_second():
    pacer = domain.Pacer(rate_per_s=100, burst=1)
    waits = [pacer.reserve(0.0) for _ in range(101)]
    assert waits[-1] == pytest.approx(1.0)


def test_pacer_does_not_refill_when_the_clock_steps_back():
    pacer = domain.Pacer(rate_per_s=1, burst=1)
    assert pacer.reserve(5.0) == 0
    assert pacer.reserve(1.0) == pytest.approx(1.0)


def test_pacer_refuses_bad_arguments():
    with pytest.raises(ValueError):
        domain.Pacer(rate_per_s=0)
    with pytest.raises(ValueError):
        domain.Pacer(rate_per_s=1).reserve(0.0, n=0)


# Backoff


def test_backoff_grows_and_is_capped():
    backoff = domain.Backoff(base_s=1, factor=2, cap_s=10, jitter=0)
    assert [backoff.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert backoff.delay(10_000) == 10


def test_backoff_jitter_stays_in_its_band_and_is_reproducible():
    first = domain.Backoff(base_s=2, cap_s=60, jitter=0.5, rng=random.Random(7))
    second = domain.Backoff(base_s=2, cap_s=60, jitter=0.5, rng=random.Random(7))
    delays = [first.delay(3) for _ in range(200)]
    assert delays == [second.delay(3) for _ in range(200)]
    assert all(4 <= delay <= 8 for delay in delays)
    assert len(set(delays)) > 100


def test_backoff_refuses_bad_arguments():
    with pytest.raises(ValueError):
        domain.Backoff(base_s=0)
    with pytest.raises(ValueError):
        domain.Backoff(jitter=2)
    with pytest.raises(ValueError):
        domain.Backoff().delay(0)


def test_should_give_up_after_the_limit():
    start = datetime(2026, 11, 14, 19, 42, tzinfo=UTC)
    assert not domain.should_give_up(
        first_attempt_at=start, now=start + timedelta(seconds=599), give_up_after_s=600
    )
    assert domain.should_give_up(
        first_attempt_at=start, now=start + timedelta(seconds=600), give_up_after_s=600
    )


# render_text

TEXT = AlertText(
    headline="Inbraken in de wijk Deuzeld",
    body="Vanavond drie inbraken.\n\nSluit ramen en deuren.",
)


def test_email_subject_is_the_headline():
    subject, body = domain.render_text(
        channel="email", text=TEXT, category="burglary", urgency="Expected"
    )
    assert subject == "Inbraken in de wijk Deuzeld"
    assert body == TEXT.body


def test_email_subject_carries_label_and_urgency_with_a_language():
    subject, _ = domain.render_text(
        channel="email", text=TEXT, category="burglary", urgency="Immediate",
        language="nl",
    )
    assert subject == "DRINGEND - Inbraak: Inbraken in de wijk Deuzeld"


def test_sms_is_headline_then_body_on_one_line():
    subject, body = domain.render_text(
        channel="sms", text=TEXT, category="burglary", urgency="Expected"
    )
    assert subject is None
    assert body == (
        "Inbraken in de wijk Deuzeld.\nVanavond drie inbraken. Sluit ramen en deuren."
    )
    assert encode_sms(body).segments == 1


def test_long_sms_is_trimmed_at_a_word_to_the_segment_limit():
    long_text = AlertText(headline="Phishing", body="Klik nooit op een link. " * 40)
    _, body = domain.render_text(
        channel="sms", text=long_text, category="fraud_wave", urgency="Expected",
        sms_max_segments=2,
    )
    assert encode_sms(body).segments == 2
    assert body.endswith("...")
    assert body[:-3].split()[-1] in {"Klik", "nooit", "op", "een", "link."}
    assert len(body) > 280


def test_trimmed_ucs2_sms_stays_within_its_limit():
    text = "Fermez portes et fenêtres, appelez le 101. " * 20
    trimmed = domain.trim_sms(text, max_segments=1)
    assert encode_sms(trimmed).segments == 1
    assert trimmed.endswith("...")


def test_voice_reads_sentences():
    subject, body = domain.render_text(
        channel="voice", text=TEXT, category="burglary", urgency="Immediate",
        language="nl",
    )
    assert subject is None
    assert body == (
        "Dringend. Inbraken in de wijk Deuzeld. Vanavond drie inbraken. "
        "Sluit ramen en deuren."
    )


def test_app_is_like_email():
    subject, body = domain.render_text(
        channel="app", text=TEXT, category="general_information", urgency="Past",
        language="fr",
    )
    assert subject == "Info: Inbraken in de wijk Deuzeld"
    assert body == TEXT.body


def test_render_refuses_unknown_channels():
    with pytest.raises(ValueError):
        domain.render_text(channel="fax", text=TEXT, category="burglary", urgency="")


def test_a_bins_pending_records_hold_every_delivery_once_in_bounded_records():
    from services.messaging.streams import PENDING_PER_RECORD, pending_records
    from shared.events import AlertForBin

    now = datetime.now(UTC)
    record = AlertForBin(
        alert_id="a1",
        bin_id="b1",
        zone="ipz1",
        action="alert",
        category="burglary",
        urgency="Immediate",
        texts={"nl": AlertText(headline="Inbraak", body="Let op")},
        channels=["sms", "email"],
        roles=[],
        expires_at=now + timedelta(hours=1),
        accepted_at=now,
    )
    planned = {
        "sms": [f"m{i}" for i in range(PENDING_PER_RECORD + 5)],
        "email": [f"m{i}" for i in range(10)],
    }
    records = pending_records(record, planned)
    assert len(records) == 2
    assert all(
        sum(len(ids) for ids in r.members.values()) <= PENDING_PER_RECORD
        for r in records
    )
    got = sorted((c, m) for r in records for c, ids in r.members.items() for m in ids)
    assert got == sorted((c, m) for c, ids in planned.items() for m in ids)
    assert pending_records(record, {}) == []
