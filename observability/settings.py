"""The sections of the settings that the observability package reads: the HTTP API and the
spike detector, and what ``observability.runtime.start`` needs in all."""

from __future__ import annotations

from dataclasses import fields

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from observability.spike import DetectorConfig
from storage.settings import DatabaseSettings
from stream_core.settings import ContractSettings, KafkaSettings, SettingsSection

DEFAULT = DetectorConfig()  # the detector's defaults, written once (observability/spike.py)


class ApiSettings(SettingsSection):
    http_host: str = Field("0.0.0.0", description="Address the HTTP API listens on.")  # noqa: S104
    http_port: int = Field(8000, ge=0, le=65535, description="Port of the HTTP API (0: none).")


class DetectorSettings(SettingsSection):
    """The negative-spike detector; observability/spike.py explains how these interact.

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

    @model_validator(mode="after")
    def _hysteresis(self) -> DetectorSettings:
        if self.alert_clear_increase >= self.alert_min_increase:
            raise ValueError("alert_clear_increase must be below alert_min_increase (hysteresis)")
        return self

    def detector_config(self) -> DetectorConfig:
        return DetectorConfig(
            **{f.name: getattr(self, f"alert_{f.name}") for f in fields(DetectorConfig)}
        )


class ObservabilitySettings(
    ApiSettings, DetectorSettings, DatabaseSettings, KafkaSettings, ContractSettings
):
    """What ``observability.runtime.start`` reads: the API, the detector, where alerts go."""
