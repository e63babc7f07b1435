"""`sentiment-stream watch add|list|remove|load|test`: the watchlist in PostgreSQL.

Running consumers pick every change up within a second (NOTIFY), or within
``SENTIMENT_WATCH_POLL_S`` at worst; nothing restarts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from storage.cli import database_errors
from storage.settings import DatabaseSettings
from stream_core.cli_options import load_settings, settings_options
from stream_core.logs import configure_logging
from stream_core.settings import LoggingSettings
from watchlist.file import WatchlistFileError, dump_watchlist, read_watchlist
from watchlist.matcher import Matcher
from watchlist.rules import WatchEntity
from watchlist.store import WatchStore

Command = TypeVar("Command", bound=Callable[..., Any])


class WatchCliSettings(DatabaseSettings, LoggingSettings):
    """What the `watch` commands read from the environment and their setting flags."""


watch_settings = settings_options(WatchCliSettings)


@click.group()
def watch() -> None:
    """The watchlist: entities (brands, products, people) whose posts are counted and alerted on.

    Rules: --keyword (whole words or phrases, any case, any accents), --hashtag, --mention,
    --regex. See docs/watchlist.md.
    """


@contextmanager
def _store(kwargs: dict[str, Any]) -> Iterator[WatchStore]:
    """The store the settings name; database trouble becomes one clear line."""
    settings = load_settings(WatchCliSettings, kwargs)
    configure_logging(settings.log_level, settings.log_format)
    url = settings.database_url_value()
    with database_errors(url, "watch_entities table"):
        yield WatchStore(url)


def _entity(**fields: Any) -> WatchEntity:
    try:
        return WatchEntity.model_validate(fields)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'entity'}: {e['msg']}" for e in error.errors()
        )
        raise click.UsageError(problems) from None


def _rule_options(command: Command) -> Command:
    for flag, field, meaning in reversed(
        [
            ("--keyword", "keywords", "A word or phrase (whole words, any case or accents)."),
            ("--hashtag", "hashtags", "A hashtag, with or without #."),
            ("--mention", "mentions", "A handle, with or without @."),
            ("--regex", "regexes", "A Python regular expression on the normalised text."),
        ]
    ):
        command = click.option(flag, field, multiple=True, help=f"{meaning} Repeatable.")(command)
    return command


@watch.command()
@click.argument("name")
@_rule_options
@click.option("--description", default="", help="What the entity is, for people.")
@click.option("--metrics", is_flag=True, help="Export Prometheus series for it.")
@click.option("--replace", is_flag=True, help="Replace an entity of that name instead of failing.")
@watch_settings
def add(name: str, description: str, metrics: bool, replace: bool, **kwargs: Any) -> None:
    """Watch a new entity, NAME, with the rules given.

    NAME is lower case: letters a-z, digits and _ . - (at most 64 characters).
    """
    rules = {
        field: list(kwargs.pop(field)) for field in ("keywords", "hashtags", "mentions", "regexes")
    }
    entity = _entity(name=name, description=description, metrics=metrics, **rules)
    with _store(kwargs) as store:
        if not replace and store.get(name) is not None:
            raise click.ClickException(f"{name} is watched already (--replace to change it)")
        outcome = store.put(entity)
    click.echo(f"{name}: {outcome}")


@watch.command(name="list")
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "yaml", "json"]),
    default="table",
    show_default=True,
    help="yaml is the file format `watch load` reads.",
)
@watch_settings
def list_entities(output: str, **kwargs: Any) -> None:
    """The watched entities and their rules."""
    with _store(kwargs) as store:
        entities = store.list()
    if output == "yaml":
        click.echo(dump_watchlist(entities), nl=False)
    elif output == "json":
        click.echo(json.dumps([e.model_dump() for e in entities], indent=2, ensure_ascii=False))
    elif not entities:
        click.echo("no entity watched (add one: sentiment-stream watch add NAME --keyword WORD)")
    else:
        for entity in entities:
            rules = [
                *entity.keywords,
                *(f"#{tag}" for tag in entity.hashtags),
                *(f"@{handle}" for handle in entity.mentions),
                *(f"/{regex}/" for regex in entity.regexes),
            ]
            flag = " [metrics]" if entity.metrics else ""
            click.echo(f"{entity.name}{flag}: {', '.join(rules)}")


@watch.command()
@click.argument("names", nargs=-1, required=True)
@watch_settings
def remove(names: tuple[str, ...], **kwargs: Any) -> None:
    """Stop watching the entities NAMES (their counts and alerts stay in the database)."""
    with _store(kwargs) as store:
        missing = [name for name in names if not store.remove(name)]
    for name in names:
        if name not in missing:
            click.echo(f"{name}: removed")
    if missing:
        raise click.ClickException(f"not watched: {', '.join(missing)}")


@watch.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--prune/--no-prune",
    default=True,
    show_default=True,
    help="Remove the entities the file does not list (the file is the whole watchlist).",
)
@click.option("--dry-run", is_flag=True, help="Validate the file and say what would change.")
@watch_settings
def load(file: Path, prune: bool, dry_run: bool, **kwargs: Any) -> None:
    """Make the watchlist equal FILE (YAML; `watch list --format yaml` writes one).

    One transaction: consumers see the old list or the new one. By default the file is the
    truth and entities it does not list are removed; --no-prune only adds and updates.
    """
    try:
        entities = read_watchlist(file)
    except WatchlistFileError as error:
        raise click.ClickException(str(error)) from None
    with _store(kwargs) as store:
        if dry_run:
            current = {entity.name: entity for entity in store.list()}
            wanted = {entity.name: entity for entity in entities}
            plan = {
                "create": sorted(wanted.keys() - current.keys()),
                "update": sorted(
                    n for n in wanted.keys() & current.keys() if wanted[n] != current[n]
                ),
                "remove": sorted(current.keys() - wanted.keys()) if prune else [],
            }
            for action, names in plan.items():
                click.echo(f"would {action} {len(names)}: {', '.join(names) or '-'}")
            return
        result = store.sync(entities, prune=prune)
    for outcome in ("created", "updated", "removed", "unchanged"):
        names = getattr(result, outcome)
        click.echo(f"{outcome} {len(names)}: {', '.join(names) or '-'}")


@watch.command(name="test")
@click.argument("text")
@click.option(
    "--file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Try the rules of this watchlist file instead of the database's.",
)
@watch_settings
def try_rules(text: str, file: Path | None, **kwargs: Any) -> None:
    """Show which entities TEXT names, and which rule matched where."""
    if file is not None:
        try:
            entities = read_watchlist(file)
        except WatchlistFileError as error:
            raise click.ClickException(str(error)) from None
    else:
        with _store(kwargs) as store:
            entities = store.list()
    hits = Matcher(entities).hits(text)
    if not hits:
        click.echo("no entity matched")
    for hit in hits:
        click.echo(f"{hit.entity}: {hit.kind} {hit.rule!r} at {hit.start}-{hit.end}")
