"""HTTP API of the analytics service: coverage, live stream, CSV, figures, dashboard."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from services.analytics import domain
from services.analytics.settings import get_settings
from services.analytics.store import Views, follow_kafka_topics
from shared.http import Problem, create_app
from shared.kafka import kafka_unreachable

log = logging.getLogger("bin.analytics.http")
settings = get_settings()
views = Views()
DASHBOARD = (Path(__file__).parent / "dashboard.html").read_text(encoding="utf-8")
HEARTBEAT_S = 15.0
_kafka_checked: list[tuple[float, str]] = [(0.0, "")]


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    """Reads the analytics topics into memory for the app's lifetime."""
    stop = asyncio.Event()
    task = asyncio.create_task(_follow_until_stopped(stop))
    yield
    stop.set()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(task, 10)


async def _follow_until_stopped(stop: asyncio.Event) -> None:
    """Follows the topics, starting again after a failure (the broker may be away)."""
    while not stop.is_set():
        try:
            await follow_kafka_topics(settings, views=views, stop=stop)
        except Exception as error:  # noqa: BLE001 - any failure is retried
            log.error("RETRY following the analytics topics", exc_info=error)
            await asyncio.sleep(2.0)


async def kafka_problem() -> str:
    """Why Kafka is unreachable (checked at most once a second), or an empty string."""
    checked_at, reason = _kafka_checked[0]
    if time.monotonic() - checked_at > 1.0:
        reason = await kafka_unreachable(settings)
        _kafka_checked[0] = (time.monotonic(), reason)
    return reason


async def coverage_problem() -> str:
    """Not ready until the coverage topics were read up to their end at start-up.

    Analytics has no database: this replaces the database check of other services.
    """
    return "" if views.caught_up else "coverage topics not read up to their end yet"


app = create_app(
    title="BIN analytics",
    description="Live coverage of police zones by BINs: zones, provinces, country.",
    checks=[kafka_problem, coverage_problem],
    lifespan=lifespan,
)


def _zones(province: str | None) -> list[dict[str, Any]]:
    records = views.zones.values()
    return sorted(
        (r for r in records if province is None or r["province_nis"] == province),
        key=lambda r: r["zone"],
    )


def _csv(columns: tuple[str, ...], rows: list[dict[str, Any]], name: str) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            ";".join(v) if isinstance(v := row.get(c), list) else v for c in columns
        )
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@app.get("/v1/coverage/zones")
async def list_zones(province: str | None = None) -> dict[str, Any]:
    """Lists the coverage of every zone, or of the zones of one province."""
    return {"zones": _zones(province)}


@app.get("/v1/coverage/zones.csv")
async def zones_csv(province: str | None = None) -> Response:
    """Exports the coverage of the zones as CSV for study services."""
    return _csv(domain.ZONE_CSV_COLUMNS, _zones(province), "coverage-zones.csv")


@app.get("/v1/coverage/zones/{zone}")
async def get_zone(zone: str) -> dict[str, Any]:
    """Returns the coverage of one zone."""
    record = views.zones.get(zone)
    if record is None:
        raise Problem(404, "Unknown zone", "No coverage is known for this zone.")
    return record


@app.get("/v1/coverage/zones/{zone}/bins")
async def list_zone_bins(zone: str) -> dict[str, Any]:
    """Lists the active BINs of a zone; member counts below the threshold show `<N`."""
    if not views.registry_caught_up:
        raise Problem(
            503,
            "Not ready",
            "The registry is still being read; try again shortly.",
            headers={"Retry-After": "5"},
        )
    if zone not in views.zones:
        raise Problem(404, "Unknown zone", "No coverage is known for this zone.")
    threshold = settings.small_count_threshold
    return {
        "zone": zone,
        "bins": views.registry.bins_of_zone(zone, threshold=threshold),
        "small_count_threshold": threshold,
    }


@app.get("/v1/coverage/provinces")
async def list_provinces() -> dict[str, Any]:
    """Lists the coverage of every province and of the country (`BE`)."""
    return {"provinces": [views.areas[k] for k in sorted(views.areas)]}


@app.get("/v1/coverage/provinces.csv")
async def provinces_csv() -> Response:
    """Exports the coverage of the provinces and the country as CSV."""
    rows = [views.areas[k] for k in sorted(views.areas)]
    return _csv(domain.AREA_CSV_COLUMNS, rows, "coverage-provinces.csv")


@app.get("/v1/coverage/provinces/{nis}")
async def get_province(nis: str) -> dict[str, Any]:
    """Returns the coverage of one province by NIS code, or of the country (`BE`)."""
    record = views.areas.get(nis)
    if record is None:
        raise Problem(404, "Unknown province", "No coverage is known for this area.")
    return record


@app.get("/v1/coverage/stream")
async def coverage_stream(request: Request, province: str | None = None) -> Response:
    """Streams coverage changes as Server-Sent Events (`zone` and `area` events)."""
    queue = views.follow()

    async def changes() -> AsyncIterator[str]:
        try:
            yield ": following coverage changes\n\n"
            while not await request.is_disconnected():
                try:
                    kind, record = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    yield ": heartbeat\n\n"
                    continue
                elsewhere = record.get("province_nis") != province
                if province and kind == "zone" and elsewhere:
                    continue
                yield f"event: {kind}\ndata: {json.dumps(record)}\n\n"
        finally:
            views.unfollow(queue)

    return StreamingResponse(
        changes(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@app.get("/v1/reports/weekly")
async def reports_weekly(zone: str | None = None) -> dict[str, Any]:
    """Anonymous reports per zone, category and week, per municipality, and outcomes.

    Zone counts are exact; municipality counts below the threshold show as `<N`.
    """
    threshold = settings.small_count_threshold
    return {
        "zones": views.reports.weekly(zone=zone),
        "municipalities": views.reports.municipalities(threshold=threshold),
        "outcomes": views.reports.outcomes(),
        "small_count_threshold": threshold,
    }


@app.get("/v1/deliveries")
async def deliveries(zone: str | None = None) -> dict[str, Any]:
    """Alerts per zone; deliveries per channel and status, with hand-over times."""
    return views.deliveries.summary(zone=zone)


@app.get("/", response_class=HTMLResponse)
async def dashboard() -> HTMLResponse:
    """The live coverage dashboard of one province's zones."""
    page = DASHBOARD.replace("__DEFAULT_PROVINCE__", settings.dashboard_province)
    return HTMLResponse(page)
