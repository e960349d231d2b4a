"""Benchmark: does a large coordinator mail delay an urgent alert? It must not.

Starts its own messaging processes (gateway, API, outbox relay, fan-out worker, the
e-mail sender) on free ports, with a database, a Faust app id and topics of their
own, as scripts/bench_fanout.py does, and registers one zone with two BINs by
producing registry snapshots straight onto its registry topics: a large BIN
(`--mail-members`, 6,000 by default) whose coordinator sends a mail to all of it,
and a small one (`--alert-members`) that gets urgent e-mail alerts. The e-mail
provider is paced at its configured rate (EMAIL_RATE_PER_S, 200/s by default), so
the mail is in flight for half a minute.

It measures the urgent alerts' hand-over latency (from acceptance to the SMTP
server's receipt of each e-mail) first with nothing else going on, then while the
mail is in flight (`--repeats` alerts each), and prints and writes
bench-results/mail-priority.json: p50, p95 and last, and how many of the mail's
e-mails were still to go when each urgent alert was done. KAFKA_BOOTSTRAP_SERVERS
and MONGODB_URI select the broker and database, as for every script.

Usage: .venv/bin/python scripts/bench_mail_priority.py [--mail-members 6000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.bench_fanout import (  # noqa: E402
    delete_topics,
    free_port,
    percentile,
    population,
    registry_records,
    start,
    wait_http,
    write_results,
)
from services.messaging.settings import MessagingSettings  # noqa: E402
from shared import crypto  # noqa: E402
from shared.auth import issue_token  # noqa: E402
from shared.events import Municipality, ZoneSnapshot  # noqa: E402
from shared.kafka import ensure_topics, new_producer  # noqa: E402
from shared.settings import ServiceSettings  # noqa: E402

NIS = "11002"


class Stack:
    """The benchmark's own messaging processes and how to reach them."""

    def __init__(self, *, run_id: str, rate: str) -> None:
        self.run_id = run_id
        self.prefix = f"bench-{run_id}."
        self.dir = ROOT / ".run" / "bench" / f"mail-priority-{run_id}"
        gateway, smtp, http, faust = (free_port() for _ in range(4))
        self.gateway = f"http://127.0.0.1:{gateway}"
        self.api = f"http://127.0.0.1:{http}"
        self.faust = f"http://127.0.0.1:{faust}"
        self.env = {
            "MESSAGING_TOPIC_PREFIX": self.prefix,
            "REGISTRY_TOPIC_PREFIX": self.prefix,
            "MONGODB_DATABASE": f"bench_mail_{run_id}",
            "FAUST_APP_ID": f"bench-mail-{run_id}",
            "FAUST_WEB_PORT": str(faust),
            "FAUST_DATADIR": str(self.dir / "faust"),
            "SENDER_GROUP_PREFIX": f"bench-sender-{run_id}",
            "HTTP_PORT": str(http),
            "GATEWAY_HTTP_PORT": str(gateway),
            "GATEWAY_SMTP_PORT": str(smtp),
            "GATEWAY_STORE_DIR": str(self.dir / "gateway"),
            "GATEWAY_URL": self.gateway,
            "SMTP_PORT": str(smtp),
            "EMAIL_RATE_PER_S": rate,
            "LOG_LEVEL": "WARNING",
        }
        self.roles = ["gateway", "api", "relay", "fanout", "sender --channel email"]
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        """Start every role, its output in a log file of the run."""
        self.processes = [start(r, self.env, self.dir / "logs") for r in self.roles]

    def stop(self) -> None:
        """Stop every role, by force after 15 seconds."""
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


def received_times(stack: Stack, alert_id: str) -> list[float]:
    """When the SMTP server received each e-mail of an alert or mail (epoch s)."""
    response = httpx.get(
        f"{stack.gateway}/v1/messages", params={"alert_id": alert_id}, timeout=30
    )
    return sorted(
        datetime.fromisoformat(m["received_at"]).timestamp()
        for m in response.json()["messages"]
    )


def handed_over(stack: Stack, alert_id: str) -> int:
    """How many e-mails of a (small) alert the SMTP server holds."""
    return len(received_times(stack, alert_id))


def received_in_all(stack: Stack) -> int:
    """How many e-mails the SMTP server holds, cheaply (no records sent back)."""
    return httpx.get(f"{stack.gateway}/v1/counts", timeout=10).json()["count"]


def received_from_file(stack: Stack, alert_id: str) -> list[float]:
    """Receipt times of a large mail, read from the gateway's own file at the end."""
    times = []
    path = stack.dir / "gateway" / "received.jsonl"
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record.get("alert_id") == alert_id:
            times.append(datetime.fromisoformat(record["received_at"]).timestamp())
    return sorted(times)


def post(url: str, *, token: str, body: dict[str, Any]) -> dict[str, Any]:
    """Post with retries on 5xx (the shared database stalls now and then)."""
    for _ in range(5):
        response = httpx.post(
            url, json=body, timeout=30, headers={"Authorization": f"Bearer {token}"}
        )
        if response.status_code < 500:
            break
        time.sleep(2)
    if response.status_code not in (202, 409):
        raise SystemExit(f"refused: {response.status_code} {response.text}")
    return response.json()


async def urgent_alert(
    stack: Stack, *, zone: str, bin_id: str, members: int, secret: str
) -> dict[str, Any]:
    """Send one urgent e-mail alert to the small BIN; its hand-over latencies."""
    token = issue_token(secret=secret, role="zone", scope=zone)
    alert_id = f"urgent-{uuid.uuid4().hex[:10]}"
    post(
        f"{stack.api}/v1/alerts",
        token=token,
        body={
            "alert_id": alert_id,
            "category": "burglary",
            "urgency": "Immediate",
            "channels": ["email"],
            "target": {"kind": "bins", "values": [bin_id]},
            "texts": {"nl": {"headline": "Inbraak nu", "body": "Sluit alles af."}},
        },
    )
    status = httpx.get(
        f"{stack.api}/v1/alerts/{alert_id}",
        timeout=10,
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    accepted = datetime.fromisoformat(status["accepted_at"]).replace(tzinfo=UTC)
    deadline = time.monotonic() + 120
    while handed_over(stack, alert_id) < members:
        if time.monotonic() > deadline:
            raise SystemExit(f"urgent alert {alert_id} not handed over in 120 s")
        await asyncio.sleep(0.2)
    times = received_times(stack, alert_id)
    return {
        "alert_id": alert_id,
        "latencies": [t - accepted.timestamp() for t in times],
        "done_at": times[-1],
    }


def figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """p50, p95 and last of the pooled latencies, and each run's last."""
    pooled = sorted(value for run in runs for value in run["latencies"])
    return {
        "alerts": len(runs),
        "deliveries": len(pooled),
        "p50_s": round(statistics.median(pooled), 3),
        "p95_s": round(percentile(pooled, 0.95), 3),
        "last_s": round(pooled[-1], 3),
        "last_per_alert_s": [round(max(run["latencies"]), 3) for run in runs],
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Set up, measure without and with the mail in flight, tear down."""
    settings = ServiceSettings()
    ring = crypto.keyring_from_settings(
        settings.contacts_keys, settings.contacts_active_key_id
    )
    stack = Stack(run_id=uuid.uuid4().hex[:8], rate=args.email_rate)
    zone_code = f"benchmail{stack.run_id}"
    total = args.mail_members + args.alert_members
    bins, members = population(zone=zone_code, bins=2, members=total, seed=args.seed)
    big, small = bins[0].bin_id, bins[1].bin_id
    # Every member on e-mail; the first BIN gets the mail, the second the alerts.
    members = [
        m.model_copy(
            update={
                "bin_id": big if n < args.mail_members else small,
                "channels": ["email"],
            }
        )
        for n, m in enumerate(members)
    ]
    zone = ZoneSnapshot(
        zone=zone_code,
        name="Benchmark zone",
        province_nis="bench",
        province_name="Benchmark",
        units=[b.territory[0] for b in bins],
        municipalities=[Municipality(nis=NIS, name_nl="Benchmark")],
        version=1,
    )
    own = MessagingSettings(
        messaging_topic_prefix=stack.prefix, registry_topic_prefix=stack.prefix
    )
    await ensure_topics(settings, topics=own.prefixed_topics())
    stack.start()
    print(f"logs in {(stack.dir / 'logs').relative_to(ROOT)}", flush=True)
    producer = new_producer(settings, linger_ms=20, max_batch_size=1024 * 1024)
    await producer.start()
    try:
        from scripts.bench_fanout import produce_all

        await produce_all(
            producer,
            registry_records(
                zone=zone, bins=bins, members=members, ring=ring, prefix=stack.prefix
            ),
        )
    finally:
        await producer.stop()
    try:
        wait_http(f"{stack.gateway}/healthz")
        wait_http(f"{stack.api}/readyz", timeout_s=args.setup_timeout)
        view = f"{stack.faust}/v1/fanout/zones/{zone_code}/"
        deadline = time.monotonic() + args.setup_timeout
        while True:
            try:
                known = httpx.get(view, timeout=5).json()["members"]
            except (httpx.HTTPError, KeyError):
                known = 0
            if known >= total:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"the fan-out knows {known} members after the timeout")
            await asyncio.sleep(1)
        print(f"fan-out knows {total} members; {args.email_rate} e-mails/s", flush=True)
        await asyncio.sleep(3)
        alert = {
            "stack": stack,
            "zone": zone_code,
            "bin_id": small,
            "members": args.alert_members,
            "secret": settings.jwt_secret,
        }
        alone = []
        for _ in range(args.repeats):
            alone.append(await urgent_alert(**alert))  # type: ignore[arg-type]
            await asyncio.sleep(1)
        print(f"alone: {figures(alone)}", flush=True)

        coordinator = issue_token(
            secret=settings.jwt_secret, role="coordinator", scope=big
        )
        mail = post(
            f"{stack.api}/v1/mail",
            token=coordinator,
            body={
                "texts": {"nl": {"subject": "Buurtfeest", "body": "Iedereen welkom."}}
            },
        )
        mail_id = mail["mail_id"]
        mail_posted = time.time()
        before = received_in_all(stack)
        while received_in_all(stack) - before < min(200, args.mail_members):
            if time.time() - mail_posted > 120:
                raise SystemExit("the mail did not start within 120 s")
            await asyncio.sleep(0.2)
        print("mail in flight; urgent alerts now", flush=True)
        during = []
        for _ in range(args.repeats):
            during.append(await urgent_alert(**alert))  # type: ignore[arg-type]
            await asyncio.sleep(1)
        print(f"with the mail in flight: {figures(during)}", flush=True)
        deadline = time.monotonic() + args.timeout
        goal = before + args.mail_members + args.repeats * args.alert_members
        while received_in_all(stack) < goal and time.monotonic() < deadline:
            await asyncio.sleep(1)
        mail_times = received_from_file(stack, mail_id)
        left = [
            args.mail_members - sum(1 for t in mail_times if t <= run["done_at"])
            for run in during
        ]
        return {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine_cores": os.cpu_count(),
            "email_rate_per_s": float(args.email_rate),
            "mail_members": args.mail_members,
            "urgent_alert_members": args.alert_members,
            "urgent_handover_alone": figures(alone),
            "urgent_handover_with_mail_in_flight": figures(during),
            "mail_emails_still_to_go_when_each_urgent_alert_was_done": left,
            "mail_handed_over": len(mail_times),
            "mail_last_handover_after_post_s": (
                round(mail_times[-1] - mail_posted, 1) if mail_times else None
            ),
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
    finally:
        stack.stop()
        if not args.keep:
            await delete_topics(
                settings, prefixes=[stack.prefix, stack.env["FAUST_APP_ID"]]
            )


def main() -> None:
    """Parse the options, run the benchmark, print and store the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mail-members", type=int, default=6000)
    parser.add_argument("--alert-members", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--email-rate", default="200")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait")
    parser.add_argument("--setup-timeout", type=float, default=600)
    parser.add_argument(
        "--keep", action="store_true", help="leave the benchmark's own topics in place"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench-results" / "mail-priority.json"
    )
    args = parser.parse_args()
    write_results(asyncio.run(run(args)), out=args.out, width=58)


if __name__ == "__main__":
    main()
