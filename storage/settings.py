"""The storage sections of the settings: which PostgreSQL every reader and writer uses, and how
long its tables keep what (time partitions, retention, maintenance: docs/pipeline.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr

from stream_core.settings import SettingsSection

# The time span of one partition of the post tables (storage/partitions.py).
PartitionInterval = Literal["hour", "day", "week", "month"]


class DatabaseSettings(SettingsSection):
    database_url: SecretStr = Field(
        SecretStr("postgresql+psycopg://postgres@localhost:5432/sentiment"),
        validation_alias=AliasChoices("DATABASE_URL", "database_url"),
        description="SQLAlchemy URL of the PostgreSQL database.",
    )

    def database_url_value(self) -> str:
        return self.database_url.get_secret_value()


class StorageSettings(DatabaseSettings):
    """Partitions, retention and the maintenance that applies them (`db maintain`, and the
    consumers' timers)."""

    retention_days: int = Field(
        30, ge=1, le=36_500, description="Days of posts kept (whole partitions are dropped)."
    )
    aggregate_retention_days: int = Field(
        365, ge=1, le=36_500, description="Days of per-minute, hourly and daily counts kept."
    )
    partition_interval: PartitionInterval = Field(
        "day", description="Time span of one partition of scored_posts (and its side tables)."
    )
    partitions_ahead: int = Field(
        3, ge=1, le=1000, description="Partitions created ahead of the current one."
    )
    maintenance_interval_s: float = Field(
        3600.0,
        ge=0,
        description="Seconds between `db maintain` runs by one consumer of the fleet (0: never).",
    )
    rollup_interval_s: float = Field(
        10.0, gt=0, description="Seconds between refreshes of the hourly and daily counts."
    )
