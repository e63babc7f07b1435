"""The sections of the settings that the observability package reads: the HTTP API and the
spike detector, and what ``observability.runtime.start`` needs in all."""

from __future__ import annotations

from dataclasses import fields, replace

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from monitoring.settings import MonitoringSettings
from observability.spike import DetectorConfig
from storage.settings import DatabaseSettings
from stream_core.settings import ContractSettings, KafkaSettings, SettingsSection
from watchlist.settings import WatchlistSettings

DEFAULT = DetectorConfig()  # the detector's defaults, written once (observability/spike.py)


class ApiSettings(SettingsSection):
    http_host: str = Field("0.0.0.0", description="Address the HTTP API listens on.")  # noqa: S104
    http_port: int = Field(8000, ge=0, le=65535, description="Port of the HTTP API (0: none).")
    admin_token: SecretStr | None = Field(
        None,
        description="Bearer token that state-changing HTTP endpoints require (unset: read-only).",
    )


class DetectorSettings(SettingsSection):
    """The negative-spike detectors; observability/spike.py explains how these interact, and
    observability/fleet_spikes.py how one elected replica runs them for the whole fleet.

    ``alert_<name>`` is the detector's ``<name>`` (:meth:`detector_config`); each setting's
    help is the line under it.
    """

    model_config = SettingsConfigDict(use_attribute_docstrings=True)

    alerts_topic: str = ""
    """Topic that spike alerts go to (empty: none)."""
    alert_min_volume: int = Field(DEFAULT.min_volume, ge=1)
    """Fewest posts in the window for the detector to judge it."""
    alert_baseline_half_life_s: float = Field(DEFAULT.baseline_half_life_s, gt=0)
    """Half-life of the detector's trailing baseline, in seconds."""
    alert_baseline_min_volume: int = Field(DEFAULT.baseline_min_volume, ge=1)
    """Posts the baseline must have seen before any alert can fire."""
    alert_window_s: float = Field(DEFAULT.window_s, gt=0, le=3600)
    """Sliding window of the spike detector, in seconds."""
    alert_z_threshold: float = Field(DEFAULT.z_threshold, gt=0)
    """Fire when the window's negative share is this many sigmas up."""
    alert_min_increase: float = Field(DEFAULT.min_increase, gt=0, lt=1)
    """...and at least this much above the baseline share."""
    alert_clear_increase: float = Field(DEFAULT.clear_increase, ge=0, lt=1)
    """An alert clears once the excess falls below this."""
    alert_cooldown_s: float = Field(DEFAULT.cooldown_s, ge=0)
    """Quiet time after an alert clears before another can fire."""
    alert_tick_s: float = Field(1.0, gt=0, le=60)
    """How often the elected detector reads the fleet's counts and judges, in seconds."""
    alert_history_s: float = Field(900.0, ge=60)
    """Seconds of per-second counts kept; a newly elected detector replays them."""
    watch_alert_min_volume: int = Field(DEFAULT.min_volume, ge=1)
    """Fewest posts naming a watched entity in the window for its share to be judged."""
    watch_alert_baseline_min_volume: int = Field(DEFAULT.baseline_min_volume, ge=1)
    """Posts naming a watched entity that its baseline needs before it can alert."""

    @model_validator(mode="after")
    def _hysteresis(self) -> DetectorSettings:
        if self.alert_clear_increase >= self.alert_min_increase:
            raise ValueError("alert_clear_increase must be below alert_min_increase (hysteresis)")
        return self

    def detector_config(self) -> DetectorConfig:
        return DetectorConfig(
            **{f.name: getattr(self, f"alert_{f.name}") for f in fields(DetectorConfig)}
        )

    def entity_detector_config(self) -> DetectorConfig:
        """Each watched entity's detector: the stream's thresholds, its own volume minimums."""
        return replace(
            self.detector_config(),
            min_volume=self.watch_alert_min_volume,
            baseline_min_volume=self.watch_alert_baseline_min_volume,
        )


class ObservabilitySettings(
    ApiSettings,
    DetectorSettings,
    MonitoringSettings,
    WatchlistSettings,
    DatabaseSettings,
    KafkaSettings,
    ContractSettings,
):
    """What ``observability.runtime.start`` reads: the API, the detectors, where alerts go, the
    watchlist, model monitoring."""
