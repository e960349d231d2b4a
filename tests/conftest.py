"""Fixtures shared by every kind of test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parent.parent
# Debian's Chromium (scripts/chromium.sh installs it) and the flags it needs here: no
# sandbox as root, and none of its background calls to hosts this machine cannot reach.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unique(prefix: str) -> str:
    """A name no other test uses: test runs share one broker and one database."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def base_settings() -> ServiceSettings:
    """The settings of the local stack the tests run against."""
    return ServiceSettings()


class ServiceProcess:
    """One role of a service run as a real process, as `make up` runs it."""

    def __init__(self, *, module: str, role: str, env: dict[str, str], log: Path) -> None:
        self.module, self.role, self.env, self.log = module, role, env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        """Starts the process; its output goes to a log file under .run/logs/tests."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as handle:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.role.split()],
                cwd=ROOT,
                env={**os.environ, **self.env},
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        return self

    def kill(self) -> None:
        """Kills the process at once, as a crash would."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        """Stops the process gracefully, then by force."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def logs(self) -> str:
        """Everything the process has written so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def wait_http(url: str, *, status: int = 200, timeout_s: float = 60) -> httpx.Response:
    """Polls a URL until it answers with `status`."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=3)
            if response.status_code == status:
                return response
            last = response.status_code
        except httpx.HTTPError as error:
            last = type(error).__name__
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer {status} within {timeout_s}s: {last}")


@pytest.fixture
def start_process(tmp_path: Path) -> Iterator[object]:
    """Starts service roles as real processes and stops them after the test."""
    started: list[ServiceProcess] = []

    def _start(module: str, role: str, **env: str) -> ServiceProcess:
        log = ROOT / ".run" / "logs" / "tests" / f"{unique(role)}.log"
        process = ServiceProcess(module=module, role=role, env=env, log=log).start()
        started.append(process)
        return process

    yield _start
    for process in started:
        process.stop()
