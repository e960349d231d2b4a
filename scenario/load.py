"""Loads the Antwerp scenario into a running platform through its public HTTP APIs.

`python -m scenario.load load` (run by `scripts/demo.sh load`, which `make up`
calls) does what a migration of the province's BIN register would do, and nothing
a client of the platform could not: the reference import on the registry, the
BINs, their members as one CSV import per BIN, the anonymous reports through the
tip line's JSON API (solving each proof of work), and the Schoten CAP alert from
a zone token. It then waits until analytics counts every BIN and member and the
alert is handed over, and prints a summary.

It does not load twice, and it never trusts a local file to know: BINs found in
the registry (by zone and name) are not created again, member imports are
idempotent, reports already in the zones' queues are not sent again, and the
load's alert has a fixed identifier that messaging answers for.

`python -m scenario.load replay` (`make demo`) posts a new Schoten alert to a
running system and prints its delivery counts.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import io
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from lxml import etree

from scenario import antwerp
from services.registry import reference
from services.reports.domain import solve
from shared.auth import issue_token
from shared.settings import ServiceSettings

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
CAP_SAMPLE = Path("cap") / "constructed-pz-schoten-burglary-nl-fr.xml"
SCHOTEN = "ipz10"
ALERT_CHANNELS = ("sms", "email", "voice", "app")
# Proofs of work solved at once, one process each (the machine has two cores).
PROOF_WORKERS = 2
# The GDPR applies from this day: paper consents are dated no earlier.
GDPR_START = date(2018, 5, 25)


class LoaderSettings(ServiceSettings):
    """Where the services answer and what to load; read once from the environment."""

    service_name: str = "scenario-loader"
    registry_url: str = "http://127.0.0.1:8001"
    messaging_url: str = "http://127.0.0.1:8002"
    reports_url: str = "http://127.0.0.1:8003"
    analytics_url: str = "http://127.0.0.1:8004"
    # The fan-out worker's probe page; the loader waits until it knows every Schoten
    # member before it posts the alert. Empty skips that wait.
    fanout_url: str = "http://127.0.0.1:6066"
    scenario_seed: int = 2026
    scenario_scale: float = 1.0
    reports_seed: int = 7
    # Member imports in flight at once; the registry API is one process.
    import_concurrency: int = 4
    bin_concurrency: int = 8
    # The registry relay drains about 130 members/s into Kafka on 2 busy cores.
    wait_timeout_s: float = 1500.0
    alert_timeout_s: float = 300.0
    http_timeout_s: float = 60.0
    progress_every_s: float = 3.0

    def load_alert_id(self) -> str:
        """The identifier of the load's alert: fixed, so that a reload finds it."""
        return f"PZ-SCHOTEN-DEMO-LOAD-{self.scenario_seed}"


def say(message: str) -> None:
    """Prints one line of progress for whoever runs the loader."""
    print(f"==> {message}", flush=True)


class LoadError(RuntimeError):
    """The load could not go on; the message says why and where to look."""


# --------------------------------------------------------------------------------
# Plain data derived from the scenario


def member_csv(members: Iterable[antwerp.MemberSpec], *, names: dict[str, str],
               consent_on: date) -> bytes:
    """A coordinator's CSV of one BIN's members, as the registry imports it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("given_name", "family_name", "street", "postcode", "municipality",
                     "phone", "email", "app_token", "language", "channels", "role",
                     "consent_given_on"))
    for m in members:
        writer.writerow((
            m.given_name, m.family_name, m.street, m.postcode,
            names[m.municipality_nis], m.phone, m.email,
            app_token(m) if "app" in m.channels else "", m.language,
            "|".join(m.channels), m.role, consent_on.isoformat(),
        ))
    return buffer.getvalue().encode()


def app_token(member: antwerp.MemberSpec) -> str:
    """An invented push token for a member who chose the app, stable per member."""
    return "push-" + hashlib.sha256(member.phone.encode()).hexdigest()[:32]


def expected_deliveries(members: Iterable[antwerp.MemberSpec]) -> dict[str, int]:
    """Deliveries per channel an alert on every channel makes for these members."""
    counts: Counter[str] = Counter()
    for member in members:
        counts.update(c for c in member.channels if c in ALERT_CHANNELS)
    return dict(counts)


def cap_alert(sample: bytes, *, identifier: str, now: datetime) -> bytes:
    """The sample Schoten alert with a fresh identifier, sent time and expiry."""
    root = etree.fromstring(sample)
    local = now.astimezone(ZoneInfo("Europe/Brussels")).replace(microsecond=0)
    root.find(f"{{{CAP_NS}}}identifier").text = identifier
    root.find(f"{{{CAP_NS}}}sent").text = local.isoformat()
    for expires in root.iter(f"{{{CAP_NS}}}expires"):
        expires.text = (local + timedelta(hours=12)).isoformat()
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def solve_report(challenge: str) -> str:
    """The nonce for a challenge (run in a worker process: it is CPU work)."""
    return solve(challenge)


# --------------------------------------------------------------------------------
# The HTTP side


@dataclass
class Progress:
    """Counts one step's progress and prints it now and then."""

    what: str
    total: int
    every_s: float
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    printed: float = field(default_factory=time.monotonic)

    def add(self, count: int) -> None:
        """Counts `count` more and prints a line if the last one is old enough."""
        self.done += count
        now = time.monotonic()
        if now - self.printed >= self.every_s or self.done >= self.total:
            self.printed = now
            rate = self.done / max(now - self.started, 1e-9)
            say(f"  {self.what}: {self.done:,} / {self.total:,} "
                f"({100 * self.done // max(self.total, 1)} %), {rate:,.0f}/s")


class Platform:
    """The four services' HTTP APIs, with the tokens the loader signs for itself."""

    def __init__(self, settings: LoaderSettings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.client = client
        secret = settings.jwt_secret
        operator = issue_token(secret=secret, role="operator",
                               subject="scenario-loader")
        schoten = issue_token(secret=secret, role="zone", scope=SCHOTEN,
                              subject="scenario-loader")
        self.operator = {"Authorization": f"Bearer {operator}"}
        self.schoten = {"Authorization": f"Bearer {schoten}"}

    async def call(self, method: str, url: str, *, ok: Iterable[int] = (200,),
                   **options: Any) -> httpx.Response:
        """One request; retries a refused connection and a 5xx a few times."""
        for attempt in range(5):
            try:
                response = await self.client.request(method, url, **options)
            except httpx.TransportError as error:
                if attempt == 4:
                    raise LoadError(f"{method} {url}: {type(error).__name__}") from None
            else:
                if response.status_code in tuple(ok):
                    return response
                if response.status_code < 500 or attempt == 4:
                    raise LoadError(f"{method} {url} answered {response.status_code}: "
                                    f"{response.text[:500]}")
            await asyncio.sleep(1 + attempt)
        raise AssertionError("unreachable")

    async def province(self) -> dict[str, Any] | None:
        """Analytics' figures for the province, None while it knows none."""
        base = self.settings.analytics_url
        url = f"{base}/v1/coverage/provinces/{antwerp.PROVINCE_NIS}"
        response = await self.call("GET", url, ok=(200, 404))
        return response.json() if response.status_code == 200 else None

    async def alert_status(self, alert_id: str) -> dict[str, Any] | None:
        """Messaging's status of an alert, None if it never got it."""
        url = f"{self.settings.messaging_url}/v1/alerts/{alert_id}"
        response = await self.call("GET", url, ok=(200, 404), headers=self.schoten)
        return response.json() if response.status_code == 200 else None


async def import_reference(platform: Platform) -> None:
    """Has the registry load zones, municipalities and sectors from its directory."""
    url = f"{platform.settings.registry_url}/v1/reference/import"
    outcome = (await platform.call("POST", url, headers=platform.operator)).json()
    say(f"reference data: {outcome['zones']} zones ({outcome['created']} new, "
        f"{outcome['changed']} changed, {outcome['unchanged']} unchanged)")


async def create_bins(
    platform: Platform, scenario: antwerp.Scenario
) -> dict[str, str]:
    """Creates the BINs the registry does not hold yet; scenario key -> BIN id."""
    url = f"{platform.settings.registry_url}/v1/bins"
    held = (await platform.call("GET", url, headers=platform.operator)).json()
    by_name = {(b["zone"], b["name"]): b["bin_id"] for b in held}
    ids = {s.key: by_name[(s.zone, s.name)] for s in scenario.bins
           if (s.zone, s.name) in by_name}
    missing = [s for s in scenario.bins if s.key not in ids]
    say(f"BINs: {len(ids):,} of {len(scenario.bins):,} already in the registry, "
        f"creating {len(missing):,}")
    progress = Progress("BINs", len(missing), platform.settings.progress_every_s)

    async def create(spec: antwerp.BinSpec) -> None:
        body = {"zone": spec.zone, "name": spec.name, "kind": spec.kind,
                "territory": list(spec.territory), "status": "active",
                "founded_on": spec.founded_on.isoformat()}
        # A POST is not repeated blindly: an error may come after the BIN was
        # stored, so the registry is asked first whether it holds it.
        for _ in range(3):
            try:
                made = await platform.client.post(url, json=body,
                                                  headers=platform.operator)
            except httpx.TransportError:
                made = httpx.Response(599)
            if made.status_code == 201:
                ids[spec.key] = made.json()["bin_id"]
                break
            held = await platform.call("GET", url, params={"zone": spec.zone},
                                       headers=platform.operator)
            found = [b["bin_id"] for b in held.json() if b["name"] == spec.name]
            if found:
                ids[spec.key] = found[0]
                break
            if made.status_code < 500:
                raise LoadError(f"POST {url} answered {made.status_code}: "
                                f"{made.text[:500]}")
        else:
            raise LoadError(f"POST {url} kept failing for BIN {spec.name}")
        progress.add(1)

    await gather_limited(platform.settings.bin_concurrency, missing, create)
    return ids


async def import_members(
    platform: Platform, scenario: antwerp.Scenario, bin_ids: dict[str, str],
    names: dict[str, str],
) -> Counter[str]:
    """Imports every BIN's members as one CSV each; idempotent, so safe to re-run."""
    per_bin: dict[str, list[antwerp.MemberSpec]] = {}
    for member in scenario.members:
        per_bin.setdefault(member.bin_key, []).append(member)
    founded = {spec.key: spec.founded_on for spec in scenario.bins}
    progress = Progress("members", len(scenario.members),
                        platform.settings.progress_every_s)
    outcome: Counter[str] = Counter()
    headers = {**platform.operator, "Content-Type": "text/csv"}

    async def load(spec: antwerp.BinSpec) -> None:
        members = per_bin.get(spec.key, [])
        body = member_csv(members, names=names,
                          consent_on=max(founded[spec.key], GDPR_START))
        base = platform.settings.registry_url
        url = f"{base}/v1/bins/{bin_ids[spec.key]}/members/import"
        answered = await platform.call("POST", url, content=body, headers=headers)
        answer = answered.json()
        outcome.update(imported=answer["imported"], present=answer["already_present"])
        progress.add(len(members))

    await gather_limited(platform.settings.import_concurrency, scenario.bins, load)
    return outcome


async def count_reports(platform: Platform, zones: Iterable[str]) -> int:
    """The reports already in the province's zone queues (read with operator rights)."""
    total = 0
    for zone in zones:
        url = f"{platform.settings.reports_url}/v1/zones/{zone}/reports"
        found = await platform.call("GET", url, headers=platform.operator)
        total += len(found.json()["reports"])
    return total


async def submit_reports(
    platform: Platform, reports: list[antwerp.ReportSpec], pool: ProcessPoolExecutor
) -> None:
    """Sends reports one by one as the tip line's JSON clients do, proof of work and
    all; waits as long as the global rate limit asks (Retry-After)."""
    base = platform.settings.reports_url
    progress = Progress("reports", len(reports), platform.settings.progress_every_s)
    loop = asyncio.get_running_loop()

    async def send(spec: antwerp.ReportSpec) -> None:
        while True:
            issued = (await platform.call("GET", f"{base}/v1/challenge")).json()
            nonce = await loop.run_in_executor(pool, solve_report, issued["challenge"])
            body = {"challenge": issued["challenge"], "nonce": nonce,
                    "report": {"category": spec.category,
                               "location": {"postcode": spec.postcode},
                               "signals": list(spec.signals), "text": spec.text}}
            sent = await platform.call("POST", f"{base}/v1/reports", json=body,
                                       ok=(201, 429))
            if sent.status_code == 201:
                break
            await asyncio.sleep(float(sent.headers.get("Retry-After", "5")))
        progress.add(1)

    await gather_limited(PROOF_WORKERS, reports, send)


async def gather_limited(
    limit: int, items: Iterable[Any], work: Callable[[Any], Awaitable[None]]
) -> None:
    """Runs `work` on every item with at most `limit` in flight; fails on the first
    error."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty():
            await work(queue.get_nowait())

    await asyncio.gather(*(worker() for _ in range(limit)))


async def wait_until(
    what: str, probe: Callable[[], Awaitable[tuple[bool, str]]], *, timeout_s: float,
    every_s: float,
) -> None:
    """Polls `probe` until it says done; prints its state when it changes."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while True:
        done, state = await probe()
        if state != last:
            say(f"  {what}: {state}")
            last = state
        if done:
            return
        if time.monotonic() > deadline:
            raise LoadError(f"gave up waiting for {what} after {timeout_s:.0f}s; "
                            f"last seen: {state}. See .run/logs/ for the services.")
        await asyncio.sleep(every_s)


async def wait_for_coverage(platform: Platform, *, bins: int, members: int) -> None:
    """Waits until analytics counts the scenario's BINs and members in the province."""

    async def probe() -> tuple[bool, str]:
        found = await platform.province()
        if found is None:
            return False, "analytics knows no figures for the province yet"
        got = (found["active_bins"], found["active_members"])
        return got == (bins, members), (f"{got[0]:,} / {bins:,} BINs, "
                                        f"{got[1]:,} / {members:,} members")

    await wait_until("analytics", probe, timeout_s=platform.settings.wait_timeout_s,
                     every_s=2.0)


async def wait_for_fanout(platform: Platform, *, members: int) -> None:
    """Waits until the fan-out worker knows every Schoten member (its probe page)."""
    if not platform.settings.fanout_url:
        return
    url = f"{platform.settings.fanout_url}/v1/fanout/zones/{SCHOTEN}/"

    async def probe() -> tuple[bool, str]:
        try:
            known = (await platform.client.get(url)).json()["members"]
        except (httpx.HTTPError, ValueError, KeyError):
            return False, "fan-out worker not answering yet"
        return known >= members, f"{known:,} / {members:,} Schoten members known"

    await wait_until("fan-out", probe, timeout_s=platform.settings.wait_timeout_s,
                     every_s=1.0)


async def post_alert(platform: Platform, *, identifier: str) -> str:
    """Posts the Schoten CAP alert as PZ Schoten's staff; returns the alert id."""
    sample = (platform.settings.reference_dir / CAP_SAMPLE).read_bytes()
    body = cap_alert(sample, identifier=identifier, now=datetime.now(UTC))
    url = f"{platform.settings.messaging_url}/v1/alerts"
    headers = {**platform.schoten, "Content-Type": "application/cap+xml"}
    accepted = await platform.call("POST", url, ok=(202,), content=body,
                                   headers=headers)
    say(f"alert {identifier} accepted by messaging: {accepted.json()['status_url']}")
    return accepted.json()["alert_id"]


async def wait_for_handover(
    platform: Platform, alert_id: str, *, members: int, per_channel: dict[str, int]
) -> dict[str, Any]:
    """Waits until every targeted member is handed over on each chosen channel."""
    status: dict[str, Any] = {}

    async def probe() -> tuple[bool, str]:
        status.clear()
        status.update(await platform.alert_status(alert_id) or {})
        by_channel = status.get("by_channel", {})
        done = status.get("targeted_members") == members and all(
            by_channel.get(c, {}).get("handed_over") == n
            for c, n in per_channel.items()
        )
        parts = ", ".join(
            f"{c} {by_channel.get(c, {}).get('handed_over', 0):,}/{n:,}"
            for c, n in sorted(per_channel.items())
        )
        targeted = status.get("targeted_members", 0)
        return done, f"{targeted:,} members; handed over {parts}"

    await wait_until(f"alert {alert_id}", probe,
                     timeout_s=platform.settings.alert_timeout_s, every_s=1.0)
    return status


# --------------------------------------------------------------------------------
# The commands


@dataclass
class Expected:
    """What the scenario must make the platform show."""

    scenario: antwerp.Scenario
    reports: list[antwerp.ReportSpec]
    zones: list[reference.Zone]

    @property
    def schoten_members(self) -> list[antwerp.MemberSpec]:
        """The members of PZ Schoten's BINs."""
        keys = {s.key for s in self.scenario.bins if s.zone == SCHOTEN}
        return [m for m in self.scenario.members if m.bin_key in keys]


def expected(settings: LoaderSettings) -> Expected:
    """Generates the scenario the settings name."""
    directory = settings.reference_dir
    scenario = antwerp.generate(reference_dir=directory, seed=settings.scenario_seed,
                                scale=settings.scenario_scale)
    count = max(1, round(antwerp.REPORT_COUNT * min(settings.scenario_scale, 1.0)))
    reports = antwerp.generate_reports(reference_dir=directory,
                                       seed=settings.reports_seed, count=count)
    zones = reference.zones_in_province(reference.load_zones(directory=directory),
                                        antwerp.PROVINCE_NIS)
    return Expected(scenario=scenario, reports=reports, zones=zones)


async def load(settings: LoaderSettings) -> None:
    """Loads the scenario unless the platform holds it, then prints the summary."""
    started = time.monotonic()
    plan = expected(settings)
    scenario = plan.scenario
    bins, members = len(scenario.bins), len(scenario.members)
    say(f"Antwerp scenario: seed {settings.scenario_seed}, scale "
        f"{settings.scenario_scale:g}: {bins:,} BINs, {members:,} members, "
        f"{len(plan.reports)} reports")
    names = {m.nis: m.name_nl for zone in plan.zones for m in zone.municipalities}
    timeout = httpx.Timeout(settings.http_timeout_s)
    async with httpx.AsyncClient(timeout=timeout) as client:
        platform = Platform(settings, client)
        province = await platform.province()
        complete = province is not None and (
            province["active_bins"], province["active_members"]) == (bins, members)
        await import_reference(platform)
        bin_ids = await create_bins(platform, scenario)
        with ProcessPoolExecutor(max_workers=PROOF_WORKERS) as pool:
            present = await count_reports(platform, [z.code for z in plan.zones])
            remaining = plan.reports[present:]
            say(f"reports: {present} already at the tip line, sending {len(remaining)}")
            sending = asyncio.create_task(submit_reports(platform, remaining, pool))
            if complete:
                say("members: analytics already counts them all; nothing to import")
            else:
                outcome = await import_members(platform, scenario, bin_ids, names)
                say(f"members: {outcome['imported']:,} imported, "
                    f"{outcome['present']:,} were already there")
            await sending
        say(f"requests done in {time.monotonic() - started:.0f}s; waiting for the "
            "figures")
        await wait_for_coverage(platform, bins=bins, members=members)
        loaded_at = time.monotonic()
        schoten = plan.schoten_members
        alert_id = settings.load_alert_id()
        if await platform.alert_status(alert_id) is None:
            await wait_for_fanout(platform, members=len(schoten))
            await post_alert(platform, identifier=alert_id)
        else:
            say(f"alert {alert_id} was posted by an earlier load")
        status = await wait_for_handover(platform, alert_id, members=len(schoten),
                                         per_channel=expected_deliveries(schoten))
        await wait_for_reports(platform, total=len(plan.reports))
        say(f"loaded in {loaded_at - started:.0f}s (scenario visible in analytics); "
            f"alert handed over {time.monotonic() - loaded_at:.0f}s later")
        print(await summary(platform, plan, status))


async def replay(settings: LoaderSettings) -> None:
    """Posts a new Schoten alert and prints its delivery counts once handed over."""
    timeout = httpx.Timeout(settings.http_timeout_s)
    async with httpx.AsyncClient(timeout=timeout) as client:
        platform = Platform(settings, client)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        alert_id = await post_alert(platform, identifier=f"PZ-SCHOTEN-DEMO-{stamp}")
        status = await wait_for_settled(platform, alert_id)
        print(alert_lines(status))


async def wait_for_settled(platform: Platform, alert_id: str) -> dict[str, Any]:
    """Waits until nothing of an alert is pending, whoever the zone's members are now.

    A replay runs on a live system where members come and go: the alert's own
    status says whom it targets, and it has settled when no delivery is pending
    and two polls in a row see the same counts.
    """
    status: dict[str, Any] = {}
    seen: list[Any] = [None]

    async def probe() -> tuple[bool, str]:
        status.clear()
        status.update(await platform.alert_status(alert_id) or {})
        by_channel = status.get("by_channel", {})
        targeted = status.get("targeted_members", 0)
        pending = sum(counts.get("pending", 0) for counts in by_channel.values())
        counts = (targeted, sorted((c, tuple(sorted(n.items())))
                                   for c, n in by_channel.items()))
        settled = bool(targeted and by_channel) and pending == 0 and counts == seen[0]
        seen[0] = counts
        parts = ", ".join(
            f"{c} {n.get('handed_over', 0):,} handed over, {n.get('pending', 0):,} "
            "pending" for c, n in sorted(by_channel.items())
        )
        return settled, f"{targeted:,} members; {parts or 'not fanned out yet'}"

    await wait_until(f"alert {alert_id}", probe,
                     timeout_s=platform.settings.alert_timeout_s, every_s=1.0)
    return status


async def wait_for_reports(platform: Platform, *, total: int) -> None:
    """Waits until analytics counts every report of the province."""

    async def probe() -> tuple[bool, str]:
        counted = sum((await report_categories(platform)).values())
        return counted >= total, f"{counted} / {total} reports counted"

    await wait_until("analytics reports", probe,
                     timeout_s=platform.settings.wait_timeout_s, every_s=2.0)


async def report_categories(platform: Platform) -> Counter[str]:
    """Reports per category in the province, as analytics counts them."""
    url = f"{platform.settings.analytics_url}/v1/reports/weekly"
    weekly = (await platform.call("GET", url)).json()["zones"]
    counts: Counter[str] = Counter()
    for row in weekly:
        if row["province_nis"] == antwerp.PROVINCE_NIS:
            counts[row["category"]] += row["reports"]
    return counts


async def summary(platform: Platform, plan: Expected, status: dict[str, Any]) -> str:
    """The figures `make up` ends with, read back from the services."""
    province = await platform.province() or {}
    url = f"{platform.settings.analytics_url}/v1/coverage/zones"
    zones = (await platform.call("GET", url, params={
        "province": antwerp.PROVINCE_NIS})).json()["zones"]
    names = {z["zone"]: z["name"] for z in zones}
    categories = await report_categories(platform)
    full = province.get("fully_covered_zones", [])
    lines = [
        "",
        f"  Province of Antwerp (NIS {antwerp.PROVINCE_NIS}), from analytics:",
        f"    active BINs      {province.get('active_bins', 0):>8,}",
        f"    active members   {province.get('active_members', 0):>8,}",
        f"    sectors covered  {province.get('units_covered', 0):>8,} of "
        f"{province.get('units_total', 0):,} ({province.get('coverage_ratio', 0):.1%})",
        f"    fully covered    {len(full)} zones: "
        + ", ".join(f"{code} {names.get(code, '')}".strip() for code in full),
        "",
        alert_lines(status),
        "",
        "  Anonymous reports per category, from analytics:",
        *(f"    {category:<14} {count:>4}"
          for category, count in categories.most_common()),
        f"    {'total':<14} {sum(categories.values()):>4}",
    ]
    return "\n".join(lines)


def alert_lines(status: dict[str, Any]) -> str:
    """The delivery counts of an alert, one line per channel."""
    lines = [
        f"  Alert {status.get('alert_id')} ({status.get('zone')}, "
        f"{status.get('state')}), from messaging:",
        f"    targeted members {status.get('targeted_members', 0):>8,}",
        "    channel      handed over  pending  failed",
    ]
    for channel, counts in sorted(status.get("by_channel", {}).items()):
        lines.append(f"    {channel:<12} {counts.get('handed_over', 0):>11,}  "
                     f"{counts.get('pending', 0):>7,}  {counts.get('failed', 0):>6,}")
    first, last = status.get("seconds_to_first_handover"), status.get(
        "seconds_to_last_handover")
    if first is not None and last is not None:
        lines.append(f"    first hand-over after {first:.1f}s, last after {last:.1f}s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """`python -m scenario.load load|replay`."""
    parser = argparse.ArgumentParser(prog="python -m scenario.load")
    parser.add_argument("command", choices=("load", "replay"))
    args = parser.parse_args(argv)
    settings = LoaderSettings()
    command = load if args.command == "load" else replay
    try:
        asyncio.run(command(settings))
    except LoadError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
