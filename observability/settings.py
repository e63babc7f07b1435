"""The sections of the settings that the observability package reads: the HTTP API and the
spike detector, and what ``observability.runtime.start`` needs in all."""

from __future__ import annotations

from dataclasses import fields, replace

from pydantic import Field, SecretStr, model_validator

from observability.spike import DetectorConfig
from storage.settings import DatabaseSettings
from stream_core.settings import ContractSettings, KafkaSettings, SettingsSection
from watchlist.settings import WatchlistSettings

_DETECTOR = DetectorConfig()  # the defaults, written once (observability/spike.py)


class ApiSettings(SettingsSection):
    http_host: str = Field("0.0.0.0", description="Address the HTTP API listens on.")  # noqa: S104
    http_port: int = Field(8000, ge=0, le=65535, description="Port of the HTTP API (0: none).")
    admin_token: SecretStr | None = Field(
        None,
        description="Bearer token that state-changing HTTP endpoints require (unset: read-only).",
    )


class DetectorSettings(SettingsSection):
    """The negative-spike detector; observability/spike.py explains how these interact.

    ``alert_<name>`` is the detector's ``<name>`` (:meth:`detector_config`).
    """

    alerts_topic: str = Field("", description="Topic that spike alerts go to (empty: none).")
    alert_window_s: float = Field(
        _DETECTOR.window_s,
        gt=0,
        le=3600,
        description="Sliding window of the spike detector, in seconds.",
    )
    alert_min_volume: int = Field(
        _DETECTOR.min_volume, ge=1, description="Fewest posts in the window for it to be judged."
    )
    alert_baseline_half_life_s: float = Field(
        _DETECTOR.baseline_half_life_s,
        gt=0,
        description="Half-life of the detector's trailing baseline, in seconds.",
    )
    alert_baseline_min_volume: int = Field(
        _DETECTOR.baseline_min_volume,
        ge=1,
        description="Posts the baseline must have seen before any alert can fire.",
    )
    alert_z_threshold: float = Field(
        _DETECTOR.z_threshold,
        gt=0,
        description="Fire when the window's negative share is this many sigmas up.",
    )
    alert_min_increase: float = Field(
        _DETECTOR.min_increase,
        gt=0,
        lt=1,
        description="...and at least this much above the baseline share.",
    )
    alert_clear_increase: float = Field(
        _DETECTOR.clear_increase,
        ge=0,
        lt=1,
        description="An alert clears once the excess falls below this.",
    )
    alert_cooldown_s: float = Field(
        _DETECTOR.cooldown_s,
        ge=0,
        description="Quiet time after an alert clears before another can fire.",
    )

    # Fleet-wide detection (observability/fleet_spikes.py): one elected replica judges.
    alert_tick_s: float = Field(
        1.0,
        gt=0,
        le=60,
        description="How often the elected detector reads the fleet's counts and judges, in s.",
    )
    alert_history_s: float = Field(
        900.0,
        ge=60,
        description="Seconds of per-second counts kept; a newly elected detector replays them.",
    )
    # Each watched entity's detector: the same thresholds, with volume minimums of its own.
    watch_alert_min_volume: int = Field(
        _DETECTOR.min_volume,
        ge=1,
        description="Fewest posts naming an entity in the window for its share to be judged.",
    )
    watch_alert_baseline_min_volume: int = Field(
        _DETECTOR.baseline_min_volume,
        ge=1,
        description="Posts naming an entity that its baseline needs before it can alert.",
    )

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
        return replace(
            self.detector_config(),
            min_volume=self.watch_alert_min_volume,
            baseline_min_volume=self.watch_alert_baseline_min_volume,
        )


class ObservabilitySettings(
    ApiSettings,
    DetectorSettings,
    WatchlistSettings,
    DatabaseSettings,
    KafkaSettings,
    ContractSettings,
):
    """What ``observability.runtime.start`` reads: the API, the detector, where alerts go, the
    watchlist."""
