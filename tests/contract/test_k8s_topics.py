"""The Strimzi KafkaTopic manifests agree with the topic catalogue."""

from __future__ import annotations

import importlib
import re

from shared.catalogue import all_topics

gen = importlib.import_module("scripts.gen_k8s_topics")

DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def committed_topics() -> list[dict]:
    return gen.parse_documents(gen.TOPICS_FILE.read_text(encoding="utf-8"))


def test_committed_manifests_are_what_the_catalogue_generates() -> None:
    assert gen.TOPICS_FILE.read_text(encoding="utf-8") == gen.render_topics()
    assert gen.USERS_FILE.read_text(encoding="utf-8") == gen.render_users()


def test_every_catalogue_and_faust_topic_has_exactly_one_kafka_topic() -> None:
    names = [doc["spec"]["topicName"] for doc in committed_topics()]
    expected = [t.name for t in all_topics()] + [t.name for t in gen.faust_internal_topics()]
    assert sorted(names) == sorted(expected)


def test_faust_topics_match_their_apps() -> None:
    by_name = {doc["spec"]["topicName"]: doc for doc in committed_topics()}
    for app in gen.faust_apps():
        assert app.topics, app.app_id
        for internal in app.topics:
            spec = by_name[internal.name]["spec"]
            assert internal.name.startswith(f"{app.app_id}-"), internal.name
            assert spec["partitions"] == internal.partitions, internal.name
            assert spec["replicas"] == gen.REPLICAS, internal.name
            policy = "compact" if internal.name.endswith("-changelog") else "delete"
            assert spec["config"]["cleanup.policy"] == policy, internal.name


def test_partitions_and_configs_match_the_catalogue() -> None:
    by_name = {doc["spec"]["topicName"]: doc for doc in committed_topics()}
    for topic in all_topics():
        spec = by_name[topic.name]["spec"]
        assert spec["partitions"] == topic.partitions, topic.name
        for key, value in topic.all_configs().items():
            assert spec["config"][key] == value, (topic.name, key)


def test_resource_names_are_unique_dns_names_bound_to_the_cluster() -> None:
    docs = committed_topics()
    names = [doc["metadata"]["name"] for doc in docs]
    assert len(set(names)) == len(names)
    for doc in docs:
        assert doc["kind"] == "KafkaTopic"
        assert DNS_1123.match(doc["metadata"]["name"]), doc["metadata"]["name"]
        assert len(doc["metadata"]["name"]) <= 63
        assert doc["metadata"]["labels"]["strimzi.io/cluster"] == gen.CLUSTER


def test_contacts_topic_keeps_its_erasure_bounds() -> None:
    by_name = {doc["spec"]["topicName"]: doc for doc in committed_topics()}
    config = by_name["registry.contacts.v1"]["spec"]["config"]
    assert config["cleanup.policy"] == "compact"
    assert int(config["segment.ms"]) <= 10 * 60 * 1000
    assert int(config["max.compaction.lag.ms"]) <= 15 * 60 * 1000
    assert int(config["delete.retention.ms"]) <= 60 * 60 * 1000
