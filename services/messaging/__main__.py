"""Runs one role of the messaging service: `python -m services.messaging api`."""

from __future__ import annotations

from services.messaging.settings import get_settings
from shared.http import serve
from shared.service import main


def api() -> None:
    """Serves the HTTP API."""
    from services.messaging.app import app

    settings = get_settings()
    serve(app, host=settings.http_host, port=settings.http_port)


if __name__ == "__main__":
    main(service="messaging", settings=get_settings(), roles={"api": api})
