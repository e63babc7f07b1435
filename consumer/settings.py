"""The consumer's section of the settings, and :class:`Settings`: every section the service
reads (``consume``, and the demo that runs it)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from language.settings import LanguageSettings
from model.settings import ModelSettings
from observability.settings import ObservabilitySettings
from registry.settings import RegistrySettings
from storage.settings import StorageSettings
from stream_core import kafka
from stream_core.settings import (
    KafkaSettings,
    LoggingSettings,
    StartupSettings,
)


class PipelineSettings(KafkaSettings):
    """The consumer group, its batches, its dead-letter topic and its shutdown."""

    dlq_topic: str = Field("", description="Dead-letter topic (default: <topic>.dlq).")
    group_id: str = Field("sentiment-scorer", description="Kafka consumer group id.")
    batch_size: int = Field(
        1024,
        ge=1,
        le=4096,
        description="Largest micro-batch, in posts, reached under a backlog [default: 1024, "
        "less for a model too slow to score it in a quarter of the shutdown timeout].",
    )
    batch_wait_ms: int = Field(
        50,
        ge=0,
        le=60_000,
        description="Longest wait for a micro-batch to fill while the model is idle, in ms "
        "(counted from its first post).",
    )
    batch_max_bytes: int = Field(
        2 * 1024 * 1024,
        ge=1024,
        description="Largest micro-batch, in bytes of message values.",
    )
    shutdown_timeout_s: float = Field(
        30.0, gt=0, description="SIGTERM deadline to drain the current batch and commit."
    )

    @model_validator(mode="after")
    def _default_dlq_topic(self) -> PipelineSettings:
        if not self.dlq_topic:
            self.dlq_topic = f"{self.topic}.dlq"
        return self

    def consumer_kafka_config(self) -> dict[str, Any]:
        """The group's consumer: our defaults, the user's options, then what we never let go."""
        return kafka.consumer_config(self.kafka_config(**{"group.id": self.group_id}))


class Settings(
    PipelineSettings,
    ObservabilitySettings,
    StorageSettings,
    ModelSettings,
    LanguageSettings,
    RegistrySettings,
    StartupSettings,
    LoggingSettings,
):
    """Everything the consumer service can be configured with (one flag per field)."""
