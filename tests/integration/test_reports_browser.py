"""The tip line's form in a real headless Chromium: report in Dutch, then follow up."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import sync_playwright

from shared.mongo import new_client
from shared.settings import ServiceSettings
from tests.builders import reports as build
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, free_port, unique, wait_http


pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason="Debian's chromium is not installed (apt-get install -y chromium)",
)


@pytest.fixture
async def service(platform: ServiceSettings, start_process: object) -> Iterator[dict]:
    zone, place = unique("zb"), build.place_name()
    topic = unique("test-reports-zones")
    await build.publish_zones(platform, topic=topic, zones={zone: [place]})
    port, database = free_port(), unique("test_reports_browser")
    # Without a solved proof of work a form would have to wait ten minutes: only the
    # browser's own solution gets the report in.
    env = build.service_env(
        port=port, database=database, zones_topic=topic, NOJS_MIN_AGE_S="600"
    )
    start_process("services.reports", "api", **env)  # type: ignore[operator]
    start_process("services.reports", "relay", **env)  # type: ignore[operator]
    await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/readyz", timeout_s=60)
    client = new_client(platform)
    for _ in range(150):
        if await client[database].zones.count_documents({}):
            break
        await asyncio.sleep(0.2)
    yield {"url": f"http://127.0.0.1:{port}", "place": place, "db": client[database]}
    await client.drop_database(database)
    await client.close()


def _report_and_follow_up(url: str, place: str) -> tuple[str, str, list[str]]:
    outside: list[str] = []
    visited: list[str] = []

    def seen(request: object) -> None:
        visited.append(request.url)  # type: ignore[attr-defined]
        if not request.url.startswith(url):  # type: ignore[attr-defined]
            outside.append(request.url)  # type: ignore[attr-defined]

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(locale="nl-BE")
        page.on("request", seen)
        page.goto(f"{url}/")
        assert page.locator("html").get_attribute("lang") == "nl"
        page.check("#category-plantation")
        page.fill("#place", place)
        page.fill("#street", "Stationsstraat")
        page.check("#signal-smell")
        page.check("#signal-ventilation_noise")
        page.fill("#text", "Elke nacht een zoemend geluid en een sterke geur.")
        page.wait_for_function(
            "document.querySelector('input[name=nonce]').value !== ''", timeout=30000
        )
        page.click("button[type=submit]")
        page.wait_for_selector("p.code", timeout=30000)
        heading = page.inner_text("h1")
        code = page.inner_text("p.code").strip()
        assert page.context.cookies() == []
        page.goto(f"{url}/followup?lang=nl")
        page.fill("#receipt_code", code)
        page.wait_for_function(
            "document.querySelector('input[name=nonce]').value !== ''", timeout=30000
        )
        page.click("button[type=submit]")
        page.wait_for_selector("dl", timeout=30000)
        status = page.inner_text("dl")
        bare = code.replace("-", "")
        assert not any(code in u or bare in u for u in [*visited, page.url]), (
            "the receipt code never appears in a URL"
        )
        assert page.context.cookies() == []
        browser.close()
    return heading, code + "\n" + status, outside


async def test_a_dutch_report_is_sent_and_followed_up_in_chromium(
    service: dict,
) -> None:
    heading, seen, outside = await asyncio.to_thread(
        _report_and_follow_up, service["url"], service["place"]
    )
    assert heading == "Bedankt, uw melding is ontvangen"
    assert re.match(r"^[0-9A-Z]{4}(-[0-9A-Z]{4}){6}\n", seen)
    assert "Ontvangen" in seen and "Cannabisplantage" in seen
    assert outside == [], "the form loads nothing from other hosts"
    stored = await service["db"].reports.find_one({})
    assert stored["signals"] == ["smell", "ventilation_noise"]
    assert stored["location"]["street"] == "Stationsstraat"
