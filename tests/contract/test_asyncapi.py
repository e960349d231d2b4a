"""The AsyncAPI document and the JSON Schemas describe every topic and event."""

from __future__ import annotations

import json
from pathlib import Path

from shared import asyncapi, catalogue
from shared.events import BY_NAME, EVENT_MODELS


def test_every_topic_is_a_channel_with_its_producer_and_consumers() -> None:
    doc = asyncapi.document()
    assert doc["asyncapi"].startswith("3.")
    addresses = {channel["address"] for channel in doc["channels"].values()}
    assert addresses == {topic.name for topic in catalogue.all_topics()}
    receivers = [op for op in doc["operations"].values() if op["action"] == "receive"]
    expected = sum(len(topic.consumers) for topic in catalogue.all_topics())
    assert len(receivers) == expected


def test_every_catalogued_value_has_a_model_and_a_written_schema(tmp_path: Path) -> None:
    for topic in catalogue.TOPICS:
        for value in (topic.value, *topic.also):
            assert value in BY_NAME, topic.name
    written = {path.name for path in asyncapi.write_docs(tmp_path)}
    for model in EVENT_MODELS:
        name = f"{model.EVENT_TYPE}.schema.json"
        assert name in written
        schema = json.loads((tmp_path / name).read_text())
        assert schema["type"] == "object" and schema["properties"]
    doc = json.loads((tmp_path / "asyncapi.json").read_text())
    refs = [
        message["payload"].get("$ref")
        for channel in doc["channels"].values()
        for message in channel["messages"].values()
    ]
    assert all(ref in written for ref in refs if ref)
