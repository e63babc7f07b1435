"""The broker and database the demo and ``stack up`` run on: embedded, or the user's own.

A setting the user gave (flag, environment or ``.env``) names a real service and is used as it
is; otherwise an embedded one is started on a free loopback port and stopped on the way out.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from sqlalchemy.exc import OperationalError

from consumer.settings import Settings
from embedded import EmbeddedBroker, EmbeddedPostgres
from storage.urls import redacted

log = structlog.get_logger(__name__)

DATABASE = "sentiment"


@dataclass
class Services:
    bootstrap_servers: str
    database_url: str
    embedded_pids: dict[str, int] = field(default_factory=dict)  # what we started, by name

    def export_lines(self) -> list[str]:
        """Shell lines that point other terminals at these services."""
        return [
            f"export KAFKA_BOOTSTRAP_SERVERS={self.bootstrap_servers}",
            f"export DATABASE_URL={self.printable_database_url}",
        ]

    @property
    def printable_database_url(self) -> str:
        return redacted(self.database_url)


@contextmanager
def running_services(settings: Settings, data_dir: Path | None = None) -> Iterator[Services]:
    """Yield the services to use, with the schema migrated; stop what was started on exit.

    ``data_dir``: where the embedded PostgreSQL keeps its data, kept afterwards (None: a
    temporary folder, removed on exit).
    """
    from storage import migrate

    given = settings.model_fields_set
    with ExitStack() as stack:
        services = Services(settings.bootstrap_servers, settings.database_url_value())
        if "bootstrap_servers" not in given:
            broker = stack.enter_context(EmbeddedBroker())
            services.bootstrap_servers = broker.bootstrap_servers
            services.embedded_pids["broker"] = broker.pid or 0
            log.info("embedded broker started", bootstrap_servers=broker.bootstrap_servers)
        if "database_url" not in given:
            postgres = stack.enter_context(EmbeddedPostgres(data_dir=data_dir))
            services.database_url = postgres.create_database(DATABASE)
            services.embedded_pids["postgres"] = postgres.pid or 0
            log.info("embedded PostgreSQL started", url=services.printable_database_url)
        try:
            migrate.upgrade(services.database_url)
        except OperationalError as error:
            raise RuntimeError(migrate.unreachable(services.database_url, error)) from None
        yield services
