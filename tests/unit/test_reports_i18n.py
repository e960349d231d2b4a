"""Unit tests of the tip line's translations, language choice and page templates."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest

from services.reports import domain, i18n
from services.reports.i18n import LANGUAGES, pick_language, t

NOW = datetime(2026, 3, 14, 15, 9, tzinfo=UTC)


def placeholders(text: str) -> set[str]:
    """Names of the {placeholders} in a message."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_message_exists_in_every_language():
    for key, texts in i18n.MESSAGES.items():
        assert set(texts) == set(LANGUAGES), key
        assert all(text.strip() for text in texts.values()), key
        assert len({frozenset(placeholders(text)) for text in texts.values()}) == 1, key


def test_every_enum_value_has_a_label():
    for enum, prefix in [
        (domain.Category, "category"),
        (domain.Signal, "signal"),
        (domain.Status, "status"),
        (domain.Outcome, "outcome"),
    ]:
        for member in enum:
            assert f"{prefix}.{member.value}" in i18n.MESSAGES


def test_every_error_key_has_a_message():
    reasons = [
        "photo_type",
        "photo_invalid",
        "photo_too_large",
        "photo_too_many_pixels",
        "photo_too_many",
    ]
    keys = {f"error.{reason}" for reason in reasons} | {
        "error.required",
        "error.invalid",
        "error.too_long",
        "error.postcode_format",
        "error.municipality_format",
        "error.place_missing",
        "error.category",
        "error.signals",
        "error.control_characters",
        "error.challenge",
        "error.rate_limited",
        "error.receipt_invalid",
    }
    assert keys <= set(i18n.MESSAGES)


def test_t_formats_and_falls_back_to_dutch():
    assert t("en", "error.photo_too_many", count=3) == "You can send at most 3 photos."
    assert t("de", "form.submit") == "Meldung absenden"
    assert t("xx", "form.submit") == t("nl", "form.submit")
    with pytest.raises(KeyError):
        t("en", "no.such.key")


@pytest.mark.parametrize(
    ("header", "query", "expected"),
    [
        (None, None, "nl"),
        ("", "", "nl"),
        ("fr-BE,fr;q=0.9,en;q=0.8", None, "fr"),
        ("es-ES, de;q=0.5, en;q=0.7", None, "en"),
        ("en;q=0.2, de-BE", None, "de"),
        ("da, es", None, "nl"),
        ("fr;q=0, en", None, "en"),
        ("fr;q=abc, de;q=0.1", None, "de"),
        ("fr-BE", "de", "de"),
        ("fr-BE", "EN", "en"),
        ("fr-BE", "xx", "fr"),
    ],
)
def test_pick_language(header, query, expected):
    assert pick_language(header, query) == expected


# Templates ----------------------------------------------------------------------

ENV = i18n.template_environment()
CHALLENGE = domain.issue_challenge(secret=b"k" * 32, now=NOW, difficulty=8)
REPORT = {
    "category": "plantation",
    "status": "under_review",
    "outcome": None,
    "questions": [
        {"id": "q1", "text": "Which <b>door</b>?", "answer": None},
        {"id": "q2", "text": "Since when?", "answer": "Since May."},
    ],
}
PAGES = {
    "form": ("form.html", {"challenge": CHALLENGE}),
    "form-errors": (
        "form.html",
        {
            "challenge": CHALLENGE,
            "errors": {
                "place": "error.postcode_format",
                "photos": "error.photo_too_many",
            },
            "form_error": "error.rate_limited",
            "values": {
                "category": "heat",
                "place": "12",
                "signals": ["heat", "smell"],
                "text": "</textarea><script>alert(1)</script>",
            },
        },
    ),
    "receipt": ("receipt.html", {"receipt_code": domain.new_receipt_code().display}),
    "followup": ("followup.html", {"challenge": CHALLENGE}),
    "followup-error": (
        "followup.html",
        {"challenge": CHALLENGE, "error": "error.receipt_invalid"},
    ),
    "followup-report": (
        "followup.html",
        {
            "challenge": CHALLENGE,
            "report": REPORT,
            "receipt_code": "ABCD-EFGH",
            "notice": "followup.answer_saved",
        },
    ),
    "followup-closed": (
        "followup.html",
        {
            "challenge": CHALLENGE,
            "receipt_code": "ABCD-EFGH",
            "report": REPORT
            | {"status": "closed", "outcome": "site_found", "questions": []},
        },
    ),
}


class Page(HTMLParser):
    """Collects what the accessibility and privacy checks need from a page."""

    def __init__(self) -> None:
        super().__init__()
        self.labels: set[str] = set()
        self.controls: list[dict[str, str | None]] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.html_lang: str | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "html":
            self.html_lang = attributes.get("lang")
        if tag == "label" and attributes.get("for"):
            self.labels.add(attributes["for"])
        if tag in {"input", "textarea", "select"}:
            self.controls.append(attributes)


def render(name: str, lang: str) -> str:
    template, context = PAGES[name]
    return ENV.get_template(template).render(lang=lang, **context)


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("name", sorted(PAGES))
def test_pages_render_accessible_and_self_contained(name, lang):
    html = render(name, lang)
    page = Page()
    page.feed(html)
    assert page.html_lang == lang
    for control in page.controls:
        if control.get("type") != "hidden":
            assert control.get("id") in page.labels, control
    # No other host: no absolute URLs, no external stylesheets, fonts or scripts.
    assert not re.search(r"(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html)
    assert "@import" not in html and "url(" not in html
    assert all(tag not in {"link", "iframe", "img"} for tag, _ in page.tags)
    assert all("src" not in attributes for tag, attributes in page.tags)
    # Every key was translated: none shows through raw.
    assert not re.search(
        r">\s*(form|error|receipt|followup|category|signal)\.[a-z_]", html
    )
    assert "<script>alert" not in html and "<b>door</b>" not in html


@pytest.mark.parametrize("lang", LANGUAGES)
def test_form_offers_every_category_and_signal_and_the_challenge(lang):
    html = render("form", lang)
    for member in (*domain.Category, *domain.Signal):
        assert f'value="{member.value}"' in html
        assert (
            t(
                lang,
                ("category." if member in domain.Category else "signal.")
                + member.value,
            ).replace("'", "&#39;")
            in html
        )
    assert f'value="{CHALLENGE}"' in html
    assert 'name="nonce"' in html and "data-pow" in html
    assert 'enctype="multipart/form-data"' in html
    assert "crypto.subtle" in html and "<noscript>" in html
    for other in LANGUAGES:
        assert f'href="/?lang={other}"' in html


def test_form_shows_errors_next_to_fields_and_keeps_values():
    html = render("form-errors", "en")
    assert t("en", "error.postcode_format") in html
    assert t("en", "error.photo_too_many", count=3) in html
    assert t("en", "error.rate_limited") in html
    assert 'aria-invalid="true"' in html
    assert 'aria-describedby="place-hint place-error"' in html
    assert 'value="heat" checked' in html and 'value="smell" checked' in html
    assert 'value="12"' in html


@pytest.mark.parametrize("lang", LANGUAGES)
def test_receipt_shows_the_code_and_instructions_in_every_language(lang):
    code = PAGES["receipt"][1]["receipt_code"]
    html = render("receipt", lang)
    assert html.count(code) == 1
    for other in LANGUAGES:
        assert t(other, "receipt.write_down").replace("'", "&#39;") in html
        if other != lang:
            assert f'href="#receipt-{other}"' in html
    # A language link would load another page and lose the code for good.
    switcher = html.split('<nav aria-label="')[1].split("</nav>")[0]
    assert "?lang=" not in switcher


def test_followup_keeps_the_code_out_of_urls_and_offers_answers():
    html = render("followup-report", "nl")
    assert 'name="receipt_code" value="ABCD-EFGH"' in html
    assert "ABCD-EFGH" not in "".join(re.findall(r'(?:href|action)="[^"]*"', html))
    assert html.count('name="question_id"') == 1
    assert "Since May." in html and "Which &lt;b&gt;door&lt;/b&gt;?" in html
    assert t("nl", "status.under_review") in html
    assert 'method="post"' in html
    closed = render("followup-closed", "fr")
    assert t("fr", "outcome.site_found") in closed
    assert t("fr", "followup.no_questions").replace("'", "&#39;") in closed
    entry = render("followup", "de")
    assert 'name="receipt_code" id="receipt_code"' in entry
    assert 'href="/followup?lang=fr"' in entry
