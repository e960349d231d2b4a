"""Coverage arithmetic: joins, moves, erasures, territory changes, replays."""

from __future__ import annotations

from datetime import UTC, datetime

from services.analytics import domain
from tests.builders import analytics as b

UNITS = ["u1", "u2", "u3", "u4"]


def model_with_zone() -> domain.CoverageModel:
    model = domain.CoverageModel()
    model.apply_zone(zone="z1", snapshot=b.zone("z1", units=UNITS))
    return model


def test_members_count_only_in_active_bins_of_the_bins_zone():
    model = model_with_zone()
    model.apply_member(member_id="m1", snapshot=b.member("m1", bin_id="bin-a"))
    assert model.figures("z1").active_members == 0, "BIN not known yet"
    model.apply_bin(
        bin_id="bin-a", snapshot=b.bin_("bin-a", zone="z1", territory=["u1"])
    )
    figures = model.figures("z1")
    assert (figures.active_bins, figures.active_members) == (1, 1)
    model.apply_bin(
        bin_id="bin-a",
        snapshot=b.bin_(
            "bin-a", zone="z1", status="dormant", territory=["u1"], version=2
        ),
    )
    figures = model.figures("z1")
    assert (figures.active_bins, figures.active_members, figures.units_covered) == (
        0,
        0,
        0,
    )


def test_a_member_who_moves_counts_in_the_new_bin_only():
    model = model_with_zone()
    model.apply_zone(zone="z2", snapshot=b.zone("z2", units=["v1"]))
    model.apply_bin(bin_id="a", snapshot=b.bin_("a", zone="z1"))
    model.apply_bin(bin_id="c", snapshot=b.bin_("c", zone="z2"))
    model.apply_member(member_id="m1", snapshot=b.member("m1", bin_id="a"))
    model.apply_member(member_id="m1", snapshot=b.member("m1", bin_id="c", version=2))
    assert model.figures("z1").active_members == 0
    assert model.figures("z2").active_members == 1
    assert model.take_dirty() == {"z1", "z2"}


def test_erasure_withdrawal_and_tombstone_remove_the_member():
    model = model_with_zone()
    model.apply_bin(bin_id="a", snapshot=b.bin_("a", zone="z1"))
    for i, status in enumerate(("withdrawn", "left", "erased")):
        model.apply_member(member_id=f"m{i}", snapshot=b.member(f"m{i}", bin_id="a"))
        assert model.figures("z1").active_members == 1
        model.apply_member(
            member_id=f"m{i}",
            snapshot=b.member(f"m{i}", bin_id="a", status=status, version=2),
        )
        assert model.figures("z1").active_members == 0
    model.apply_member(member_id="m9", snapshot=b.member("m9", bin_id="a"))
    model.apply_member(member_id="m9", snapshot=None)
    assert model.figures("z1").active_members == 0
    assert not model.members_in_bin


def test_replayed_or_older_snapshots_change_nothing():
    model = model_with_zone()
    assert model.apply_bin(
        bin_id="a", snapshot=b.bin_("a", zone="z1", territory=["u1"], version=3)
    )
    assert model.apply_member(
        member_id="m1", snapshot=b.member("m1", bin_id="a", version=5)
    )
    model.take_dirty()
    assert not model.apply_bin(bin_id="a", snapshot=b.bin_("a", zone="z1", version=3))
    assert not model.apply_bin(
        bin_id="a", snapshot=b.bin_("a", zone="z1", version=1, status="dissolved")
    )
    assert not model.apply_member(
        member_id="m1", snapshot=b.member("m1", version=4, status="erased")
    )
    assert not model.apply_zone(zone="z1", snapshot=b.zone("z1", units=["x"]))
    assert model.take_dirty() == set()
    figures = model.figures("z1")
    assert (figures.active_bins, figures.active_members, figures.units_covered) == (
        1,
        1,
        1,
    )


def test_territory_changes_and_full_coverage_come_and_go():
    model = model_with_zone()
    model.apply_bin(bin_id="a", snapshot=b.bin_("a", zone="z1", territory=["u1", "u2"]))
    model.apply_bin(
        bin_id="c",
        snapshot=b.bin_("c", zone="z1", territory=["u2", "u3"], kind="business"),
    )
    figures = model.figures("z1")
    assert (figures.units_covered, figures.units_total) == (3, 4)
    assert figures.coverage_ratio == 0.75 and not figures.fully_covered
    assert figures.active_bins_by_kind == {
        "residential": 1,
        "business": 1,
        "farming": 0,
    }
    model.apply_bin(
        bin_id="c", snapshot=b.bin_("c", zone="z1", territory=["u3", "u4"], version=2)
    )
    assert model.figures("z1").fully_covered
    model.apply_bin(bin_id="a", snapshot=None)
    figures = model.figures("z1")
    assert (figures.units_covered, figures.fully_covered) == (2, False)
    # Units outside the zone's own territory never count.
    model.apply_bin(
        bin_id="d", snapshot=b.bin_("d", zone="z1", territory=["elsewhere"])
    )
    assert model.figures("z1").units_covered == 2


def test_a_zone_without_units_is_never_fully_covered():
    model = domain.CoverageModel()
    model.apply_zone(zone="z0", snapshot=b.zone("z0", units=[]))
    figures = model.figures("z0")
    assert figures.coverage_ratio == 0.0 and not figures.fully_covered
    assert model.figures("unknown") is None


def test_province_and_country_records_sum_their_zones():
    model = model_with_zone()
    model.apply_zone(
        zone="z2",
        snapshot=b.zone(
            "z2", units=["v1"], province_nis="20001", province_name="Vlaams-Brabant"
        ),
    )
    model.apply_bin(bin_id="a", snapshot=b.bin_("a", zone="z1", territory=["u1"]))
    model.apply_bin(bin_id="c", snapshot=b.bin_("c", zone="z2", territory=["v1"]))
    for i in range(3):
        model.apply_member(member_id=f"m{i}", snapshot=b.member(f"m{i}", bin_id="a"))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    country = domain.area_event(
        area="BE", name="BE", zones=model.all_figures(), now=now
    )
    assert (country.zones, country.active_bins, country.active_members) == (2, 2, 3)
    assert (country.units_covered, country.units_total) == (2, 5)
    assert country.fully_covered_zones == ["z2"]
    antwerp = domain.area_event(
        area="10000", name="Antwerpen", zones=model.zones_of_province("10000"), now=now
    )
    assert (antwerp.zones, antwerp.active_members, antwerp.coverage_ratio) == (
        1,
        3,
        0.25,
    )
    record = domain.zone_event(model.figures("z2"), now=now)
    assert record.fully_covered and record.coverage_ratio == 1.0


def test_small_counts_are_hidden_below_the_threshold():
    assert domain.protect(0, threshold=5) == 0
    assert domain.protect(3, threshold=5) == "<5"
    assert domain.protect(5, threshold=5) == 5


def test_reports_are_counted_once_per_week_and_hidden_per_municipality():
    figures = domain.ReportFigures()
    for i in range(3):
        figures.apply_submitted(b.report(f"r{i}"))
    assert not figures.apply_submitted(b.report("r0")), "a redelivery counts once"
    assert figures.weekly() == [
        {
            "zone": "ipz10",
            "province_nis": "10000",
            "category": "plantation",
            "week": "2026-W07",
            "reports": 3,
        }
    ]
    assert figures.municipalities(threshold=5)[0]["reports"] == "<5"
    figures.apply_status(b.report_status("r0"))
    assert figures.outcomes() == [
        {"zone": "ipz10", "status": "closed", "outcome": "found", "reports": 1}
    ]


def test_deliveries_per_channel_with_handover_times():
    figures = domain.DeliveryFigures()
    figures.apply_alert(b.alert("a1"))
    figures.apply_alert(b.alert("a1"))
    figures.apply_alert(b.alert("a1", action="cancel"))
    figures.apply_status(b.delivery_status("a1", member_id="m1", after_s=2))
    figures.apply_status(b.delivery_status("a1", member_id="m2", after_s=4))
    figures.apply_status(b.delivery_status("a1", member_id="m3", status="failed"))
    summary = figures.summary()
    assert summary["alerts_per_zone"] == {"ipz10": 1}
    sms = summary["channels"]["sms"]
    assert sms["statuses"] == {"failed": 1, "handed_over": 2}
    assert sms["handover_seconds"]["max"] == 4.0


def test_deliveries_can_be_read_for_one_zone():
    figures = domain.DeliveryFigures()
    figures.apply_alert(b.alert("a1", zone="z1"))
    figures.apply_alert(b.alert("a2", zone="z2"))
    figures.apply_status(b.delivery_status("a1", zone="z1", after_s=1))
    figures.apply_status(b.delivery_status("a2", zone="z2", channel="email", after_s=9))
    mine = figures.summary(zone="z1")
    assert mine["alerts_per_zone"] == {"z1": 1}
    assert list(mine["channels"]) == ["sms"]
    assert mine["channels"]["sms"]["handover_seconds"]["p50"] == 1.0
    assert set(figures.summary()["channels"]) == {"sms", "email"}


def test_per_bin_member_counts_hide_small_counts_but_zone_totals_stay_exact():
    model = model_with_zone()
    model.apply_bin(bin_id="big", snapshot=b.bin_("big", zone="z1", territory=["u1"]))
    model.apply_bin(bin_id="small", snapshot=b.bin_("small", zone="z1"))
    model.apply_bin(bin_id="empty", snapshot=b.bin_("empty", zone="z1"))
    for i in range(6):
        model.apply_member(member_id=f"b{i}", snapshot=b.member(f"b{i}", bin_id="big"))
    model.apply_member(member_id="s1", snapshot=b.member("s1", bin_id="small"))
    bins = {row["bin_id"]: row for row in model.bins_of_zone("z1", threshold=5)}
    assert bins["big"]["active_members"] == 6
    assert bins["small"]["active_members"] == "<5"
    assert bins["empty"]["active_members"] == 0
    assert bins["big"]["name"] == "BIN big" and bins["big"]["units_covered"] == 1
    assert model.figures("z1").active_members == 7


def test_cached_figures_follow_every_change():
    model = model_with_zone()
    model.apply_bin(bin_id="a", snapshot=b.bin_("a", zone="z1", territory=UNITS))
    assert model.figures("z1").fully_covered
    model.apply_member(member_id="m1", snapshot=b.member("m1", bin_id="a"))
    assert model.figures("z1").active_members == 1
    model.apply_zone(zone="z1", snapshot=b.zone("z1", units=[*UNITS, "u5"], version=2))
    assert not model.figures("z1").fully_covered
    model.apply_bin(bin_id="a", snapshot=None)
    assert (model.figures("z1").active_bins, model.figures("z1").active_members) == (
        0,
        0,
    )


def test_pending_deliveries_count_until_a_sender_reports_in_either_order():
    figures = domain.DeliveryFigures()
    figures.apply_status(b.delivery_status("a1", member_id="m1", after_s=1))
    figures.apply_pending(
        b.deliveries_pending("a1", members={"sms": ["m1", "m2"], "email": ["m1"]})
    )
    channels = figures.summary()["channels"]
    assert channels["sms"]["statuses"] == {"handed_over": 1, "pending": 1}
    assert channels["email"]["statuses"] == {"pending": 1}
