"""Readiness follows the broker: 503 while it is down, 200 again once it is back.

Named to run last: it stops and restarts the shared local broker.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import ROOT, free_port, wait_http

# The broker scripts/kafka.sh runs for this session: the demo's, or the tests' own
# (scripts/test.sh sets KAFKA_PORT and KAFKA_DATA_DIR).
PORT = os.environ.get("KAFKA_PORT", "9092")
LOCAL = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{PORT}") in (
    f"127.0.0.1:{PORT}",
    f"localhost:{PORT}",
)


@pytest.mark.skipif(not LOCAL, reason="only the project's own local broker is stopped")
def test_readyz_says_503_without_the_broker_and_recovers(start_process) -> None:
    port = free_port()
    start_process("services.analytics", "api", HTTP_PORT=str(port))
    url = f"http://127.0.0.1:{port}/readyz"
    wait_http(url, status=200)
    subprocess.run([ROOT / "scripts" / "kafka.sh", "stop"], check=True)
    try:
        down = wait_http(url, status=503, timeout_s=30)
        assert down.headers["content-type"] == "application/problem+json"
        assert "kafka unreachable" in down.json()["detail"]
    finally:
        subprocess.run([ROOT / "scripts" / "kafka.sh", "start"], check=True)
    wait_http(url, status=200, timeout_s=60)
