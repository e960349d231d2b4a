"""Creates the catalogue's topics on the broker: `python -m shared.topics`."""

from __future__ import annotations

import asyncio
import logging

from shared.kafka import ensure_topics
from shared.logs import configure_logging
from shared.settings import ServiceSettings

log = logging.getLogger("bin.topics")


def main() -> None:
    """Creates every missing topic of the catalogue, idempotently."""
    configure_logging(level="INFO", service="topics")
    created = asyncio.run(ensure_topics(ServiceSettings()))
    log.info("topics ready", extra={"count": len(created)})


if __name__ == "__main__":
    main()
