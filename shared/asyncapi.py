"""Writes the JSON Schema of every event and an AsyncAPI 3 document of the catalogue.

`python -m shared.asyncapi <folder>` (`make docs`): one `<event type>.schema.json`
per event model and `asyncapi.json`, so that a consumer outside the project can
subscribe to a topic without reading this code.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from shared import catalogue
from shared.events import BY_NAME, EVENT_MODELS, Event

ASYNCAPI_VERSION = "3.0.0"
LOCAL_BROKER = "127.0.0.1:9092"

# The CloudEvents attributes every record carries as headers (binary mode).
CE_HEADERS: dict[str, Any] = {
    "type": "object",
    "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time"],
    "properties": {
        "ce_specversion": {"type": "string", "const": "1.0"},
        "ce_id": {"type": "string", "description": "Unique per event."},
        "ce_source": {"type": "string", "description": "The producing service."},
        "ce_type": {"type": "string", "description": "The event type, versioned."},
        "ce_time": {"type": "string", "format": "date-time"},
        "ce_subject": {"type": "string"},
        "content-type": {"type": "string", "const": "application/json"},
        "traceparent": {"type": "string", "description": "W3C trace context."},
    },
}


def event_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of each event model, by its event type."""
    return {model.EVENT_TYPE: model.model_json_schema() for model in EVENT_MODELS}


def _messages(
    topic: catalogue.Topic, models: dict[str, type[Event]]
) -> dict[str, Any]:
    """The topic's main message as `event`, and each other one under its name."""
    messages = {"event": _message(topic, topic.value, models)}
    for value in topic.also:
        messages[value] = _message(topic, value, models)
    return messages


def _message(
    topic: catalogue.Topic, value: str, models: dict[str, type[Event]]
) -> dict[str, Any]:
    model = models.get(value)
    message: dict[str, Any] = {
        "name": value.replace(" ", "-"),
        "contentType": "application/json",
        "headers": CE_HEADERS,
        "description": f"Key: {topic.key}.",
    }
    if model is not None:
        message["title"] = model.EVENT_TYPE
        message["payload"] = {"$ref": f"{model.EVENT_TYPE}.schema.json"}
    else:
        message["payload"] = {"description": value}
    return message


def document() -> dict[str, Any]:
    """The AsyncAPI 3 document of every topic in the catalogue."""
    models = BY_NAME
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in catalogue.all_topics():
        channel_id = topic.name.replace(".", "_")
        channels[channel_id] = {
            "address": topic.name,
            "description": topic.description,
            "messages": _messages(topic, models),
            "bindings": {
                "kafka": {
                    "partitions": topic.partitions,
                    "topicConfiguration": {
                        "cleanup.policy": [topic.cleanup_policy],
                        **{k: v for k, v in topic.configs.items()},
                    },
                }
            },
        }
        ref = {"$ref": f"#/channels/{channel_id}"}
        operations[f"publish_{channel_id}"] = {
            "action": "send",
            "channel": ref,
            "summary": f"Written by {topic.producer}.",
        }
        for consumer in topic.consumers:
            operations[f"{consumer}_receives_{channel_id}"] = {
                "action": "receive",
                "channel": ref,
                "summary": f"Read by {consumer}.",
            }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "BIN platform events",
            "version": "1.0.0",
            "description": "Every Kafka topic of the BIN platform. Records are "
            "CloudEvents 1.0 in the Kafka binding's binary mode: `ce_*` headers "
            "and a JSON body.",
        },
        "servers": {
            "local": {"host": LOCAL_BROKER, "protocol": "kafka"},
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
    }


def write_docs(folder: Path) -> list[Path]:
    """Writes the schemas and the AsyncAPI document into a folder; returns the files."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type, schema in event_schemas().items():
        path = folder / f"{event_type}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    path = folder / "asyncapi.json"
    path.write_text(json.dumps(document(), indent=2) + "\n")
    written.append(path)
    return written


def _main() -> None:
    parser = argparse.ArgumentParser(prog="python -m shared.asyncapi")
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    written = write_docs(args.folder)
    sys.stdout.write(f"wrote {len(written)} files to {args.folder}\n")


if __name__ == "__main__":
    _main()
