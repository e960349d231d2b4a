"""Coverage of police zones by BINs, and report and delivery figures: pure logic.

Definitions used throughout:

- a BIN is *active* when its last snapshot has status `active`;
- an *active member* is a membership with status `active` in a BIN that is known
  and active; the member counts in that BIN's zone (the BIN's zone is the
  authority, not the zone copied into the membership);
- a zone's units are the statistical sectors of its last `ZoneSnapshot`; a unit is
  *covered* when at least one active BIN of that zone lists it in its territory;
- `coverage_ratio` = units covered / units total (0 for a zone without units) and
  *fully covered* = units total > 0 and every unit covered.

Every snapshot carries a version per key: a snapshot whose version is not newer
than the one already applied changes nothing, so replays are harmless.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared import events

COUNTRY = "BE"
COUNTRY_NAME = "België / Belgique / Belgien"
BIN_KINDS = ("residential", "business", "farming")


@dataclass(frozen=True)
class ZoneFigures:
    """The coverage figures of one zone at one moment."""

    zone: str
    name: str
    province_nis: str
    province_name: str
    active_bins: int
    active_bins_by_kind: dict[str, int]
    active_members: int
    units_total: int
    units_covered: int

    @property
    def coverage_ratio(self) -> float:
        """Share of the zone's units covered, 0 for a zone without units."""
        return self.units_covered / self.units_total if self.units_total else 0.0

    @property
    def fully_covered(self) -> bool:
        """Every unit of a zone that has units is covered."""
        return self.units_total > 0 and self.units_covered == self.units_total


def ratio(covered: int, total: int) -> float:
    """Covered over total, rounded to 4 decimals, 0 when there is nothing to cover."""
    return round(covered / total, 4) if total else 0.0


def zone_event(figures: ZoneFigures, *, now: datetime) -> events.ZoneCoverage:
    """The `ZoneCoverage` record of a zone's figures."""
    return events.ZoneCoverage(
        zone=figures.zone,
        name=figures.name,
        province_nis=figures.province_nis,
        active_bins=figures.active_bins,
        active_bins_by_kind=figures.active_bins_by_kind,
        active_members=figures.active_members,
        units_total=figures.units_total,
        units_covered=figures.units_covered,
        coverage_ratio=ratio(figures.units_covered, figures.units_total),
        fully_covered=figures.fully_covered,
        updated_at=now,
    )


def area_event(
    *, area: str, name: str, zones: Iterable[ZoneFigures], now: datetime
) -> events.AreaCoverage:
    """The `AreaCoverage` record summing the figures of the given zones."""
    zones = list(zones)
    by_kind: Counter[str] = Counter({kind: 0 for kind in BIN_KINDS})
    for figures in zones:
        by_kind.update(figures.active_bins_by_kind)
    total = sum(z.units_total for z in zones)
    covered = sum(z.units_covered for z in zones)
    return events.AreaCoverage(
        area=area,
        name=name,
        zones=len(zones),
        active_bins=sum(z.active_bins for z in zones),
        active_bins_by_kind=dict(by_kind),
        active_members=sum(z.active_members for z in zones),
        units_total=total,
        units_covered=covered,
        coverage_ratio=ratio(covered, total),
        fully_covered_zones=sorted(z.zone for z in zones if z.fully_covered),
        updated_at=now,
    )


@dataclass
class _Zone:
    name: str
    province_nis: str
    province_name: str
    units: frozenset[str]
    version: int


@dataclass
class _Bin:
    zone: str
    kind: str
    active: bool
    territory: frozenset[str]
    version: int
    name: str = ""


@dataclass
class _Member:
    bin_id: str
    active: bool
    version: int


@dataclass
class CoverageModel:
    """Registry state needed for coverage, with running sums per zone.

    `apply_*` return True when the snapshot was applied (newer than what is known)
    and mark the zones whose figures may have changed; `take_dirty()` hands them
    over once.
    """

    zones: dict[str, _Zone] = field(default_factory=dict)
    bins: dict[str, _Bin] = field(default_factory=dict)
    members: dict[str, _Member] = field(default_factory=dict)
    # Active members per BIN, whatever the BIN's own status.
    members_in_bin: Counter[str] = field(default_factory=Counter)
    # Per zone: how many active BINs cover each unit, BINs by kind, members.
    unit_cover: dict[str, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    bins_by_kind: dict[str, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    zone_members: Counter[str] = field(default_factory=Counter)
    dirty: set[str] = field(default_factory=set)
    # Figures computed since their zone last changed: every publishing tick sums
    # all zones for the country, and recounting every zone's units each time costs
    # more than the events themselves.
    _figures: dict[str, ZoneFigures] = field(default_factory=dict, repr=False)

    def _changed(self, zone: str) -> None:
        self.dirty.add(zone)
        self._figures.pop(zone, None)

    def apply_zone(self, *, zone: str, snapshot: events.ZoneSnapshot | None) -> bool:
        """Applies a zone snapshot, or a tombstone (None) that removes the zone."""
        known = self.zones.get(zone)
        if snapshot is None:
            if known is None:
                return False
            del self.zones[zone]
        else:
            if known is not None and snapshot.version <= known.version:
                return False
            self.zones[zone] = _Zone(
                name=snapshot.name,
                province_nis=snapshot.province_nis,
                province_name=snapshot.province_name,
                units=frozenset(snapshot.units),
                version=snapshot.version,
            )
        self._changed(zone)
        return True

    def apply_bin(self, *, bin_id: str, snapshot: events.BinSnapshot | None) -> bool:
        """Applies a BIN snapshot, or a tombstone (None) that removes the BIN."""
        known = self.bins.get(bin_id)
        if _stale(snapshot, known):
            return False
        if known is not None and known.active:
            self._count_bin(bin_id, known, sign=-1)
        if snapshot is None:
            del self.bins[bin_id]
            return True
        new = _Bin(
            zone=snapshot.zone,
            kind=snapshot.kind,
            active=snapshot.status == "active",
            territory=frozenset(snapshot.territory),
            version=snapshot.version,
            name=snapshot.name,
        )
        self.bins[bin_id] = new
        if new.active:
            self._count_bin(bin_id, new, sign=1)
        else:
            self._changed(new.zone)
        return True

    def apply_member(
        self, *, member_id: str, snapshot: events.MembershipSnapshot | None
    ) -> bool:
        """Applies a membership snapshot, or a tombstone (None): the member is gone."""
        known = self.members.get(member_id)
        if _stale(snapshot, known):
            return False
        if known is not None and known.active:
            self._count_member(known.bin_id, sign=-1)
        if snapshot is None:
            del self.members[member_id]
            return True
        new = _Member(
            bin_id=snapshot.bin_id,
            active=snapshot.status == "active",
            version=snapshot.version,
        )
        self.members[member_id] = new
        if new.active:
            self._count_member(new.bin_id, sign=1)
        return True

    def _count_bin(self, bin_id: str, state: _Bin, *, sign: int) -> None:
        cover = self.unit_cover[state.zone]
        for unit in state.territory:
            cover[unit] += sign
            if cover[unit] <= 0:
                del cover[unit]
        self.bins_by_kind[state.zone][state.kind] += sign
        self.zone_members[state.zone] += sign * self.members_in_bin[bin_id]
        self._changed(state.zone)

    def _count_member(self, bin_id: str, *, sign: int) -> None:
        self.members_in_bin[bin_id] += sign
        if self.members_in_bin[bin_id] == 0:
            del self.members_in_bin[bin_id]
        state = self.bins.get(bin_id)
        if state is not None and state.active:
            self.zone_members[state.zone] += sign
            self._changed(state.zone)

    def take_dirty(self) -> set[str]:
        """The zones changed since the last call, and forgets them."""
        dirty, self.dirty = self.dirty, set()
        return dirty

    def mark_all_dirty(self) -> None:
        """Marks every known zone as changed, e.g. to republish after a restart."""
        self.dirty.update(self.zones)

    def figures(self, zone: str) -> ZoneFigures | None:
        """The current figures of a zone, None while its snapshot is unknown."""
        cached = self._figures.get(zone)
        if cached is not None:
            return cached
        known = self.zones.get(zone)
        if known is None:
            return None
        cover = self.unit_cover.get(zone, {})
        by_kind = self.bins_by_kind.get(zone, Counter())
        figures = self._figures[zone] = ZoneFigures(
            zone=zone,
            name=known.name,
            province_nis=known.province_nis,
            province_name=known.province_name,
            active_bins=sum(by_kind.values()),
            active_bins_by_kind={kind: by_kind.get(kind, 0) for kind in BIN_KINDS},
            active_members=self.zone_members.get(zone, 0),
            units_total=len(known.units),
            units_covered=sum(1 for unit in known.units if unit in cover),
        )
        return figures

    def zones_of_province(self, province_nis: str) -> list[ZoneFigures]:
        """The figures of every known zone of a province."""
        return [
            figures
            for code, state in self.zones.items()
            if state.province_nis == province_nis
            and (figures := self.figures(code)) is not None
        ]

    def all_figures(self) -> list[ZoneFigures]:
        """The figures of every known zone."""
        return [f for code in self.zones if (f := self.figures(code)) is not None]

    def bins_of_zone(self, zone: str, *, threshold: int) -> list[dict[str, Any]]:
        """The active BINs of a zone with their member counts, small ones hidden.

        One BIN is a street or a few: a count below the threshold could single
        its members out, so it shows as `<threshold`.
        """
        return [
            {
                "bin_id": bin_id,
                "name": state.name,
                "kind": state.kind,
                "units_covered": len(state.territory),
                "active_members": protect(
                    self.members_in_bin.get(bin_id, 0), threshold=threshold
                ),
            }
            for bin_id, state in sorted(self.bins.items())
            if state.zone == zone and state.active
        ]


def _stale(snapshot: events.Event | None, known: _Bin | _Member | None) -> bool:
    """True when a snapshot is not newer than what is known, or removes nothing."""
    if snapshot is None:
        return known is None
    version = snapshot.version  # type: ignore[attr-defined]
    return known is not None and version <= known.version


def province_name(model: CoverageModel, province_nis: str) -> str:
    """The name of a province as its zones give it."""
    for state in model.zones.values():
        if state.province_nis == province_nis:
            return state.province_name
    return province_nis


# Reports, alerts and deliveries --------------------------------------------------


def iso_week(moment: datetime) -> str:
    """The ISO week of a moment, e.g. `2026-W07`."""
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def protect(count: int, *, threshold: int) -> int | str:
    """A count as shown for a small area: `<threshold` when it is below it (not 0)."""
    if 0 < count < threshold:
        return f"<{threshold}"
    return count


@dataclass
class ReportFigures:
    """Anonymous reports per zone, category and week, with their triage outcome."""

    seen: set[str] = field(default_factory=set)
    per_zone_week: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    per_municipality: Counter[tuple[str, str]] = field(default_factory=Counter)
    status_of: dict[str, tuple[str, str, str | None]] = field(default_factory=dict)

    def apply_submitted(self, report: events.ReportSubmitted) -> bool:
        """Counts a report once, whatever the number of times it is delivered."""
        if report.report_id in self.seen:
            return False
        self.seen.add(report.report_id)
        zone = report.zone or "unknown"
        week = iso_week(report.submitted_hour)
        province = report.province_nis or ""
        self.per_zone_week[(zone, province, report.category, week)] += 1
        if report.municipality_nis:
            self.per_municipality[(report.municipality_nis, report.category)] += 1
        return True

    def apply_status(self, change: events.ReportStatusChanged) -> None:
        """Keeps the latest status and outcome of a report."""
        self.status_of[change.report_id] = (
            change.zone or "unknown",
            change.status,
            change.outcome,
        )

    def weekly(self, *, zone: str | None = None) -> list[dict[str, Any]]:
        """Reports per zone, category and week; exact counts (zone is large enough)."""
        return [
            {"zone": z, "province_nis": p, "category": c, "week": w, "reports": n}
            for (z, p, c, w), n in sorted(self.per_zone_week.items())
            if zone is None or z == zone
        ]

    def municipalities(self, *, threshold: int) -> list[dict[str, Any]]:
        """Reports per municipality and category, small counts hidden."""
        return [
            {
                "municipality_nis": m,
                "category": c,
                "reports": protect(n, threshold=threshold),
            }
            for (m, c), n in sorted(self.per_municipality.items())
        ]

    def outcomes(self) -> list[dict[str, Any]]:
        """Reports per zone by their latest status and outcome."""
        counts: Counter[tuple[str, str, str]] = Counter(
            (zone, status, outcome or "")
            for zone, status, outcome in self.status_of.values()
        )
        return [
            {"zone": z, "status": s, "outcome": o or None, "reports": n}
            for (z, s, o), n in sorted(counts.items())
        ]


@dataclass
class DeliveryFigures:
    """Alerts and deliveries per zone, channel and status, with hand-over times."""

    alerts: set[str] = field(default_factory=set)
    alerts_per_zone: Counter[str] = field(default_factory=Counter)
    # (alert id, member id, channel) -> (zone, latest status)
    last_status: dict[tuple[str, str, str], tuple[str, str]] = field(
        default_factory=dict
    )
    handover_seconds: dict[tuple[str, str], list[float]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def apply_alert(self, alert: events.AlertAccepted) -> None:
        """Counts each new alert once per zone (updates and cancels are not alerts)."""
        if alert.action != "alert" or alert.alert_id in self.alerts:
            return
        self.alerts.add(alert.alert_id)
        self.alerts_per_zone[alert.zone] += 1

    def apply_pending(self, pending: events.DeliveriesPending) -> None:
        """Counts one BIN's deliveries as pending, unless a sender reported first."""
        for channel, members in pending.members.items():
            for member_id in members:
                key = (pending.alert_id, member_id, channel)
                if key not in self.last_status:
                    self.last_status[key] = (pending.zone, "pending")

    def apply_status(self, status: events.DeliveryStatus) -> None:
        """Keeps the latest status per delivery and the time it took to hand it over."""
        key = (status.alert_id, status.member_id, status.channel)
        previous = self.last_status.get(key, ("", ""))[1]
        self.last_status[key] = (status.zone, status.status)
        if status.status == "handed_over" and previous != "handed_over":
            seconds = (status.at - status.accepted_at).total_seconds()
            self.handover_seconds[(status.zone, status.channel)].append(
                max(seconds, 0.0)
            )

    def summary(self, *, zone: str | None = None) -> dict[str, Any]:
        """Deliveries per channel and status, and hand-over time percentiles.

        Counts a whole zone's deliveries (never one member's): exact, like every
        zone total.
        """
        per: dict[str, Counter[str]] = defaultdict(Counter)
        for (_, _, channel), (where, state) in self.last_status.items():
            if zone is None or where == zone:
                per[channel][state] += 1
        times: dict[str, list[float]] = defaultdict(list)
        for (where, channel), seconds in self.handover_seconds.items():
            if zone is None or where == zone:
                times[channel].extend(seconds)
        channels = {
            channel: {
                "statuses": dict(sorted(per[channel].items())),
                "handover_seconds": _percentiles(sorted(times.get(channel, []))),
            }
            for channel in sorted(set(per) | set(times))
        }
        alerts = {
            code: count
            for code, count in sorted(self.alerts_per_zone.items())
            if zone is None or code == zone
        }
        return {"alerts_per_zone": alerts, "channels": channels}


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "max": None}
    if len(values) == 1:
        return {"p50": values[0], "p95": values[0], "max": values[0]}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": round(cuts[49], 3), "p95": round(cuts[94], 3), "max": values[-1]}


def zone_figures_row(record: Mapping[str, Any]) -> list[Any]:
    """One CSV row of a zone coverage record, in the order of `ZONE_CSV_COLUMNS`."""
    return [record.get(column) for column in ZONE_CSV_COLUMNS]


ZONE_CSV_COLUMNS = (
    "zone",
    "name",
    "province_nis",
    "active_bins",
    "active_members",
    "units_total",
    "units_covered",
    "coverage_ratio",
    "fully_covered",
    "updated_at",
)
AREA_CSV_COLUMNS = (
    "area",
    "name",
    "zones",
    "active_bins",
    "active_members",
    "units_total",
    "units_covered",
    "coverage_ratio",
    "fully_covered_zones",
    "updated_at",
)
