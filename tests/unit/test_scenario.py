"""The generated BIN population of the province of Antwerp."""

from collections import Counter

import phonenumbers
import pytest
from email_validator import validate_email

from scenario import antwerp
from services.registry import reference
from shared.settings import ServiceSettings

DATA = ServiceSettings().reference_dir
FULL = {"ipz21", "ipz10", "ipz9"}


@pytest.fixture(scope="module")
def zones() -> dict[str, reference.Zone]:
    loaded = reference.load_zones(directory=DATA)
    return {zone.code: zone for zone in reference.zones_in_province(loaded, "10000")}


@pytest.fixture(scope="module")
def full() -> antwerp.Scenario:
    return antwerp.generate(reference_dir=DATA, seed=2026)


@pytest.fixture(scope="module")
def small() -> antwerp.Scenario:
    return antwerp.generate(reference_dir=DATA, seed=2026, scale=0.1)


@pytest.fixture(scope="module")
def reports() -> list[antwerp.ReportSpec]:
    return antwerp.generate_reports(reference_dir=DATA, seed=7)


def covered_by_zone(scenario: antwerp.Scenario) -> dict[str, set[str]]:
    covered: dict[str, set[str]] = {}
    for spec in scenario.bins:
        covered.setdefault(spec.zone, set()).update(spec.territory)
    return covered


def test_totals_are_exact(full):
    assert len(full.bins) == 609
    assert len(full.members) == 87_491
    assert antwerp.expected_totals() == (609, 87_491)
    assert full.summary()["bins"] == 609
    assert sum(f.members for f in full.zones.values()) == 87_491


def test_every_zone_has_bins_and_member_counts_match(full, zones):
    per_zone = Counter(spec.zone for spec in full.bins)
    assert set(per_zone) == set(zones)
    bin_zone = {spec.key: spec.zone for spec in full.bins}
    members = Counter(bin_zone[m.bin_key] for m in full.members)
    for code, figures in full.zones.items():
        assert figures.bins == per_zone[code] >= 1
        assert figures.members == members[code]
    per_bin = Counter(m.bin_key for m in full.members)
    assert min(per_bin.values()) >= antwerp.MIN_MEMBERS_PER_BIN
    assert len({spec.key for spec in full.bins}) == 609


def test_bins_follow_population(full, zones):
    weights = antwerp.zone_weights(reference_dir=DATA, zones=list(zones.values()))
    expected = antwerp.apportion(609, weights, minimum=1)
    assert {code: f.bins for code, f in full.zones.items()} == expected
    assert max(expected, key=expected.get) == "ipz2"


def test_exactly_the_three_zones_are_fully_covered(full, zones):
    covered = covered_by_zone(full)
    fully = {code for code, zone in zones.items() if covered[code] == set(zone.units)}
    assert fully == FULL
    assert set(full.fully_covered_zones) == FULL
    for code, zone in zones.items():
        if code not in FULL:
            ratio = len(covered[code]) / len(zone.units)
            assert 0.15 <= ratio <= 0.75, code


def test_territories_are_runs_of_sectors_of_their_own_zone(full, zones):
    for spec in full.bins:
        units = zones[spec.zone].units
        assert spec.territory, spec.key
        assert set(spec.territory) <= set(units), spec.key
        positions = [units.index(unit) for unit in spec.territory]
        assert positions == sorted(set(positions)), spec.key


def test_same_seed_same_output_other_seed_other_output(small):
    again = antwerp.generate(reference_dir=DATA, seed=2026, scale=0.1)
    assert again.bins == small.bins
    assert again.members == small.members
    other = antwerp.generate(reference_dir=DATA, seed=2027, scale=0.1)
    assert other.bins != small.bins
    assert other.members != small.members


def test_phones_are_unique_valid_belgian_mobiles_in_e164(full):
    phones = [m.phone for m in full.members]
    assert len(set(phones)) == len(phones)
    for phone in phones:
        parsed = phonenumbers.parse(phone, None)
        assert phonenumbers.is_valid_number_for_region(parsed, "BE"), phone
        assert phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE
        assert phonenumbers.format_number(
            parsed, phonenumbers.PhoneNumberFormat.E164
        ) == phone


def test_emails_are_unique_valid_and_at_example_domains(full):
    emails = [m.email for m in full.members]
    assert len(set(emails)) == len(emails)
    for email in emails:
        result = validate_email(email, check_deliverability=False)
        assert result.normalized == email
        assert result.domain in antwerp.EMAIL_DOMAINS


def test_members_have_roles_languages_channels_and_addresses(full, zones):
    coordinators = Counter(m.bin_key for m in full.members if m.role == "coordinator")
    assert set(coordinators) == {spec.key for spec in full.bins}
    assert set(coordinators.values()) <= {1, 2, 3}
    languages = Counter(m.language for m in full.members)
    assert set(languages) == {"nl", "fr", "en", "de"}
    assert languages["nl"] / len(full.members) > 0.85
    channels = Counter(c for m in full.members for c in m.channels)
    assert channels["email"] > channels["sms"] > channels["app"] > channels["voice"] > 0
    index = reference.postcode_index(zones.values())
    bin_zone = {spec.key: spec.zone for spec in full.bins}
    for member in full.members:
        assert member.channels and len(set(member.channels)) == len(member.channels)
        assert member.municipality_nis in index[member.postcode]
        assert zones[bin_zone[member.bin_key]].municipality(member.municipality_nis)
        assert member.street and member.given_name and member.family_name


def test_bin_kinds_are_mostly_residential(full):
    kinds = Counter(spec.kind for spec in full.bins)
    assert set(kinds) == {"residential", "business", "farming"}
    assert kinds["residential"] / 609 > 0.7
    assert kinds["business"] > kinds["farming"] * 0.8


@pytest.mark.parametrize("scale", [0.1, 0.01])
def test_smaller_scale_keeps_the_shape(scale, small):
    if scale == 0.1:
        scenario = small
    else:
        scenario = antwerp.generate(reference_dir=DATA, scale=scale)
    bins, members = antwerp.expected_totals(scale)
    assert (len(scenario.bins), len(scenario.members)) == (bins, members)
    assert len({spec.zone for spec in scenario.bins}) == 22
    assert set(scenario.fully_covered_zones) == FULL


def test_expected_totals_round_half_up_with_floors():
    assert antwerp.expected_totals(0.1) == (61, 8_749)
    assert antwerp.expected_totals(0.5) == (305, 43_746)
    assert antwerp.expected_totals(0.001) == (22, 110)
    with pytest.raises(ValueError):
        antwerp.expected_totals(0)


def test_apportion_is_exact_and_honours_minimums():
    shares = antwerp.apportion(10, {"a": 6.0, "b": 3.0, "c": 0.01}, minimum=1)
    assert shares == {"a": 6, "b": 3, "c": 1}
    assert sum(antwerp.apportion(7, {"x": 1.0, "y": 1.0, "z": 1.0}).values()) == 7
    with pytest.raises(ValueError):
        antwerp.apportion(2, {"a": 1.0, "b": 1.0, "c": 1.0}, minimum=1)


def test_border_municipalities_are_in_the_province(zones):
    names = {m.nis: m.name_nl for zone in zones.values() for m in zone.municipalities}
    for nis, name in antwerp.BORDER_MUNICIPALITIES.items():
        assert names[nis] == name


def test_183_reports_mostly_plantations(reports):
    assert len(reports) == 183
    categories = Counter(r.category for r in reports)
    assert categories == {
        "plantation": 128,
        "laboratory": 22,
        "waste_dumping": 22,
        "other": 11,
    }


def test_reports_come_mostly_from_antwerp_turnhout_and_the_border(reports, zones):
    arrondissement = {
        m.nis: m.arrondissement_nis
        for zone in zones.values()
        for m in zone.municipalities
    }
    index = reference.postcode_index(zones.values())
    inside = [
        r
        for r in reports
        if r.municipality_nis in antwerp.BORDER_MUNICIPALITIES
        or arrondissement[r.municipality_nis] in ("11000", "13000")
    ]
    assert len(inside) / len(reports) >= 0.8
    border = [r for r in reports if r.municipality_nis in antwerp.BORDER_MUNICIPALITIES]
    assert len(border) >= 0.4 * len(reports)
    for report in reports:
        assert report.municipality_nis in index[report.postcode]
        assert set(report.signals) <= set(antwerp.REPORT_SIGNALS[report.category])
        assert 1 <= len(report.signals) <= 3
        assert len(report.text) > 40


def test_report_signals_are_the_tip_lines_checklist():
    from services.reports.domain import Signal

    listed = {signal for signals in antwerp.REPORT_SIGNALS.values() for signal in signals}
    assert listed <= {signal.value for signal in Signal}
    assert listed <= set(antwerp._SIGNAL_TEXT)


def test_reports_are_reproducible(reports):
    assert antwerp.generate_reports(reference_dir=DATA, seed=7) == reports
    assert antwerp.generate_reports(reference_dir=DATA, seed=8) != reports
    assert len(antwerp.generate_reports(reference_dir=DATA, seed=7, count=20)) == 20
