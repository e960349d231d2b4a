"""Runs one role of the analytics service: `python -m services.analytics api|worker`."""

from __future__ import annotations

from services.analytics.settings import get_settings
from shared.http import serve
from shared.service import main


def api() -> None:
    """Serves the HTTP API, the live stream and the dashboard."""
    from services.analytics.app import app

    settings = get_settings()
    serve(app, host=settings.http_host, port=settings.http_port)


def worker() -> None:
    """Runs the Faust coverage worker."""
    from services.analytics.streams import run_worker

    run_worker(get_settings())


if __name__ == "__main__":
    main(
        service="analytics",
        settings=get_settings(),
        roles={"api": api, "worker": worker},
    )
