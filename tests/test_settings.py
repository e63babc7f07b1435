"""librdkafka options from the settings: what each kind of client gets."""

from __future__ import annotations

import confluent_kafka
import pytest
from pydantic import SecretStr

from consumer.source import consumer_config
from stream_core.settings import Settings

# What a deployment on tansu or a secured cluster sets through KAFKA_* variables.
OPTIONS = {
    "session.timeout.ms": "6000",
    "heartbeat.interval.ms": "500",
    "max.poll.interval.ms": "60000",
    "security.protocol": "SASL_PLAINTEXT",
    "sasl.mechanism": "PLAIN",
    "sasl.username": "scorer",
    "sasl.password": "secret",
}


def settings() -> Settings:
    return Settings(
        bootstrap_servers="127.0.0.1:9",
        kafka_options={name: SecretStr(value) for name, value in OPTIONS.items()},
        _env_file=None,  # type: ignore[call-arg]
    )


def test_producers_get_no_consumer_only_options_and_the_consumer_gets_all() -> None:
    producer = settings().producer_kafka_config(**{"linger.ms": 0})
    assert "session.timeout.ms" not in producer
    assert "heartbeat.interval.ms" not in producer
    assert "max.poll.interval.ms" not in producer
    assert producer["sasl.password"] == "secret"
    assert producer["linger.ms"] == 0
    consumer = consumer_config(settings())
    assert consumer["session.timeout.ms"] == "6000"
    assert consumer["sasl.password"] == "secret"


@pytest.mark.parametrize("filtered", [True, False])
def test_librdkafka_warns_only_about_unfiltered_consumer_options(
    filtered: bool, capfd: pytest.CaptureFixture[str]
) -> None:
    config = settings().producer_kafka_config() if filtered else settings().kafka_config()
    confluent_kafka.Producer(config)
    warned = "is a consumer property and will be ignored" in capfd.readouterr().err
    assert warned is not filtered


def test_the_labels_topic_defaults_to_the_posts_topic_and_can_be_turned_off() -> None:
    assert Settings(topic="tweets", _env_file=None).labels_topic == "tweets.labels"  # type: ignore[call-arg]
    named = Settings(labels_topic="feedback", _env_file=None)  # type: ignore[call-arg]
    assert named.labels_topic == "feedback"
    assert Settings(labels_topic="None", _env_file=None).labels_topic == ""  # type: ignore[call-arg]
