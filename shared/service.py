"""Start-up common to every service process: logging, tracing, the role to run."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Callable

from shared.logs import configure_logging
from shared.settings import ServiceSettings
from shared.tracing import configure_tracing

log = logging.getLogger("bin.service")


def stop_on_signals() -> asyncio.Event:
    """An event that SIGTERM or SIGINT sets; call it inside the running loop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


def main(
    *, service: str, settings: ServiceSettings, roles: dict[str, Callable[..., None]]
) -> None:
    """Parse `python -m services.<service> <role> [options]` and run that role."""
    parser = argparse.ArgumentParser(prog=f"python -m services.{service}")
    parser.add_argument("role", choices=sorted(roles))
    parser.add_argument("--channel", help="the channel of a sender role")
    args = parser.parse_args()
    configure_logging(level=settings.log_level, service=service)
    configure_tracing(
        service=f"{service}-{args.role}", otlp_endpoint=settings.otel_exporter_otlp_endpoint
    )
    log.info("starting", extra={"role": args.role})
    run = roles[args.role]
    if args.channel is not None:
        run(channel=args.channel)
    else:
        run()
