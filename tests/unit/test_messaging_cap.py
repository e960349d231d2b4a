"""CAP 1.2 parsing: the reference examples, schema failures, hostile XML."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.messaging import cap
from shared.events import AlertAccepted
from shared.settings import ServiceSettings

CAP_DIR = ServiceSettings().reference_dir / "cap"
SCHEMA = CAP_DIR / "CAP-v1.2.xsd"
EXAMPLES = sorted(CAP_DIR.glob("*.xml"))
SCHOTEN = CAP_DIR / "constructed-pz-schoten-burglary-nl-fr.xml"
GEEL = CAP_DIR / "constructed-pz-geel-phishing-cancel.xml"

pytestmark = pytest.mark.skipif(not SCHEMA.exists(), reason="reference data absent")


def parse(document: bytes) -> cap.ParsedAlert:
    return cap.parse_cap(document, schema_path=SCHEMA)


def schoten(**replace: str) -> bytes:
    """Return the Schoten alert with some texts replaced everywhere."""
    text = SCHOTEN.read_text(encoding="utf-8")
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    return text.encode("utf-8")


def minimal(info: str = "", head: str = "") -> bytes:
    """Return a small valid CAP alert with the given <info> content."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>PZ-X-1</identifier>
  <sender>bin@pz.example</sender>
  <sent>2026-11-14T19:42:00+01:00</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Restricted</scope>{head}
  <info>
    <language>nl-BE</language>
    <category>Security</category>
    <event>Melding</event>
    <urgency>Expected</urgency>
    <severity>Minor</severity>
    <certainty>Likely</certainty>
    <headline>Kop</headline>
    <description>Tekst</description>{info}
  </info>
</alert>""".encode()


def test_reference_examples_are_present():
    assert len(EXAMPLES) == 6


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_reference_example_validates_and_parses(path):
    alert = parse(path.read_bytes())
    assert alert.identifier
    assert alert.texts
    assert alert.category in cap.POLICE_CATEGORIES
    assert alert.action in ("alert", "update", "cancel")


def test_schoten_alert_has_dutch_and_french_and_targets_its_municipality():
    alert = parse(SCHOTEN.read_bytes())
    assert alert.identifier == "PZ-SCHOTEN-2026-0412"
    assert alert.action == "alert"
    assert alert.references == []
    assert set(alert.texts) == {"nl", "fr"}
    assert alert.texts["nl"].headline == "Inbraken in de wijk Deuzeld"
    assert alert.texts["nl"].body.endswith("Zie je iets verdachts, bel 101.")
    assert "\n\nSluit ramen en deuren." in alert.texts["nl"].body
    assert alert.texts["fr"].headline == "Cambriolages dans le quartier Deuzeld"
    assert alert.category == "burglary"
    assert (alert.urgency, alert.severity) == ("Immediate", "Moderate")
    assert alert.target.kind == "municipalities"
    assert alert.target.values == ["11040"]
    assert alert.channels == ["sms", "email", "voice", "app"]
    assert alert.expires == datetime(2026, 11, 15, 6, 0, tzinfo=UTC)


def test_geel_cancel_references_the_earlier_alert():
    alert = parse(GEEL.read_bytes())
    assert alert.action == "cancel"
    assert alert.references == ["PZ-GLM-2026-0088"]
    assert alert.category == "fraud_wave"
    assert alert.texts.keys() == {"nl"}
    assert alert.target.values == ["13008", "13021", "13053"]
    assert alert.expires is None


def test_oasis_examples_map_to_english_and_the_whole_zone():
    alert = parse((CAP_DIR / "oasis-spec-example1-homeland-security.xml").read_bytes())
    assert alert.texts.keys() == {"en"}
    assert alert.category == "general_information"
    assert alert.target.kind == "zone"
    update = parse((CAP_DIR / "oasis-spec-example3-earthquake.xml").read_bytes())
    assert update.action == "update"
    assert update.references == ["TRI13970876.1"]


def test_unsupported_languages_are_skipped_and_reported():
    alert = parse((CAP_DIR / "oasis-spec-example4-amber-alert.xml").read_bytes())
    assert alert.texts.keys() == {"en"}
    assert alert.skipped_languages == ["es-US"]


def test_an_alert_with_only_unsupported_languages_is_refused():
    with pytest.raises(cap.CapError, match="nl, fr, de or en"):
        parse(schoten(**{"nl-BE": "es-ES", "fr-BE": "it-IT"}))


def test_two_blocks_in_one_language_are_refused():
    with pytest.raises(cap.CapError, match="two <info> blocks"):
        parse(schoten(**{"fr-BE": "nl-NL"}))


def test_blocks_that_disagree_on_urgency_are_refused():
    document = SCHOTEN.read_text(encoding="utf-8").replace(
        "<urgency>Immediate</urgency>", "<urgency>Expected</urgency>", 1
    )
    with pytest.raises(cap.CapError, match="disagree on urgency"):
        parse(document.encode())


def test_missing_identifier_names_the_problem_and_line():
    with pytest.raises(cap.CapError) as caught:
        parse(schoten(**{"<identifier>PZ-SCHOTEN-2026-0412</identifier>": ""}))
    message = str(caught.value)
    assert message.startswith("line 4: <sender>")
    assert "expected <identifier>" in message


def test_bad_msg_type_names_the_allowed_values_but_not_the_value():
    with pytest.raises(cap.CapError) as caught:
        parse(schoten(**{"<msgType>Alert": "<msgType>Secret-Value"}))
    message = str(caught.value)
    assert message.startswith("line 7: <msgType>: value is not one of")
    assert "'Cancel'" in message
    assert "Secret-Value" not in message


def test_bad_date_does_not_echo_the_value():
    with pytest.raises(cap.CapError) as caught:
        parse(schoten(**{"2026-11-15T07:00:00+01:00": "call 0470 12 34 56"}))
    assert str(caught.value) == "line 17: <expires>: value is not valid for its type"


def test_unknown_element_is_refused():
    with pytest.raises(cap.CapError, match="<bogus>: element is not expected"):
        parse(minimal(head="\n  <bogus>x</bogus>"))


def test_wrong_namespace_is_not_a_cap_alert():
    document = schoten(**{"cap:1.2": "cap:1.1"})
    with pytest.raises(cap.CapError, match="not a CAP 1.2 alert"):
        parse(document)


def test_ack_is_not_accepted():
    with pytest.raises(cap.CapError, match="msgType Ack"):
        parse(schoten(**{"<msgType>Alert": "<msgType>Ack"}))


def test_update_without_references_is_refused():
    with pytest.raises(cap.CapError, match="references"):
        parse(schoten(**{"<msgType>Alert": "<msgType>Update"}))


def test_references_yield_every_identifier():
    value = "a@x,ID-1,2026-01-01T00:00:00+01:00 a@x,ID-2,2026-01-02T00:00:00+01:00"
    assert cap.parse_references(value) == ["ID-1", "ID-2"]
    assert cap.parse_references(None) == []
    with pytest.raises(cap.CapError):
        cap.parse_references("just-an-id")


@pytest.mark.parametrize(
    ("tag", "language"),
    [("nl-BE", "nl"), ("fr-BE", "fr"), ("de-BE", "de"), ("en-GB", "en"),
     ("NL", "nl"), (None, "en"), ("es-US", None), ("vls", None)],
)
def test_language_tags_map_to_ours(tag, language):
    assert cap.map_language(tag) == language


def test_category_parameter_wins_over_the_event():
    parameter = (
        "\n<parameter><valueName>BIN-category</valueName>"
        "<value>drug_related</value></parameter>"
    )
    assert parse(minimal(parameter)).category == "drug_related"


def test_unknown_category_parameter_is_refused():
    parameter = (
        "\n<parameter><valueName>BIN-category</valueName>"
        "<value>coordinator_mail</value></parameter>"
    )
    with pytest.raises(cap.CapError, match="BIN-category"):
        parse(minimal(parameter))


@pytest.mark.parametrize(
    ("event", "category"),
    [("Vermiste persoon", "missing_person"), ("Cannabisplantage", "drug_related"),
     ("Arnaque au faux policier", "fraud_wave"), ("Einbruchserie", "burglary"),
     ("Verdachte wagen", "suspicious_behaviour"),
     ("Wegenwerken", "general_information")],
)
def test_event_words_give_the_category(event, category):
    assert parse(minimal().replace(b"Melding", event.encode())).category == category


def test_channels_parameter_limits_the_channels():
    parameter = (
        "\n<parameter><valueName>BIN-channels</valueName>"
        "<value>Email, sms</value></parameter>"
    )
    assert parse(minimal(parameter)).channels == ["sms", "email"]


def test_unknown_channel_is_refused():
    parameter = (
        "\n<parameter><valueName>BIN-channels</valueName>"
        "<value>sms,fax</value></parameter>"
    )
    with pytest.raises(cap.CapError, match="BIN-channels"):
        parse(minimal(parameter))


def test_bin_geocodes_target_bins():
    area = (
        "\n<area><areaDesc>Deuzeld</areaDesc>"
        "<geocode><valueName>BIN</valueName><value>bin-42</value></geocode>"
        "<geocode><valueName>BIN</valueName><value>bin-7</value></geocode></area>"
    )
    target = parse(minimal(area)).target
    assert (target.kind, target.values) == ("bins", ["bin-42", "bin-7"])


def test_mixing_nis_and_bin_geocodes_is_refused():
    area = (
        "\n<area><areaDesc>Deuzeld</areaDesc>"
        "<geocode><valueName>BIN</valueName><value>bin-42</value></geocode>"
        "<geocode><valueName>NIS</valueName><value>11040</value></geocode></area>"
    )
    with pytest.raises(cap.CapError, match="not both"):
        parse(minimal(area))


def test_area_without_our_geocodes_targets_the_zone():
    area = (
        "\n<area><areaDesc>Schoten</areaDesc>"
        "<circle>51.25,4.50 2</circle></area>"
    )
    assert parse(minimal(area)).target.kind == "zone"


def test_malformed_xml_is_refused_with_its_line():
    with pytest.raises(cap.CapError, match="not well-formed XML at line 3"):
        parse(b"<alert>\n<identifier>\n</alert>")


def test_billion_laughs_is_refused_without_expanding():
    entities = ['<!ENTITY l0 "lol">'] + [
        f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    ]
    bomb = (
        '<?xml version="1.0"?>\n<!DOCTYPE alert [' + "".join(entities) + "]>\n"
        '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">&l9;</alert>'
    ).encode()
    # libxml2 stops this one at its amplification limit, before our own check.
    with pytest.raises(cap.CapError, match="not well-formed|DOCTYPE"):
        parse(bomb)


def test_small_entity_expansion_is_refused_too():
    nest = (
        '<?xml version="1.0"?>\n<!DOCTYPE alert [<!ENTITY a "ha">'
        '<!ENTITY b "&a;&a;&a;">]>\n'
        '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">&b;</alert>'
    ).encode()
    with pytest.raises(cap.CapError, match="DOCTYPE declarations are not allowed"):
        parse(nest)


def test_external_entity_is_refused():
    xxe = (
        b'<?xml version="1.0"?>\n<!DOCTYPE alert [<!ENTITY x SYSTEM '
        b'"file:///etc/passwd">]>\n<alert>&x;</alert>'
    )
    with pytest.raises(cap.CapError, match="DOCTYPE"):
        parse(xxe)


def test_oversized_document_is_refused():
    with pytest.raises(cap.CapError, match="larger than"):
        cap.parse_cap(SCHOTEN.read_bytes(), schema_path=SCHEMA, max_bytes=100)


def test_schema_is_compiled_once_per_path():
    assert cap.load_schema(schema_path=SCHEMA) is cap.load_schema(
        schema_path=str(SCHEMA)
    )


def test_to_event_builds_an_accepted_alert():
    accepted_at = datetime(2026, 11, 20, 9, 10, tzinfo=UTC)
    geel = parse(GEEL.read_bytes())
    event = cap.to_event(geel, zone="ipz21", accepted_at=accepted_at)
    assert isinstance(event, AlertAccepted)
    assert event.alert_id == "PZ-GLM-2026-0088-C"
    assert event.references == "PZ-GLM-2026-0088"
    assert event.expires_at == accepted_at + timedelta(hours=24)
    assert event.target.kind == "municipalities"
    schoten_event = cap.to_event(
        parse(SCHOTEN.read_bytes()), zone="ipz10", accepted_at=accepted_at
    )
    assert schoten_event.expires_at == datetime(2026, 11, 15, 6, 0, tzinfo=UTC)
    assert schoten_event.references is None
