"""The watchlist's section of the settings: how often a consumer re-reads it at the latest, and
how many entities may have Prometheus series of their own."""

from __future__ import annotations

from pydantic import Field

from stream_core.settings import SettingsSection


class WatchlistSettings(SettingsSection):
    watch_poll_s: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="Re-read the watchlist at least this often, in s (NOTIFY is faster).",
    )
    watch_metrics_max: int = Field(
        50,
        ge=0,
        le=1000,
        description="Most entities with Prometheus series (those with metrics: true, by name).",
    )
