"""Watchlists on the real stream (broker and PostgreSQL): what is stored per post and per
minute, exactly once under a replay, and a change picked up by a running consumer."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest

from storage import watch_entities
from storage.coordination import ChangeListener
from storage.urls import libpq_url
from tests.fixtures import pipeline as support
from tests.fixtures.fakes import FakeScorer
from tests.fixtures.watchlist import CASES, ENTITIES
from watchlist.live import LiveWatchlist
from watchlist.rules import WatchEntity
from watchlist.store import WatchStore

pytestmark = pytest.mark.integration


def post_entities(database_url: str) -> dict[str, tuple[str, ...]]:
    """Per stored post id, the entities recorded for it (sorted)."""
    rows = support.query(
        database_url,
        "SELECT p.post_id, e.entity FROM post_entities e JOIN scored_posts p USING "
        "(kafka_topic, kafka_partition, kafka_offset) ORDER BY 1, 2",
    )
    found: dict[str, list[str]] = {}
    for post_id, entity in rows:
        found.setdefault(post_id, []).append(entity)
    return {post_id: tuple(entities) for post_id, entities in found.items()}


def entity_counts(database_url: str) -> dict[tuple[str, str], int]:
    rows = support.query(
        database_url,
        "SELECT entity, label, sum(count) FROM sentiment_entity_minute_counts GROUP BY 1, 2",
    )
    return {(entity, label): int(count) for entity, label, count in rows}


def second_totals(database_url: str) -> dict[str, int]:
    rows = support.query(
        database_url, "SELECT entity, sum(total) FROM sentiment_second_counts GROUP BY 1"
    )
    return {entity: int(total) for entity, total in rows}


@pytest.fixture
def watchlist(database_url: str) -> Iterator[LiveWatchlist]:
    support.migrated(database_url)
    WatchStore(database_url).sync(ENTITIES, prune=True)
    live = LiveWatchlist(database_url)
    live.refresh()
    yield live
    live.close()


def test_posts_record_the_entities_their_rules_match_exactly_once(
    kafka_bootstrap: str, database_url: str, topic: str, watchlist: LiveWatchlist
) -> None:
    partitions = 2
    support.create_topic(kafka_bootstrap, topic, partitions)
    texts = [text for text, _, _ in CASES]
    values = [json.dumps({"id": f"case-{i}", "text": t}).encode() for i, t in enumerate(texts)]
    counts = support.produce(kafka_bootstrap, topic, values, partitions=partitions)
    expected = {f"case-{i}": names for i, (_, names, _) in enumerate(CASES) if names}
    labels = {f"case-{i}": FakeScorer().score([t]).label_ids[0] for i, t in enumerate(texts)}
    expected_counts = Counter(
        (entity, ("negative", "neutral", "positive")[labels[post_id]])
        for post_id, names in expected.items()
        for entity in names
    )

    settings = support.settings_for(kafka_bootstrap, database_url, topic)
    with support.running_pipeline(settings, watchlist=watchlist) as run:
        support.wait_until(lambda: support.row_count(database_url) >= len(texts), 60, "rows")
    assert not run.errors
    assert post_entities(database_url) == expected
    assert entity_counts(database_url) == dict(expected_counts)
    named = Counter(entity for names in expected.values() for entity in names)
    assert second_totals(database_url) == {"": len(texts), **named}

    # A new group replays the whole topic: nothing is added anywhere.
    replay = support.settings_for(kafka_bootstrap, database_url, topic, group_id=f"again-{topic}")

    def replayed() -> bool:
        committed = support.committed_offsets(kafka_bootstrap, replay.group_id, topic, partitions)
        return committed == counts

    with support.running_pipeline(replay, watchlist=watchlist) as again:
        support.wait_until(replayed, 60, "the replay to be committed")
    assert not again.errors
    assert post_entities(database_url) == expected
    assert entity_counts(database_url) == dict(expected_counts)
    assert second_totals(database_url) == {"": len(texts), **named}


def test_a_running_consumer_picks_up_a_watchlist_change_within_seconds(
    kafka_bootstrap: str, database_url: str, topic: str, watchlist: LiveWatchlist
) -> None:
    support.create_topic(kafka_bootstrap, topic, 1)
    # Polling every minute: only the NOTIFY can explain a pick-up within seconds.
    listener = ChangeListener(database_url, poll_s=60)
    listener.subscribe(watch_entities.CHANNEL, watchlist.refresh)
    listener.start()
    store = WatchStore(database_url)

    def send(first: int, n: int) -> None:
        ids = range(first, first + n)
        texts = [json.dumps({"id": f"z-{i}", "text": f"zeta launch {i}"}).encode() for i in ids]
        support.produce(kafka_bootstrap, topic, texts, partitions=1)

    settings = support.settings_for(kafka_bootstrap, database_url, topic)
    try:
        with support.running_pipeline(settings, watchlist=watchlist) as run:
            send(0, 20)
            support.wait_until(lambda: support.row_count(database_url) >= 20, 60, "20 rows")
            assert post_entities(database_url) == {}

            changed_at = time.monotonic()
            store.put(WatchEntity(name="zeta", keywords=["Zeta"]))
            support.wait_until(lambda: "zeta" in watchlist.matcher.names, 10, "the change")
            picked_up_s = time.monotonic() - changed_at
            send(20, 20)
            support.wait_until(lambda: support.row_count(database_url) >= 40, 60, "40 rows")

            store.remove("zeta")
            support.wait_until(lambda: "zeta" not in watchlist.matcher.names, 10, "the removal")
            send(40, 20)
            support.wait_until(lambda: support.row_count(database_url) >= 60, 60, "60 rows")
        assert not run.errors
    finally:
        listener.stop()
    print(f"watchlist change picked up in {picked_up_s:.2f} s")
    assert picked_up_s < 5
    assert set(post_entities(database_url)) == {f"z-{i}" for i in range(20, 40)}


def test_a_row_the_rules_refuse_is_skipped_not_fatal(
    database_url: str, watchlist: LiveWatchlist
) -> None:
    """A hand-edited row whose regex no longer compiles leaves the others working."""
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute("INSERT INTO watch_entities (name, regexes) VALUES ('broken', '{\"(\"}')")
    watchlist.refresh()
    assert "broken" not in watchlist.matcher.names
    assert set(watchlist.matcher.names) == {entity.name for entity in ENTITIES}
