"""The monitoring section of the settings: windows, timers and alert thresholds."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from stream_core.settings import SettingsSection
from stream_core.windows import parse_window


class MonitoringSettings(SettingsSection):
    """Online quality and drift (docs/monitoring.md); each setting's help is the line under it."""

    model_config = SettingsConfigDict(use_attribute_docstrings=True)

    monitor_windows: str = "15m,1h,24h"
    """Windows that online quality and drift are measured over, comma-separated (1m-366d)."""
    monitor_interval_s: float = Field(default=60.0, gt=0, le=3600)
    """How often the elected replica looks for windows due; a window is re-measured once 1/96
    of its span has passed, at most once a tick (15m and 1h: every minute at this default, 24h:
    every 15 min). Each drift window costs about 0.35 CPU-s per run (docs/monitoring.md)."""
    quality_alert_margin: float = Field(default=0.05, ge=0, le=1)
    """OnlineQualityBelowReference fires when online macro recall stays this far below the
    offline reference (0.05 = 5 points)."""
    quality_alert_min_labelled: int = Field(default=200, ge=1)
    """...over at least this many labelled posts in the window."""
    drift_psi_threshold: float = Field(default=0.2, gt=0)
    """InputDrift fires when a feature's PSI stays above this."""
    drift_min_posts: int = Field(default=100, ge=1)
    """Fewest posts in a window for its drift to be measured (fewer: unavailable)."""
    drift_max_posts: int = Field(default=5000, ge=100)
    """Newest posts of a window that its drift profile is built from (bounds the job's cost)."""

    @field_validator("monitor_windows")
    @classmethod
    def _windows(cls, value: str) -> str:
        names = [w.strip() for w in value.split(",") if w.strip()]
        if not names:
            raise ValueError("give at least one window, like 15m,1h,24h")
        for name in names:
            parse_window(name)
        return ",".join(names)

    def windows(self) -> dict[str, timedelta]:
        """Each window's name and span, in the order given."""
        return {name: parse_window(name) for name in self.monitor_windows.split(",")}
