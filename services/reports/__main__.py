"""Runs one role of the reports service: `python -m services.reports api|relay`."""

from __future__ import annotations

from services.reports.settings import get_settings
from shared.http import serve
from shared.service import main


def api() -> None:
    """Serves the HTTP API (the form, the JSON API and the zones' triage API)."""
    from services.reports.app import asgi

    settings = get_settings()
    # The identity-scrubbing wrapper is served, not the bare FastAPI app.
    serve(asgi, host=settings.http_host, port=settings.http_port)  # type: ignore


def relay() -> None:
    """Relays the outbox, learns zones from the registry and purges old reports."""
    from services.reports.streams import run

    run(get_settings())


if __name__ == "__main__":
    main(service="reports", settings=get_settings(), roles={"api": api, "relay": relay})
