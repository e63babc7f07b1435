"""The database section of the settings: which PostgreSQL every reader and writer uses."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr

from stream_core.settings import SettingsSection


class DatabaseSettings(SettingsSection):
    database_url: SecretStr = Field(
        SecretStr("postgresql+psycopg://postgres@localhost:5432/sentiment"),
        validation_alias=AliasChoices("DATABASE_URL", "database_url"),
        description="SQLAlchemy URL of the PostgreSQL database.",
    )

    def database_url_value(self) -> str:
        return self.database_url.get_secret_value()
