"""The Antwerp province end to end: the scenario loaded into the whole platform.

Every role of every service runs as a real process, as `make up` runs them, on
free ports, on a Kafka broker and a FerretDB server of their own (started by
scripts/kafka.sh and scripts/ferretdb.sh): the scenario uses the province's real
zone codes, which other tests and the running stack also publish on the shared
broker, so figures counted there could never be exact; and a bulk load must not
slow down or wedge the server other tests use. The loader is `scripts/demo.sh
load`, the command `make up` runs.

Scale: `E2E_SCENARIO_SCALE` (default 0.1: 61 BINs, 8,749 members and 18 reports,
about two minutes of loading on the 2-core development machine). The shape does not
change with scale: 22 zones, exactly ipz21, ipz10 and ipz9 fully covered, every
Schoten member reached on every channel they chose. `E2E_SCENARIO_SCALE=1` runs
the province at full size (see README, "The Antwerp demonstration", for its time).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scenario import antwerp
from scenario.load import LoaderSettings, expected, expected_deliveries
from shared.auth import issue_token
from shared.settings import ServiceSettings
from tests.conftest import ROOT, ServiceProcess, free_port, unique, wait_http

SCALE = float(os.environ.get("E2E_SCENARIO_SCALE", "0.1"))
FULLY_COVERED = {"ipz21", "ipz10", "ipz9"}
LOGS = ROOT / ".run" / "logs" / "tests"


class Private:
    """A Kafka broker or FerretDB server of the test's own, run by its script."""

    def __init__(self, script: str, directory: Path, **env: str) -> None:
        self.script = ROOT / "scripts" / script
        self.env = {**os.environ, **env}
        self.directory = directory

    @classmethod
    def kafka(cls, directory: Path) -> Private:
        """A single-node broker on a free port (its controller on the next one)."""
        port = free_port()
        while not _port_free(port + 1):
            port = free_port()
        return cls("kafka.sh", directory, KAFKA_PORT=str(port),
                   KAFKA_DATA_DIR=str(directory),
                   KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}")

    @classmethod
    def ferretdb(cls, directory: Path) -> Private:
        """A FerretDB server with its own SQLite files on a free port."""
        port = free_port()
        return cls("ferretdb.sh", directory, FERRETDB_PORT=str(port),
                   FERRETDB_DATA_DIR=str(directory),
                   MONGODB_URI=f"mongodb://127.0.0.1:{port}/")

    def run(self, command: str) -> None:
        """Runs the script's `start` or `stop`."""
        subprocess.run([str(self.script), command], env=self.env, check=True,
                       timeout=180, capture_output=True)


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Platform:
    """The twelve processes of the platform and the addresses they answer on."""

    def __init__(self, *, bootstrap: str, mongodb_uri: str, directory: Path) -> None:
        run = unique("e2e").replace("-", "_")
        self.common = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "MONGODB_URI": mongodb_uri}
        self.ports = {name: free_port() for name in (
            "registry", "messaging", "reports", "analytics", "fanout", "gateway",
            "smtp", "analytics_worker")}
        self.env = {
            "registry": {"MONGODB_DATABASE": f"{run}_registry",
                         "HTTP_PORT": str(self.ports["registry"])},
            "messaging": {
                "MONGODB_DATABASE": f"{run}_messaging",
                "HTTP_PORT": str(self.ports["messaging"]),
                "FAUST_APP_ID": f"{run}-fanout",
                "FAUST_WEB_PORT": str(self.ports["fanout"]),
                "FAUST_DATADIR": str(directory / "faust"),
                "GATEWAY_HTTP_PORT": str(self.ports["gateway"]),
                "GATEWAY_SMTP_PORT": str(self.ports["smtp"]),
                "GATEWAY_STORE_DIR": str(directory / "gateway"),
                "GATEWAY_URL": f"http://127.0.0.1:{self.ports['gateway']}",
                "SMTP_PORT": str(self.ports["smtp"]),
            },
            "reports": {"MONGODB_DATABASE": f"{run}_reports",
                        "HTTP_PORT": str(self.ports["reports"])},
            "analytics": {
                "HTTP_PORT": str(self.ports["analytics"]),
                "FAUST_APP_ID": f"{run}-analytics",
                "FAUST_DATA_ROOT": str(directory / "faust"),
                "WORKER_METRICS_PORT": str(self.ports["analytics_worker"]),
            },
        }
        self.processes: list[ServiceProcess] = []

    def url(self, name: str) -> str:
        """Where one HTTP endpoint answers."""
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self) -> None:
        """Starts every role as scripts/stack.sh does; waits until all are ready."""
        roles = [
            ("registry", "api"), ("registry", "relay"), ("messaging", "gateway"),
            ("messaging", "api"), ("messaging", "relay"), ("messaging", "fanout"),
            ("messaging", "sender --channel all"), ("messaging", "status"),
            ("reports", "api"), ("reports", "relay"), ("analytics", "api"),
            ("analytics", "worker"),
        ]
        for service, role in roles:
            log = LOGS / f"{unique(f'e2e-{service}-{role.split()[0]}')}.log"
            env = {**self.common, **self.env[service]}
            self.processes.append(ServiceProcess(
                module=f"services.{service}", role=role, env=env, log=log).start())
        for service in ("registry", "messaging", "reports", "analytics"):
            wait_http(f"{self.url(service)}/readyz", timeout_s=180)
        wait_http(f"{self.url('fanout')}/readyz", timeout_s=180)

    def loader_env(self) -> dict[str, str]:
        """The environment `scripts/demo.sh load` gets to reach this platform."""
        return {
            **os.environ, **self.common,
            "REGISTRY_URL": self.url("registry"),
            "MESSAGING_URL": self.url("messaging"),
            "REPORTS_URL": self.url("reports"),
            "ANALYTICS_URL": self.url("analytics"),
            "FANOUT_URL": self.url("fanout"),
            "SCENARIO_SCALE": str(SCALE),
        }

    def stop(self) -> None:
        """Stops every process."""
        for process in reversed(self.processes):
            process.stop()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The whole platform on a broker and a database server of its own."""
    directory = tmp_path_factory.mktemp("antwerp")
    broker = Private.kafka(directory / "kafka")
    database = Private.ferretdb(directory / "ferretdb")
    broker.run("start")
    database.run("start")
    running = Platform(bootstrap=broker.env["KAFKA_BOOTSTRAP_SERVERS"],
                       mongodb_uri=database.env["MONGODB_URI"], directory=directory)
    try:
        subprocess.run([sys.executable, "-m", "shared.topics"], cwd=ROOT, check=True,
                       env={**os.environ, **running.common}, timeout=120,
                       capture_output=True)
        running.start()
        yield running
    finally:
        running.stop()
        database.run("stop")
        broker.run("stop")


@pytest.fixture(scope="module")
def loaded(platform: Platform) -> str:
    """Runs the loader as `make up` does; its output."""
    started = time.monotonic()
    log = LOGS / f"{unique('e2e-loader')}.log"
    with log.open("w") as handle:
        done = subprocess.run(
            [str(ROOT / "scripts" / "demo.sh"), "load"], cwd=ROOT,
            env=platform.loader_env(), stdout=handle, stderr=subprocess.STDOUT,
            timeout=1500,
        )
    output = log.read_text()
    assert done.returncode == 0, output[-3000:]
    print(f"loaded at scale {SCALE} in {time.monotonic() - started:.0f}s")
    return output


@pytest.mark.timeout(1800)
def test_the_province_shows_the_scenario_and_schoten_gets_its_alert(
    platform: Platform, loaded: str
) -> None:
    plan = expected(LoaderSettings(scenario_scale=SCALE))
    bins, members = antwerp.expected_totals(SCALE)
    analytics = platform.url("analytics")

    province = httpx.get(f"{analytics}/v1/coverage/provinces/10000", timeout=10).json()
    assert (province["active_bins"], province["active_members"]) == (bins, members)
    assert set(province["fully_covered_zones"]) == FULLY_COVERED
    zones = httpx.get(f"{analytics}/v1/coverage/zones", params={"province": "10000"},
                      timeout=10).json()["zones"]
    assert len(zones) == 22
    assert {z["zone"] for z in zones if z["fully_covered"]} == FULLY_COVERED
    assert all(z["units_covered"] < z["units_total"] for z in zones
               if z["zone"] not in FULLY_COVERED)

    schoten = plan.schoten_members
    wanted = expected_deliveries(schoten)
    alert_id = LoaderSettings().load_alert_id()
    token = issue_token(secret=ServiceSettings().jwt_secret, role="zone", scope="ipz10")
    status = httpx.get(f"{platform.url('messaging')}/v1/alerts/{alert_id}",
                       headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    assert status["targeted_members"] == len(schoten)
    assert {c: n["handed_over"] for c, n in status["by_channel"].items()} == wanted
    assert all(n["pending"] == n["failed"] == 0 for n in status["by_channel"].values())
    arrived = httpx.get(f"{platform.url('gateway')}/v1/messages",
                        params={"alert_id": alert_id}, timeout=30).json()["messages"]
    assert Counter(message["channel"] for message in arrived) == Counter(wanted)

    weekly = httpx.get(f"{analytics}/v1/reports/weekly", timeout=10).json()["zones"]
    counted: Counter[str] = Counter()
    for row in weekly:
        counted[row["category"]] += row["reports"]
    assert counted == Counter(report.category for report in plan.reports)
    assert "already" not in loaded.splitlines()[-1]
