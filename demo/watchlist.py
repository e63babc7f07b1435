"""The demo's watchlist: three entities, one of which the simulator's spike is about.

``acme`` is made up: the simulator rewrites a share of posts to name it (``simulate
--spike-entity``), and in the spike those posts turn negative while the rest of the stream stays
calm, so its own detector alerts and the stream's does not. ``apple`` and ``amazon`` are named by
a few dozen of the bundled tweets: counted, too rare to be judged (under
``SENTIMENT_WATCH_ALERT_MIN_VOLUME`` posts in a window). The demo loads the list before the
consumer starts (as ``watch load --no-prune`` would); docs/watchlist.md explains the rules.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from demo.database import Alert
from watchlist.rules import WatchEntity
from watchlist.store import WatchStore

SPIKE_ENTITY = "acme"
SPIKE_ENTITY_SHARE = 0.25  # of all posts name acme: about 6 a second at the default 25 posts/s

DEMO_WATCHLIST = (
    WatchEntity(
        name=SPIKE_ENTITY,
        description="ACME Corporation (made up: the simulator's spike is about it)",
        keywords=["acme", "acme corp"],
        hashtags=["acme", "acmefail"],
        mentions=["acme", "acme_help"],
        regexes=[r"\bacme[ -]?\d{3}\b"],  # product models: acme 500, acme-300
        metrics=True,
    ),
    WatchEntity(
        name="apple",
        description="Apple and its phones",
        keywords=["apple", "iphone", "ipad"],
        hashtags=["apple", "iphone"],
        mentions=["apple"],
    ),
    WatchEntity(
        name="amazon",
        description="Amazon",
        keywords=["amazon", "prime video"],
        hashtags=["amazon"],
        mentions=["amazon"],
    ),
)


def load_demo_watchlist(database_url: str) -> None:
    """Add (or update) the demo's entities; others a given database already watches stay."""
    WatchStore(database_url).sync(DEMO_WATCHLIST, prune=False)


def watchlist_figures(
    counts: dict[str, dict[str, int]], alerts: list[Alert], spike_start: datetime | None
) -> dict[str, Any]:
    """The headless summary's ``watchlist``: posts per entity and label, and how long after the
    spike began its entity's alert row was written (None: no alert)."""
    delay = None
    if spike_start is not None:
        detected = [
            alert.detected_at
            for alert in alerts
            if alert.entity == SPIKE_ENTITY and alert.detected_at >= spike_start
        ]
        if detected:
            delay = round((min(detected) - spike_start) / timedelta(seconds=1), 1)
    return {
        "entities": {entity.name: counts.get(entity.name, {}) for entity in DEMO_WATCHLIST},
        "spike_entity": SPIKE_ENTITY,
        "spike_started_at": spike_start.isoformat() if spike_start else None,
        "entity_alert_delay_s": delay,
    }
