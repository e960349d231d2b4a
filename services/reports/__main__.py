"""Runs one role of the reports service: `python -m services.reports api`."""

from __future__ import annotations

from services.reports.settings import get_settings
from shared.http import serve
from shared.service import main


def api() -> None:
    """Serves the HTTP API."""
    from services.reports.app import app

    settings = get_settings()
    serve(app, host=settings.http_host, port=settings.http_port)


if __name__ == "__main__":
    main(service="reports", settings=get_settings(), roles={"api": api})
