"""JSON log lines: time, level, logger, a fixed message and identifier fields."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

# Only these extra fields are written: identifiers, never personal data.
FIELDS = (
    "event_id",
    "event_type",
    "alert_id",
    "bin_id",
    "member_ref",
    "report_id",
    "zone",
    "topic",
    "partition",
    "offset",
    "trace_id",
    "channel",
    "status",
    "reason",
    "count",
    "seconds",
    "attempt",
    "service",
    "role",
    "url",
    "path",
    "http_status",
    "method",
)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            if name in record.__dict__:
                line[name] = record.__dict__[name]
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__
        return json.dumps(line, default=str)


def configure_logging(*, level: str = "INFO", service: str = "") -> None:
    """Send every log record of the process to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Libraries that log full request lines or payloads stay quiet.
    for noisy in ("uvicorn.access", "aiokafka", "kafka", "pymongo", "faust", "mode"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if service:
        handler.addFilter(_ServiceField(service))


class _ServiceField(logging.Filter):
    """Stamps every record with the name of the service that wrote it."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        return True
