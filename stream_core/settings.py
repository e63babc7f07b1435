"""Settings by section: each package owns the section of what it does; each command composes
the sections it reads (``consumer.settings.Settings`` composes them all: the service).

Every section reads the flat names users set: ``SENTIMENT_<FIELD>`` (``SENTIMENT_BATCH_SIZE``),
plus ``KAFKA_BOOTSTRAP_SERVERS``, ``DATABASE_URL`` and every ``KAFKA_*`` librdkafka property.
Precedence, highest first: CLI flags (``stream_core.cli_options``), environment variables, a
``.env`` file, defaults. A section is composed by inheritance, so a command's settings object
*is* each of its sections and a function asks for exactly the section it reads.

The sections here are the ones every layer shares; the others live in their packages:
``storage.settings``, ``model.settings``, ``observability.settings``, ``consumer.settings``.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream_core import kafka
from stream_core.contract import MAX_TEXT_CHARS

NO_LABELS_TOPIC = "none"  # the labels_topic value that turns gold labels off


class SettingsSection(BaseSettings):
    """The base of every section: ``SENTIMENT_*`` variables and ``.env``, unknown names ignored."""

    model_config = SettingsConfigDict(
        env_prefix="SENTIMENT_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
    )


class LoggingSettings(SettingsSection):
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO")
    log_format: Literal["json", "console"] = Field("json")


class KafkaSettings(SettingsSection):
    """The cluster, the client options and the topics that producers and the consumer share:
    posts, and the late gold labels about them."""

    bootstrap_servers: str = Field(
        "localhost:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "bootstrap_servers"),
        description="Kafka bootstrap servers (host:port[,host:port]).",
    )
    kafka_options: dict[str, SecretStr] = Field(
        default_factory=lambda: kafka.options_from_env(os.environ),
        description="Extra librdkafka properties (SASL/SSL...); also any KAFKA_* variable.",
    )
    topic: str = Field("posts", description="Topic of incoming posts.")
    labels_topic: str = Field(
        "",
        description="Topic of late gold labels (default: <topic>.labels; 'none': read none).",
    )

    @model_validator(mode="after")
    def _default_labels_topic(self) -> KafkaSettings:
        if not self.labels_topic:
            self.labels_topic = f"{self.topic}.labels"
        elif self.labels_topic.lower() == NO_LABELS_TOPIC:
            self.labels_topic = ""
        return self

    def kafka_config(self, **overrides: Any) -> dict[str, Any]:
        """librdkafka configuration: bootstrap servers, pass-through options, then overrides."""
        config: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers}
        config.update({k: v.get_secret_value() for k, v in self.kafka_options.items()})
        config.update(overrides)
        return config

    def producer_kafka_config(self, **overrides: Any) -> dict[str, Any]:
        """:meth:`kafka_config` for a producer or admin client: no consumer-only properties."""
        return kafka.without_consumer_options(self.kafka_config(**overrides))


class ContractSettings(SettingsSection):
    """What a message must be to become a post (``consumer.messages``, ``POST /predict``)."""

    max_text_chars: int = Field(MAX_TEXT_CHARS, ge=1, description="Longer texts are dead-lettered.")
    unknown_fields: Literal["keep", "reject"] = Field(
        "keep", description="Message fields outside the contract: keep them, or dead-letter."
    )


class StartupSettings(SettingsSection):
    """How long a starting process waits for what it needs (``stream_core.startup``)."""

    startup_timeout_s: float = Field(
        120.0,
        ge=0,
        description="How long `consume` and `db upgrade` wait for PostgreSQL and the broker "
        "to answer at start-up, in seconds (0: fail at once).",
    )
