"""Settings by section, composed: the names users set and the flags they pass keep working, and
librdkafka options go to the clients that read them."""

from __future__ import annotations

from pathlib import Path

import click
import confluent_kafka
import pytest
from pydantic import SecretStr

from consumer.settings import Settings
from observability.spike import DetectorConfig
from producer_sim.cli import SimulateSettings
from sentiment_stream.cli import main
from storage.cli import DbSettings
from stream_core.cli_options import load_settings

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

# Every flag of every command before the settings were cut into sections (a user's scripts and
# manifests pass them): none may go away.
FLAGS = {
    "model": "log-format log-level",
    "consume": (
        "alert-baseline-half-life-s alert-baseline-min-volume alert-clear-increase "
        "alert-cooldown-s alert-min-increase alert-min-volume alert-window-s "
        "alert-z-threshold alerts-topic batch-size batch-wait-ms bootstrap-servers "
        "database-url dlq-topic group-id http-host http-port kafka-option log-format "
        "log-level max-text-chars model shutdown-timeout-s startup-timeout-s topic "
        "unknown-fields"
    ),
    "db upgrade": "database-url log-format log-level startup-timeout-s",
    "db downgrade": "database-url log-format log-level",
    "db current": "database-url log-format log-level",
    "model export": "checkpoint max-length out preprocessing quantize revision",
    "model train": (
        "base batch-size checkpoint-out class-weighting data epochs eval-split lr max-length "
        "min-macro-recall note out preprocessing quantize seed threads train-split"
    ),
    "model evaluate": "data model no-record plot split",
    "model bench": "batch-size checkpoint data fp32-model limit model pipeline-limit split threads",
    "simulate": (
        "authors bootstrap-servers cache-dir compression data download download-url "
        "duplicate-rate duration json kafka-option limit log-format log-level loop partitions "
        "poison-rate quiet rate replication-factor seed shuffle spike-at spike-duration "
        "spike-share split topic"
    ),
    "demo": (
        "bootstrap-servers cache-dir chart data database-url download download-url duration "
        "headless kafka-option keep-data log-format log-level model poison-rate rate seed "
        "split topic"
    ),
    "stack up": "bootstrap-servers database-url kafka-option keep-data log-format log-level",
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
    consumer = settings().consumer_kafka_config()
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


def test_the_flat_names_users_set_keep_working(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    environment = {
        "KAFKA_BOOTSTRAP_SERVERS": "broker:9093",
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "DATABASE_URL": "postgresql+psycopg://u:pw@db/sentiment",
        "SENTIMENT_TOPIC": "firehose",
        "SENTIMENT_BATCH_SIZE": "7",
        "SENTIMENT_HTTP_PORT": "0",
        "SENTIMENT_MODEL": str(tmp_path),
        "SENTIMENT_ALERT_WINDOW_S": "9",
        "SENTIMENT_STARTUP_TIMEOUT_S": "3",
        "SENTIMENT_LOG_LEVEL": "DEBUG",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    (tmp_path / ".env").write_text("SENTIMENT_GROUP_ID=from-dotenv\n")
    monkeypatch.chdir(tmp_path)
    service = load_settings(Settings, {})
    assert service.bootstrap_servers == "broker:9093"
    assert service.kafka_config()["security.protocol"] == "SASL_SSL"
    assert service.database_url_value() == "postgresql+psycopg://u:pw@db/sentiment"
    assert (service.topic, service.dlq_topic, service.group_id) == (
        "firehose",
        "firehose.dlq",
        "from-dotenv",
    )
    assert (service.batch_size, service.http_port, service.model) == (7, 0, tmp_path)
    assert service.detector_config().window_s == 9
    assert (service.startup_timeout_s, service.log_level) == (3, "DEBUG")
    # Each command's own composition reads the same names.
    assert load_settings(DbSettings, {}).startup_timeout_s == 3
    assert load_settings(SimulateSettings, {}).topic == "firehose"


def test_a_flag_beats_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTIMENT_BATCH_SIZE", "7")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "alice")
    flags = {"batch_size": 9, "kafka_options": ("sasl.password=pw",)}
    settings = load_settings(Settings, flags)
    assert settings.batch_size == 9
    assert settings.kafka_config()["sasl.username"] == "alice"  # the environment's, kept
    assert settings.kafka_config()["sasl.password"] == "pw"
    with pytest.raises(click.UsageError, match="alert_clear_increase"):
        load_settings(Settings, {"alert_clear_increase": 0.5})


def test_each_default_is_written_once() -> None:
    assert Settings(_env_file=None).detector_config() == DetectorConfig()  # type: ignore[call-arg]


def commands(group: click.Group, path: str = "") -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        found[f"{path}{name}"] = command
        if isinstance(command, click.Group):
            found.update(commands(command, f"{path}{name} "))
    return found


def test_every_flag_of_every_command_is_still_there() -> None:
    now = commands(main)
    for path, flags in FLAGS.items():
        options = {opt for param in now[path].params for opt in param.opts}
        missing = {f"--{flag}" for flag in flags.split()} - options
        assert not missing, f"sentiment-stream {path} lost {sorted(missing)}"


def test_the_labels_topic_defaults_to_the_posts_topic_and_can_be_turned_off() -> None:
    assert Settings(topic="tweets", _env_file=None).labels_topic == "tweets.labels"  # type: ignore[call-arg]
    named = Settings(labels_topic="feedback", _env_file=None)  # type: ignore[call-arg]
    assert named.labels_topic == "feedback"
    assert Settings(labels_topic="None", _env_file=None).labels_topic == ""  # type: ignore[call-arg]
